"""The first acknowledgement of an outbox row, kept through a hub's restore

``outbox.acked_before_at`` keeps when the hub first acknowledged a row that a hub restored
from an older backup lost and the city sends again; the push carries it
(``PushRequest.acked_before``) so that the hub stores the row as received then. Existing rows
keep NULL (they were never re-sent with it).

Revision ID: c0009
Revises: c0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0009"
down_revision = "c0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("acked_before_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("acked_before_at")
