"""The lowest revision the hub takes for a report's period, when it named one

``reports.hub_next_revision``: a REJECTION of this report because the hub holds its revision
of the period with other figures (a store restored from an older copy drafted that number
again) says, from wire schema 1.5, the lowest revision the hub takes
(``Rejection.next_revision``). The next draft of the period takes it, so the correction the
leader approves is the one the hub accepts. Existing rows keep NULL.

Revision ID: c0010
Revises: c0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0010"
down_revision = "c0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("hub_next_revision", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("hub_next_revision")
