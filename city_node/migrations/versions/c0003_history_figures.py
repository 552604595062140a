"""Report figures from the ticket history: each step keeps the deadline it was taken under,
since when the ticket had been open (or closed), and a survey's outcome; a partial index
over the steps the figures count, one over the late ends of open stretches, and one giving
closures their ticket's kind, category and channel without reading the wide ticket rows.
(The ticket's own columns only count a ticket's latest survey and closure.)

Existing rows are backfilled from what the store already knows:

- ``outcome``: a survey that reopened the ticket was "dissatisfied" (only that outcome may
  reopen); the one survey that did not is the ticket's last, whose outcome is on the
  ticket.
- ``state_since``: the latest registration, closure, reopening or extension approval
  before the step (the ticket's: before now).
- ``deadline``: the ticket's deadline, except before an approved extension, whose note
  ("deadline OLD -> NEW", unless the leader wrote another) gives the deadline it replaced.

Revision ID: c0003
Revises: c0002
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from sync.db import UtcDateTime

revision = "c0003"
down_revision = "c0002"
branch_labels = None
depends_on = None

FIGURE_STEPS = "action IN ('answer', 'close', 'survey', 'escalate_province')"
LATE_STRETCH_ENDS = "action IN ('answer', 'close', 'approve_extension') AND at > deadline"
# A step after which the ticket is open or closed anew, or has another deadline.
_NEW_STATE = (
    "(p.action IN ('register', 'answer', 'close', 'approve_extension') "
    "OR (p.action = 'survey' AND p.to_status = 'in_progress'))"
)
_EXTENDED = re.compile(r"^deadline (\S+) -> (\S+)$")


def upgrade() -> None:
    with op.batch_alter_table("ticket_history") as batch:
        batch.add_column(sa.Column("deadline", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("state_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("state_since", sa.DateTime(timezone=True), nullable=True))
    _backfill()
    op.drop_index("ix_tickets_surveyed", table_name="tickets")
    op.drop_index("ix_tickets_escalated", table_name="tickets")
    op.drop_index("ix_tickets_open_deadline", table_name="tickets")
    op.create_index(
        "ix_tickets_open_deadline",
        "tickets",
        ["status", "deadline", "state_since"],
        unique=False,
    )
    op.create_index(
        "ix_tickets_slices", "tickets", ["id", "kind", "category", "channel"], unique=False
    )
    op.create_index(
        "ix_history_figures",
        "ticket_history",
        ["action", "at", "deadline", "outcome", "actor", "ticket_id"],
        unique=False,
        sqlite_where=sa.text(FIGURE_STEPS),
        postgresql_where=sa.text(FIGURE_STEPS),
    )
    op.create_index(
        "ix_history_late_ends",
        "ticket_history",
        ["at", "state_since", "deadline", "action", "ticket_id"],
        unique=False,
        sqlite_where=sa.text(LATE_STRETCH_ENDS),
        postgresql_where=sa.text(LATE_STRETCH_ENDS),
    )


def _backfill() -> None:
    conn = op.get_bind()
    # One pass over the history (set-based: each row is rewritten once, which is what costs
    # on a large store), then one over the tickets.
    conn.execute(
        sa.text(
            "UPDATE ticket_history SET deadline = x.deadline, state_since = x.since, "
            "outcome = x.outcome FROM (SELECT p.id, t.deadline, "
            f"coalesce(max(CASE WHEN {_NEW_STATE} THEN p.at END) OVER (PARTITION BY "
            "p.ticket_id ORDER BY p.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), "
            "p.at) AS since, CASE WHEN p.action <> 'survey' THEN NULL "
            "WHEN p.to_status = 'in_progress' THEN 'dissatisfied' ELSE t.satisfaction END "
            "AS outcome FROM ticket_history p JOIN tickets t ON t.id = p.ticket_id) x "
            "WHERE ticket_history.id = x.id"
        )
    )
    conn.execute(
        sa.text(
            "UPDATE tickets SET state_since = coalesce(x.since, tickets.registered_at) "
            f"FROM (SELECT p.ticket_id, max(CASE WHEN {_NEW_STATE} THEN p.at END) AS since "
            "FROM ticket_history p GROUP BY p.ticket_id) x WHERE tickets.id = x.ticket_id"
        )
    )
    conn.execute(
        sa.text("UPDATE tickets SET state_since = registered_at WHERE state_since IS NULL")
    )
    # Tickets whose deadline was extended: the steps up to each approval had the old one.
    history = sa.table(
        "ticket_history",
        sa.column("id", sa.Integer()),
        sa.column("ticket_id", sa.Integer()),
        sa.column("action", sa.String()),
        sa.column("note", sa.Text()),
        sa.column("deadline", UtcDateTime()),
    )
    tickets = sa.table(
        "tickets", sa.column("id", sa.Integer()), sa.column("deadline", UtcDateTime())
    )
    extended = (
        sa.select(history.c.ticket_id).where(history.c.action == "approve_extension").distinct()
    )
    for (ticket_id,) in conn.execute(extended).all():
        current = conn.execute(
            sa.select(tickets.c.deadline).where(tickets.c.id == ticket_id)
        ).scalar_one()
        rows = conn.execute(
            sa.select(history.c.id, history.c.action, history.c.note)
            .where(history.c.ticket_id == ticket_id)
            .order_by(history.c.id.desc())
        ).all()
        for row_id, action, note in rows:
            if action == "approve_extension":
                match = _EXTENDED.match(note or "")
                if match:
                    # A note of the leader's own that merely looks alike: keep the later one.
                    with suppress(ValueError):
                        current = datetime.fromisoformat(match.group(1))
            conn.execute(sa.update(history).where(history.c.id == row_id).values(deadline=current))


def downgrade() -> None:
    op.drop_index("ix_history_late_ends", table_name="ticket_history")
    op.drop_index("ix_history_figures", table_name="ticket_history")
    op.drop_index("ix_tickets_slices", table_name="tickets")
    op.drop_index("ix_tickets_open_deadline", table_name="tickets")
    op.create_index("ix_tickets_open_deadline", "tickets", ["status", "deadline"], unique=False)
    op.create_index("ix_tickets_escalated", "tickets", ["escalated_at"], unique=False)
    op.create_index("ix_tickets_surveyed", "tickets", ["surveyed_at", "satisfaction"], unique=False)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("state_since")
    with op.batch_alter_table("ticket_history") as batch:
        batch.drop_column("outcome")
        batch.drop_column("state_since")
        batch.drop_column("deadline")
