"""Province notices: the notice an answer replies to, and standard answers by key and version

``inbox.reply_to_seq`` shows the province's answer to an objection next to the notice
objected to. Standard answers get the key the province names (existing rows: their
"<category>/<topic>", what the node uses when a notice names none), a version (existing: 1)
and ``superseded_by``, the seq of the newer version that replaced one (NULL: current), so
operators search the current answers only and still see what an older one said.

Revision ID: c0006
Revises: c0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0006"
down_revision = "c0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("reply_to_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("standard_answers") as batch:
        batch.add_column(sa.Column("answer_key", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("superseded_by", sa.BigInteger(), nullable=True))
    op.execute("UPDATE standard_answers SET answer_key = category || '/' || topic")
    op.create_index("ix_standard_answers_key", "standard_answers", ["answer_key", "version"])


def downgrade() -> None:
    op.drop_index("ix_standard_answers_key", table_name="standard_answers")
    with op.batch_alter_table("standard_answers") as batch:
        batch.drop_column("superseded_by")
        batch.drop_column("version")
        batch.drop_column("answer_key")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("reply_to_seq")
