"""Why the hub refused a report, when it did: ``reports.hub_rejection``

A report the leader approved is queued for the province; the hub may still quarantine it (a
rule broken, a revision it holds with other figures) and say so with a REJECTION notice. The
report then kept reading "approved" in the report list, the console and ``--json``, with the
refusal only in the inbox and the link status. The REJECTION's reason is now kept on the
report it names (its outbox seq), and the views show it. Existing rows keep NULL (a rejection
received before this revision stays in the inbox only).

Revision ID: c0011
Revises: c0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0011"
down_revision = "c0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("hub_rejection", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("hub_rejection")
