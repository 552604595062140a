"""survey coverage counts surveys of complaints only: ``fig_statistics.complaints_surveyed``

Revision ID: h0010
Revises: h0009
Create Date: 2026-11-29 08:40:00

Wire schema 1.4 adds ``SatisfactionCounts.complaints_surveyed``: a city's ``surveyed`` counts
the callbacks on every kind of ticket (the satisfaction rate's denominator), while survey
coverage divides by complaints closed, so coverage over ``surveyed`` could pass 100 %.

Back-fill from each header's own ``body`` (the report's bytes): the field where the report
carries it (a 1.4 city's report landed by an older hub keeps unknown fields in its bytes),
else ``surveyed``, which is what a city before 1.4 counted for coverage.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync.pb.fedsync.v1 import federation_pb2 as pb

revision = "h0010"
down_revision = "h0009"
branch_labels = None
depends_on = None

_CHUNK = 2000


def upgrade() -> None:
    with op.batch_alter_table("fig_statistics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("complaints_surveyed", sa.BigInteger(), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE fig_statistics SET complaints_surveyed = surveyed"))
    page = sa.text(
        "SELECT city_code, seq, body FROM fig_statistics "
        "WHERE city_code > :city OR (city_code = :city AND seq > :seq) "
        "ORDER BY city_code, seq LIMIT :limit"
    )
    update = sa.text(
        "UPDATE fig_statistics SET complaints_surveyed = :n WHERE city_code = :city AND seq = :seq"
    )
    city, seq = "", 0
    while rows := conn.execute(page, {"city": city, "seq": seq, "limit": _CHUNK}).all():
        carried = []
        for code, number, body in rows:
            satisfaction = pb.StatisticsReport.FromString(bytes(body)).satisfaction
            if satisfaction.HasField("complaints_surveyed"):
                carried.append({"n": satisfaction.complaints_surveyed, "city": code, "seq": number})
        if carried:
            conn.execute(update, carried)
        city, seq = rows[-1][0], rows[-1][1]
    with op.batch_alter_table("fig_statistics", schema=None) as batch_op:
        batch_op.alter_column("complaints_surveyed", existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("fig_statistics", schema=None) as batch_op:
        batch_op.drop_column("complaints_surveyed")
