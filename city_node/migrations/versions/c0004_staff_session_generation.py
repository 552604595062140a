"""Staff accounts get a session generation: disabling an account, resetting its password or
changing its role bumps it, so a console session signed under an older generation can be
refused (the console's check comes with the web foundation).

Revision ID: c0004
Revises: c0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0004"
down_revision = "c0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "staff",
        sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("session_generation")
