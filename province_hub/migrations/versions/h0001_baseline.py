"""Baseline: the hub store as it was before migrations (city links, records, notices).

Revision ID: h0001
Revises: None
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "city_links",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("acked_seq", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("software_version", sa.Text(), nullable=False),
        sa.Column("schema_version", sa.Text(), nullable=False),
        sa.Column("backlog", sa.BigInteger(), nullable=False),
        sa.Column("oldest_unsent_age_s", sa.BigInteger(), nullable=False),
        sa.Column("notice_cursor", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("city_last_error", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("city_code"),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "notices",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("task_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "records",
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("city_code", "seq"),
    )
    op.create_index("ix_records_kind_status", "records", ["kind", "status"], unique=False)
    op.create_index("ix_records_subject", "records", ["city_code", "subject"], unique=False)
    op.create_table(
        "notice_deliveries",
        sa.Column("notice_seq", sa.BigInteger(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("streamed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_note", sa.Text(), nullable=True),
        sa.Column("objection_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("objection_reason", sa.Text(), nullable=True),
        sa.Column("last_actor", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["notice_seq"], ["notices.seq"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("notice_seq", "city_code"),
    )
    op.create_index(
        "ix_deliveries_city", "notice_deliveries", ["city_code", "notice_seq"], unique=False
    )


def downgrade() -> None:
    op.drop_table("notice_deliveries")
    op.drop_table("records")
    op.drop_table("notices")
    op.drop_table("counters")
    op.drop_table("city_links")
