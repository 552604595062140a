"""escalation desk: the cases landed from escalations (those already held included), and
their notes and contact log

Revision ID: h0005
Revises: h0004
Create Date: 2026-11-27 16:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from province_hub.escalations import backfill

revision = "h0005"
down_revision = "h0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "desk_cases",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("registered_at", when, nullable=False),
        sa.Column("escalated_at", when, nullable=False),
        sa.Column("received_at", when, nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("taken_at", when, nullable=True),
        sa.Column("resolved_at", when, nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolution_notice_seq", sa.BigInteger(), nullable=True),
        sa.Column("follow_up_seq", sa.BigInteger(), nullable=True),
        sa.Column("city_status", sa.String(length=32), nullable=True),
        sa.Column("closed_at", when, nullable=True),
        sa.Column("surveyed_at", when, nullable=True),
        sa.Column("satisfaction", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("city_code", "seq"),
    )
    op.create_index("ix_desk_ticket", "desk_cases", ["city_code", "ticket_id"])
    op.create_index("ix_desk_open", "desk_cases", ["resolved_at", "escalated_at"])
    op.create_table(
        "desk_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_desk_entries_case", "desk_entries", ["city_code", "seq", "id"])
    # Escalations received before the desk existed are on it too (and their follow-ups).
    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_desk_entries_case", table_name="desk_entries")
    op.drop_table("desk_entries")
    op.drop_index("ix_desk_open", table_name="desk_cases")
    op.drop_index("ix_desk_ticket", table_name="desk_cases")
    op.drop_table("desk_cases")
