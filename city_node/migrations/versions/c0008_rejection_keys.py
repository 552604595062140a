"""Rejections by the envelope they are about

``inbox.rejection_key`` names the envelope a REJECTION notice is about (a hash of its epoch,
seq and content digest, which hubs of wire schema 1.2 send), so that a rejection a hub
restored from an older backup sends again for the same envelope is filed once. Rows from
older hubs (no epoch in the notice) keep NULL.

Revision ID: c0008
Revises: c0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0008"
down_revision = "c0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("rejection_key", sa.String(length=64), nullable=True))
    op.create_index("ix_inbox_rejection_key", "inbox", ["rejection_key"])


def downgrade() -> None:
    op.drop_index("ix_inbox_rejection_key", table_name="inbox")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("rejection_key")
