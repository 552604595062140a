"""Tickets and their history, staff, escalations, reports, QA samples, suggestion
batches, standard answers and node settings; who acted on inbox notices.

Revision ID: c0002
Revises: c0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period_kind", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.String(length=10), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drafted_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("outbox_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "period_kind", "period_start", "revision"),
    )
    op.create_index("ix_reports_status", "reports", ["status", "kind"], unique=False)
    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "suggestion_batches",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("batch_date", sa.String(length=10), nullable=False),
        sa.Column("batch_number", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_by", sa.String(length=64), nullable=False),
        sa.Column("outbox_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_date", "batch_number"),
    )
    op.create_table(
        "tickets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("customer_phone", sa.String(length=32), nullable=False),
        sa.Column("customer_name", sa.Text(), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(length=64), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=True),
        sa.Column("branch", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("satisfaction", sa.String(length=16), nullable=True),
        sa.Column("surveyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("surveyed_by", sa.String(length=64), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("chase_count", sa.Integer(), nullable=False),
        sa.Column("ext_days", sa.Integer(), nullable=True),
        sa.Column("ext_reason", sa.Text(), nullable=True),
        sa.Column("ext_by", sa.String(length=64), nullable=True),
        sa.Column("ext_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_repeat", sa.Boolean(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("compensation_fen", sa.BigInteger(), nullable=False),
        sa.Column("compensation_note", sa.Text(), nullable=True),
        sa.Column("compensated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suggestion_class", sa.String(length=64), nullable=True),
        sa.Column("classified_by", sa.String(length=64), nullable=True),
        sa.Column("classified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suggestion_batch_id", sa.Integer(), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_tickets_closed",
        "tickets",
        ["closed_at", "deadline", "kind", "category", "channel", "closed_by"],
        unique=False,
    )
    op.create_index("ix_tickets_escalated", "tickets", ["escalated_at"], unique=False)
    op.create_index("ix_tickets_open_deadline", "tickets", ["status", "deadline"], unique=False)
    op.create_index(
        "ix_tickets_registered",
        "tickets",
        ["registered_at", "kind", "category", "channel", "is_repeat", "registered_by"],
        unique=False,
    )
    op.create_index(
        "ix_tickets_repeat",
        "tickets",
        ["customer_phone", "category", "registered_at"],
        unique=False,
    )
    op.create_index("ix_tickets_surveyed", "tickets", ["surveyed_at", "satisfaction"], unique=False)
    op.create_table(
        "escalations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outbox_seq", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution_notice_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_escalations_ticket", "escalations", ["ticket_id", "id"], unique=False)
    op.create_index("ix_escalations_at", "escalations", ["escalated_at"], unique=False)
    op.create_table(
        "qa_samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.Column("inspector", sa.String(length=64), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("score_centi", sa.Integer(), nullable=True),
        sa.Column("items", sa.Text(), nullable=True),
        sa.Column("defects", sa.Text(), nullable=False),
        sa.Column("finding", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id"),
    )
    op.create_index(op.f("ix_qa_samples_sampled_at"), "qa_samples", ["sampled_at"], unique=False)
    op.create_index(op.f("ix_qa_samples_scored_at"), "qa_samples", ["scored_at"], unique=False)
    op.create_table(
        "standard_answers",
        sa.Column("notice_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_seq"],
            ["inbox.notice_seq"],
        ),
        sa.PrimaryKeyConstraint("notice_seq"),
    )
    op.create_index(
        op.f("ix_standard_answers_category"), "standard_answers", ["category"], unique=False
    )
    op.create_table(
        "ticket_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_history_at", "ticket_history", ["at", "role", "ticket_id"], unique=False)
    op.create_index("ix_history_ticket", "ticket_history", ["ticket_id", "id"], unique=False)

    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("read_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("done_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("objection_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("handled_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("handled_note")
        batch.drop_column("objection_by")
        batch.drop_column("done_by")
        batch.drop_column("read_by")
    op.drop_table("ticket_history")
    op.drop_table("standard_answers")
    op.drop_table("qa_samples")
    op.drop_table("escalations")
    op.drop_table("tickets")
    op.drop_table("suggestion_batches")
    op.drop_table("staff")
    op.drop_table("reports")
    op.drop_table("node_settings")
