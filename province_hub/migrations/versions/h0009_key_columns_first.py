"""the figure slices' tables (QA defects and operators, overtime cases) get their key columns
first on SQLite: SQLite 3.40's quick_check reports "NULL value" in every row of a WITHOUT
ROWID table whose NOT NULL columns come before its key, which made every backup of a hub
holding such rows fail its check (and hid real findings behind 100 false ones)

PostgreSQL's tables are left as they are (column order changes nothing there).

Revision ID: h0009
Revises: h0008
Create Date: 2026-11-29 06:30:00
"""

from __future__ import annotations

from alembic import op

revision = "h0009"
down_revision = "h0008"
branch_labels = None
depends_on = None

#: Each table's columns after the key, as created by h0002/h0007 (name, type).
_TABLES = {
    "fig_qa_defects": (("defect", "VARCHAR(32)"), ("count", "BIGINT")),
    "fig_qa_operators": (
        ("operator_id", "TEXT"),
        ("sampled", "BIGINT"),
        ("passed", "BIGINT"),
        ("mean_score_centi", "BIGINT"),
    ),
    "fig_overtime_cases": (
        ("ticket_id", "TEXT"),
        ("category", "TEXT"),
        ("branch", "TEXT"),
        ("limit_hours", "BIGINT"),
        ("overdue_hours", "BIGINT"),
        ("compensation_fen", "BIGINT"),
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, rest in _TABLES.items():
        columns = ["city_code", "seq", "n", *(name for name, _ in rest)]
        rest_ddl = "".join(f", {name} {kind} NOT NULL" for name, kind in rest)
        op.execute(
            f"CREATE TABLE _h0009_{table} (city_code VARCHAR(6) NOT NULL, seq BIGINT NOT NULL, "
            f"n INTEGER NOT NULL{rest_ddl}, PRIMARY KEY (city_code, seq, n)) WITHOUT ROWID"
        )
        listed = ", ".join(columns)
        op.execute(f"INSERT INTO _h0009_{table} ({listed}) SELECT {listed} FROM {table}")
        op.execute(f"DROP TABLE {table}")
        op.execute(f"ALTER TABLE _h0009_{table} RENAME TO {table}")


def downgrade() -> None:
    # Column order only: nothing to undo.
    pass
