"""notices: the notice an answer replies to, and a standard answer's key and version

``reply_to_seq`` links the province's answer to a city's objection to the notice objected
to (pages list a notice's answers by it). ``answer_key`` and ``answer_version`` let the hub
refuse a standard answer whose version is not above the last one sent for that key without
parsing every payload. Notices sent before this revision have none of them (NULL).

Revision ID: h0006
Revises: h0004
Create Date: 2026-11-27 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0006"
down_revision = "h0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("reply_to_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("answer_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("answer_version", sa.Integer(), nullable=True))
    op.create_index("ix_notices_reply_to", "notices", ["reply_to_seq"])
    op.create_index("ix_notices_kind_seq", "notices", ["kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_notices_kind_seq", table_name="notices")
    op.drop_index("ix_notices_reply_to", table_name="notices")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("answer_version")
        batch.drop_column("answer_key")
        batch.drop_column("reply_to_seq")
