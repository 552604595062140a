"""The hub's tables: city links, ingested records, notices and their per-city delivery.

Typed SQLAlchemy 2.x declarative models; hot paths use Core ``insert()`` over these tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from province_hub.figures import METADATA as FIGURES_METADATA
from sync.migrate import upgrade


class Base(DeclarativeBase):
    pass


class CityLink(Base):
    """One row per city: what the hub holds for it and how its link is doing."""

    __tablename__ = "city_links"

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    #: Epoch of the city store whose envelopes the hub holds ("" before first contact).
    epoch: Mapped[str] = mapped_column(String(64), default="")
    #: Highest committed seq; everything up to it is held.
    acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: connected / conflict / revoked / never (the city's own view adds backing-off).
    state: Mapped[str] = mapped_column(String(16), default="never")
    first_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    software_version: Mapped[str] = mapped_column(Text, default="")
    schema_version: Mapped[str] = mapped_column(Text, default="")
    #: From the last heartbeat: undelivered rows at the city and the oldest one's age.
    backlog: Mapped[int] = mapped_column(BigInteger, default=0)
    oldest_unsent_age_s: Mapped[int] = mapped_column(BigInteger, default=0)
    notice_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    city_last_error: Mapped[str] = mapped_column(Text, default="")
    #: Last refusal the hub gave this city (conflict, gap, malformed...).
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


#: A record's status when it repeats one the hub holds (same subject, same content, a new
#: seq: made again by a city re-based after a restore); kept, counted nowhere.
REPEATED = "repeated"


class Record(Base):
    """An ingested envelope: exactly one row per (city, seq)."""

    __tablename__ = "records"

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    epoch: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    #: accepted / quarantined
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    #: What the record is about, for revisions: "statistics_report/WEEK/2026-11-16".
    subject: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The body message's bytes as the city sent them, which the digest covers (or its
    #: deterministic serialization, when that is what the city hashed).
    body: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_records_kind_status", "kind", "status"),
        Index("ix_records_subject", "city_code", "subject"),
    )


class Counter(Base):
    """Named counters bumped under a row lock (gap-free, commit-ordered sequence numbers)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Notice(Base):
    """A province notice; ``seq`` is hub-wide and assigned in commit order."""

    __tablename__ = "notices"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sender: Mapped[str] = mapped_column(Text)
    #: Comma-separated target codes ("" = every city of the roster at sending time).
    targets: Mapped[str] = mapped_column(Text, default="")
    task_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The whole fedsync.v1.Notice as sent (seq included).
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    #: The notice this one answers (an objection's answer), else None.
    reply_to_seq: Mapped[int | None] = mapped_column(BigInteger)
    #: STANDARD_ANSWER: its key and version (a new version must be above the last sent).
    answer_key: Mapped[str | None] = mapped_column(Text)
    answer_version: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_notices_reply_to", "reply_to_seq"),
        Index("ix_notices_kind_seq", "kind", "seq"),
    )


class NoticeDelivery(Base):
    """Per-city state of one notice: streamed, confirmed by cursor, read, done, objected."""

    __tablename__ = "notice_deliveries"

    notice_seq: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("notices.seq", ondelete="CASCADE"), primary_key=True
    )
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    streamed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Set when the city's Subscribe cursor proves it persisted the notice.
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_note: Mapped[str | None] = mapped_column(Text)
    objection_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    objection_reason: Mapped[str | None] = mapped_column(Text)
    last_actor: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_deliveries_city", "city_code", "notice_seq"),)


class HubStaff(Base):
    """A hub account: who may sign in to the supervisor web, in which role (HubRole)."""

    __tablename__ = "hub_staff"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Moves on when the account is disabled, its password or role changes, or it logs out;
    #: a web session carries the generation it was signed under and ends when it differs.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SuggestionSeen(Base):
    """A suggestion batch a materials manager has seen; batches without a row are new."""

    __tablename__ = "suggestion_seen"

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seen_by: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One action at the hub that sent something or changed state: who, in which role,
    when, what, about what, from which address. Append-only: nothing updates or deletes
    these rows (:mod:`province_hub.audit` is the only writer)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Staff id ("" for an unknown account at login), role ("" where none applies).
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    #: What happened, one of :class:`province_hub.audit.Action`.
    action: Mapped[str] = mapped_column(String(48))
    #: What it was about: "notice:12", "escalation:620100/57", "staff:li", "" when nothing.
    target: Mapped[str] = mapped_column(Text, default="")
    #: Free detail for a person reading the log (no customer data: ids and counts only).
    detail: Mapped[str] = mapped_column(Text, default="")
    #: Client address as the web saw it; "cli" for commands run at the hub's shell.
    address: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_actor", "actor", "at"),
        Index("ix_audit_action", "action", "at"),
    )


class LoginFailure(Base):
    """One failed login, counted by every hub replica (``province_hub.web.login_failures``):
    ``key`` is ``p:<address> <account>``, ``a:<account>`` or ``i:<address>``; rows older than
    the window are purged."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(320))
    #: Seconds since the epoch (wall clock: replicas share it, not a monotonic one).
    at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_login_failures_key", "key", "at"),
        Index("ix_login_failures_at", "at"),
    )


class DeskCase(Base):
    """An escalation on the general-manager hotline's desk: landed from the city's
    Escalation record at ingest (what the queue sorts and filters by), then worked at the
    hub (taken, resolved) and followed up by the city (received, closed, surveyed).

    The customer's name and phone are not copied here: they stay in the record's body and
    are read from it only for the one case shown."""

    __tablename__ = "desk_cases"

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    #: The Escalation record's seq (records.city_code, records.seq).
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ticket_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(32))
    #: When the city registered the ticket, escalated it (the envelope's time) and when the
    #: hub received it.
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assignee: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    #: One of province_hub.desk.OUTCOMES.
    outcome: Mapped[str | None] = mapped_column(String(32))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolution_notice_seq: Mapped[int | None] = mapped_column(BigInteger)
    #: From the city's follow-up (Escalation.follow_up): its seq, the ticket's status then,
    #: when it closed the ticket and made the callback, and the customer's satisfaction.
    follow_up_seq: Mapped[int | None] = mapped_column(BigInteger)
    city_status: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    surveyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    satisfaction: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_desk_ticket", "city_code", "ticket_id"),
        Index("ix_desk_open", "resolved_at", "escalated_at"),
    )


class DeskEntry(Base):
    """An internal note or a contact-log line on a desk case (append-only)."""

    __tablename__ = "desk_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6))
    seq: Mapped[int] = mapped_column(BigInteger)
    #: "note" or "contact".
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    author: Mapped[str] = mapped_column(String(64))
    #: For a contact: how the customer was contacted (phone, sms, visit...); "" for a note.
    channel: Mapped[str] = mapped_column(String(16), default="")
    text: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_desk_entries_case", "city_code", "seq", "id"),)


#: Every table of the hub store, for migrations' autogenerate and the schema check.
METADATA = (Base.metadata, FIGURES_METADATA)
MIGRATIONS = "province_hub:migrations"
#: The first revision: the schema hub stores had before migrations were introduced.
BASELINE = "h0001"


def create_schema(engine: Engine) -> str:
    """Bring the hub store to the latest migration (creates it when empty); return it."""
    return upgrade(
        engine,
        script_location=MIGRATIONS,
        metadata=METADATA,
        baseline=BASELINE,
        baseline_table="city_links",
    )
