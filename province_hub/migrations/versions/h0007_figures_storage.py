"""figures storage: a statistics report's slices live in its header row's ``body``

Revision ID: h0007
Revises: h0004
Create Date: 2026-11-27 16:30:00

``fig_statistics`` gets ``body`` (the report's ``StatisticsReport`` bytes, as its record keeps
them), from which the category, channel and operator slices are read; the child tables
``fig_statistics_slices`` and ``fig_statistics_operators`` go (why: ``province_hub.figures``).

Back-fill, in this order:

1. every existing header takes the bytes of its own record (same ``(city_code, seq)``): the
   slices it had as rows were landed from exactly those bytes;
2. accepted statistics records without a header (a store migrated from before h0002, whose
   h0002 now leaves statistics to this revision) get their whole header landed.

Downgrade re-creates the child tables from the bodies and drops the column.

The same revision adds ``login_failures``: failed logins counted in the store, so that hub
replicas behind one address share one limit (``province_hub.web.login_failures``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from province_hub.figures import backfill, statistics_operators, statistics_slices

revision = "h0007"
down_revision = "h0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fig_statistics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE fig_statistics SET body = (SELECT r.body FROM records r "
            "WHERE r.city_code = fig_statistics.city_code AND r.seq = fig_statistics.seq)"
        )
    )
    # A header whose record is gone cannot exist (records are never deleted); should one,
    # it keeps its counts with no slices rather than failing the upgrade.
    conn.execute(
        sa.text("UPDATE fig_statistics SET body = :empty WHERE body IS NULL"), {"empty": b""}
    )
    with op.batch_alter_table("fig_statistics", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
    backfill(conn, kinds=("statistics_report",), missing_only=True)
    op.drop_table("fig_statistics_slices")
    op.drop_table("fig_statistics_operators")
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_key", "login_failures", ["key", "at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_at", table_name="login_failures")
    op.drop_index("ix_login_failures_key", table_name="login_failures")
    op.drop_table("login_failures")
    op.create_table(
        "fig_statistics_operators",
        sa.Column("operator_id", sa.Text(), nullable=False),
        sa.Column("registered", sa.BigInteger(), nullable=False),
        sa.Column("closed", sa.BigInteger(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("city_code", "seq", "n"),
        sqlite_with_rowid=False,
    )
    slices = op.create_table(
        "fig_statistics_slices",
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("complaints", sa.BigInteger(), nullable=False),
        sa.Column("suggestions", sa.BigInteger(), nullable=False),
        sa.Column("enquiries", sa.BigInteger(), nullable=False),
        sa.Column("closed", sa.BigInteger(), nullable=False),
        sa.Column("closed_in_time", sa.BigInteger(), nullable=False),
        sa.Column("repeat_complaints", sa.BigInteger(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("city_code", "seq", "n"),
        sqlite_with_rowid=False,
    )
    operators = sa.table(
        "fig_statistics_operators",
        *(sa.column(c) for c in ("city_code", "seq", "n", "operator_id", "registered", "closed")),
    )
    conn = op.get_bind()
    for code, seq, body in conn.execute(
        sa.text("SELECT city_code, seq, body FROM fig_statistics ORDER BY city_code, seq")
    ).all():
        rows = [r._asdict() for r in statistics_slices(code, seq, body)]
        if rows:
            conn.execute(sa.insert(slices), rows)
        ops = [r._asdict() for r in statistics_operators(code, seq, body)]
        if ops:
            conn.execute(sa.insert(operators), ops)
    with op.batch_alter_table("fig_statistics", schema=None) as batch_op:
        batch_op.drop_column("body")
