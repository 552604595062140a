"""The city node's tables: staff, tickets and their history, reports, QA, the notice inbox.

Typed SQLAlchemy 2.x models. The schema is owned by Alembic (``city_node/migrations``);
:func:`create_schema` runs the migrations, it never calls ``create_all``.

Tickets are stored in their *current* state (one row each) plus an append-only
``ticket_history``. Reports count what happened in a period from the history (closures,
surveys, escalations: each step keeps the deadline and survey outcome it was taken with)
and registrations from the tickets, whose kind, category and channel never change; the
indexes are chosen for those queries in :mod:`city_node.reports` (each period query is a
range scan over a covering index) and for repeat-complaint detection at registration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sync.db import UtcDateTime
from sync.migrate import upgrade
from sync.outbox import OutboxBase

#: Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class InboxNotice(Base):
    """A province notice as persisted here; one row per notice seq, never twice."""

    __tablename__ = "inbox"

    notice_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    task_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The whole fedsync.v1.Notice (details such as a rejection's seq live there).
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    read_by: Mapped[str | None] = mapped_column(String(64))
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    done_by: Mapped[str | None] = mapped_column(String(64))
    done_note: Mapped[str | None] = mapped_column(Text)
    objection_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    objection_by: Mapped[str | None] = mapped_column(String(64))
    objection_reason: Mapped[str | None] = mapped_column(Text)
    #: Set when the node applied the notice itself (trace answered, resolution recorded).
    handled_note: Mapped[str | None] = mapped_column(Text)
    #: The notice this one answers (the province's answer to an objection), else None.
    reply_to_seq: Mapped[int | None] = mapped_column(BigInteger)
    #: A REJECTION's envelope (hash of its epoch, seq and digest; c0008): filed once.
    rejection_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_inbox_rejection_key", "rejection_key"),)


class StandardAnswer(Base):
    """A unified standard answer (统一口径) from the province, searchable by operators."""

    __tablename__ = "standard_answers"

    notice_seq: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("inbox.notice_seq"), primary_key=True, autoincrement=False
    )
    topic: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32), index=True)
    answer: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: What stays the same across versions ("<category>/<topic>" when the notice names none).
    answer_key: Mapped[str] = mapped_column(Text, server_default="")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    #: Seq of the newer version that replaced this one; None while it is the current one.
    superseded_by: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_standard_answers_key", "answer_key", "version"),)


class Staff(Base):
    """A person who signs in to the console, with one role (domain.Role)."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    #: scrypt$N$r$p$salt-hex$hash-hex (see city_node.staff).
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: Bumped when the account is disabled, its password reset or its role changed: a
    #: console session carries the generation it was signed under and ends when it differs.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class TicketRow(Base):
    """A ticket's current state (domain.Ticket without its history)."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    customer_phone: Mapped[str] = mapped_column(String(32))
    customer_name: Mapped[str] = mapped_column(Text)
    tier: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    registered_by: Mapped[str] = mapped_column(String(64))
    deadline: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(24))
    operator: Mapped[str | None] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    surveyed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    surveyed_by: Mapped[str | None] = mapped_column(String(64))
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    chase_count: Mapped[int] = mapped_column(Integer, default=0)
    ext_days: Mapped[int | None] = mapped_column(Integer)
    ext_reason: Mapped[str | None] = mapped_column(Text)
    ext_by: Mapped[str | None] = mapped_column(String(64))
    ext_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: A repeat complaint (same phone and category within the window), fixed at registration.
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the ticket went to the province (escalations raised are counted by it).
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Compensation paid to the customer for overtime, in fen (1/100 yuan).
    compensation_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    compensation_note: Mapped[str | None] = mapped_column(Text)
    #: When the compensation was recorded: overtime reports count it in that period only.
    compensated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Materials clerk's classification of a suggestion, and the batch that carried it up.
    suggestion_class: Mapped[str | None] = mapped_column(String(64))
    classified_by: Mapped[str | None] = mapped_column(String(64))
    classified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    suggestion_batch_id: Mapped[int | None] = mapped_column(Integer)
    #: Bumped by every change: a write based on a stale read is refused (optimistic lock).
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    #: Since when the ticket has been open (or closed) under its current deadline: its
    #: registration, last closure, reopening or extension approval. "Overtime open at T"
    #: counts an open ticket by its current deadline only when this is before T; otherwise
    #: the history says how it stood then. Set on every write (c0003 backfilled it).
    state_since: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        # Received-in-period slices and per-operator registrations: index-only range scans.
        Index(
            "ix_tickets_registered",
            "registered_at",
            "kind",
            "category",
            "channel",
            "is_repeat",
            "registered_by",
        ),
        # Closed-in-period slices, in-time closure and per-operator closures.
        Index(
            "ix_tickets_closed",
            "closed_at",
            "deadline",
            "kind",
            "category",
            "channel",
            "closed_by",
        ),
        # A period's closure steps (history) take their ticket's kind, category and channel
        # from here: index-only lookups, a tenth of the pages of the table's wide rows.
        Index("ix_tickets_slices", "id", "kind", "category", "channel"),
        # Open past their deadline (overtime open, the overdue queue): index-only.
        Index("ix_tickets_open_deadline", "status", "deadline", "state_since"),
        # Repeat detection at registration: same phone and category, recent first.
        Index("ix_tickets_repeat", "customer_phone", "category", "registered_at"),
    )


#: The steps the report figures count (closures, surveys, escalations raised): the
#: history's figure index holds only these rows.
FIGURE_ACTIONS = ("answer", "close", "survey", "escalate_province")


def figure_steps_sql(table: str = "") -> str:
    """The figure index's WHERE term (``table``: a qualifier for queries that join).
    Queries repeat it word for word, as SQLite uses a partial index only for a query
    carrying its WHERE term."""
    return "{}action IN ({})".format(table, ", ".join(f"'{a}'" for a in FIGURE_ACTIONS))


def late_stretch_ends_sql(table: str = "") -> str:
    """The steps that end an open stretch under one deadline (a closure, an approved
    extension) taken after that deadline: the only ones that can show a ticket open past
    its deadline at an earlier instant, so "overtime open" reads these few rows alone."""
    return (
        f"{table}action IN ('answer', 'close', 'approve_extension') AND {table}at > {table}deadline"
    )


class HistoryRow(Base):
    """One step of a ticket's life; rows are only ever inserted.

    Besides who did what when, a step keeps what the report figures need to judge it later
    without the ticket's current columns (which the next step overwrites): the deadline in
    force when it was taken, since when the ticket had been in the open/closed state the
    step found it in, and a survey's outcome.
    """

    __tablename__ = "ticket_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    #: The ticket's deadline when the step was taken (an approved extension records the
    #: deadline it replaced): a closure is in time when ``at <= deadline``.
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Since when the ticket had been open (or closed) under that deadline: registration,
    #: the last closure, reopening or extension approval before this step.
    state_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: A survey step's outcome (domain.Satisfaction); None for every other step.
    outcome: Mapped[str | None] = mapped_column(String(16))
    #: What the step recorded (domain.NoteCode) and its parameters (JSON), rendered in the
    #: reader's language when shown; ``note`` keeps only the person's own words (c0007).
    code: Mapped[str] = mapped_column(String(32), server_default="note")
    # none_as_null: a step without parameters (most of them) stores NULL, serialising nothing.
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (
        Index("ix_history_ticket", "ticket_id", "id"),
        # "Handled in the period": distinct tickets an operator acted on, index-only.
        Index("ix_history_at", "at", "role", "ticket_id"),
        # Closures, surveys and escalations in a period: index-only range scans over the
        # figure steps alone.
        Index(
            "ix_history_figures",
            "action",
            "at",
            "deadline",
            "outcome",
            "actor",
            "ticket_id",
            sqlite_where=text(figure_steps_sql()),
            postgresql_where=text(figure_steps_sql()),
        ),
        # Stretches that were open past their deadline at a period's end and ended later.
        Index(
            "ix_history_late_ends",
            "at",
            "state_since",
            "deadline",
            "action",  # in the WHERE term: covering, no table lookups
            "ticket_id",
            sqlite_where=text(late_stretch_ends_sql()),
            postgresql_where=text(late_stretch_ends_sql()),
        ),
    )


class Escalation(Base):
    """A ticket sent to the province and, once it answers, its resolution."""

    __tablename__ = "escalations"

    #: One row per escalation: a ticket escalated again after a resolution gets a new one,
    #: so each period counts the escalations raised in it.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"))
    escalated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    escalated_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    #: The escalation envelope's outbox seq (the province quotes it back).
    outbox_seq: Mapped[int] = mapped_column(BigInteger)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolution_notice_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_escalations_ticket", "ticket_id", "id"),
        Index("ix_escalations_at", "escalated_at"),
    )


class Report(Base):
    """A report drafted for one period: statistics, QA or overtime, one row per revision.

    ``draft`` → ``approved`` (sent: ``outbox_seq``) or ``rejected``; a later draft for the
    same period supersedes an unapproved one. A correction after sending is a new revision.
    """

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # statistics / qa / overtime
    period_kind: Mapped[str] = mapped_column(String(8))  # day / week / month / quarter / year
    period_start: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    #: The body message (StatisticsReport / QaReport / OvertimeReport) without approval.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    drafted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    drafted_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_note: Mapped[str | None] = mapped_column(Text)
    outbox_seq: Mapped[int | None] = mapped_column(BigInteger)
    #: The lowest revision of this period the hub takes, as its REJECTION of this report
    #: named it (the hub holds this revision with other figures); the next draft takes it.
    hub_next_revision: Mapped[int | None] = mapped_column(Integer)
    #: Why the hub refused this report, as its REJECTION said (None: not refused).
    hub_rejection: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("kind", "period_kind", "period_start", "revision"),
        Index("ix_reports_status", "status", "kind"),
    )


class QaSample(Base):
    """A closed ticket drawn for QA and, once scored, its scorecard."""

    __tablename__ = "qa_samples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"), unique=True)
    #: The operator who closed the ticket (whose work is judged).
    operator: Mapped[str] = mapped_column(String(64))
    sampled_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    #: "scheduled" or "random" (an inspector's spot check).
    how: Mapped[str] = mapped_column(String(16))
    inspector: Mapped[str | None] = mapped_column(String(64))
    scored_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    #: Weighted total 0..10000 (hundredths of a point out of 100).
    score_centi: Mapped[int | None] = mapped_column(Integer)
    #: item=points pairs as JSON text, e.g. {"greeting": 10, ...}.
    items: Mapped[str | None] = mapped_column(Text)
    #: Comma-separated defect kinds (late, wrong_answer, …); empty when none.
    defects: Mapped[str] = mapped_column(Text, default="")
    finding: Mapped[str] = mapped_column(Text, default="")


class SuggestionBatch(Base):
    """A day's classified suggestions as sent up (one row per batch)."""

    __tablename__ = "suggestion_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_date: Mapped[str] = mapped_column(String(10))
    batch_number: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_by: Mapped[str] = mapped_column(String(64))
    outbox_seq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("batch_date", "batch_number"),)


class AccessLog(Base):
    """Who read customers' personal data unmasked: a ticket's detail or a phone search.
    Rows are only ever inserted (nothing in the code updates or deletes them); the leader
    reads them on the console's access log page."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    staff_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    #: The ticket whose data was shown; None for a phone search that found nothing.
    ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    #: What was read: "ticket detail", "phone search".
    what: Mapped[str] = mapped_column(String(64))


class NodeSetting(Base):
    """Small key/value settings kept with the store (holidays, auto-approval...)."""

    __tablename__ = "node_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


#: Every table of a city store, for migrations' autogenerate and the schema check.
METADATA = (OutboxBase.metadata, Base.metadata)
MIGRATIONS = "city_node:migrations"
#: The first revision: the outbox and inbox city stores had before migrations.
BASELINE = "c0001"


def create_schema(engine: Engine) -> str:
    """Bring the store to the latest migration (creates it when empty); return it."""
    return upgrade(
        engine,
        script_location=MIGRATIONS,
        metadata=METADATA,
        baseline=BASELINE,
        baseline_table="link_state",
    )
