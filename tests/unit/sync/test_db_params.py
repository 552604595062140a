"""The ingest hot path's driver values read back exactly as the ORM's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, MetaData, Table, select

from sync.db import bulk_insert, datetime_param, make_engine, timestamp_param

#: Seconds of protobuf Timestamps the hub may meet: 1900 .. 2200.
SECONDS = st.integers(min_value=-2_208_988_800, max_value=7_258_118_400)
NANOS = st.integers(min_value=0, max_value=999_999_999)


@given(seconds=SECONDS, nanos=NANOS)
def test_timestamp_param_is_datetime_param_of_the_same_instant(seconds: int, nanos: int) -> None:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        seconds=seconds, microseconds=nanos // 1000
    )
    # Both functions read only the connection's dialect name.
    for dialect in ("sqlite", "postgresql"):
        conn: Any = SimpleNamespace(dialect=SimpleNamespace(name=dialect))
        assert timestamp_param(conn, seconds, nanos) == datetime_param(conn, moment)


def test_a_bulk_inserted_timestamp_reads_back_through_the_orm() -> None:
    engine = make_engine("sqlite://")
    table = Table("t", MetaData(), Column("at", DateTime(timezone=True)))
    table.create(engine)
    seconds, nanos = 1_764_200_000, 123_456_789
    with engine.begin() as conn:
        bulk_insert(conn, "t", ("at",), [(timestamp_param(conn, seconds, nanos),)])
        got = conn.execute(select(table.c.at)).scalar_one()
    engine.dispose()
    assert got.replace(tzinfo=UTC) == datetime.fromtimestamp(seconds, UTC) + timedelta(
        microseconds=123_456
    )
