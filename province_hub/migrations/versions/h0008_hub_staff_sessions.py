"""hub accounts get a session generation: disabling an account, resetting or changing its
password, changing its role and logging out bump it, and the supervisor web refuses a
session cookie signed under an older one (``province_hub.staff``)

Revision ID: h0008
Revises: h0007
Create Date: 2026-11-28 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h0008"
down_revision = "h0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "hub_staff",
        sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("hub_staff") as batch:
        batch.drop_column("session_generation")
