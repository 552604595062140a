"""The stores' schemas come from Alembic migrations, and those match the models exactly."""

from __future__ import annotations

from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, Table, insert, inspect, select

from city_node import store as city_store
from province_hub import store as hub_store
from sync.db import make_engine, write_connection
from sync.migrate import head_revision
from sync.outbox import LinkState, OutboxBase


@pytest.mark.parametrize("store", [city_store, hub_store], ids=["city", "hub"])
def test_migrated_schema_equals_the_models(databases: Any, store: Any) -> None:
    engine = make_engine(databases(f"mig-{store.__name__.split('.')[0]}"))
    revision = store.create_schema(engine)
    assert revision == head_revision(store.MIGRATIONS)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        # Alembic compares a sequence of MetaData (as its target_metadata may be); the
        # annotation of compare_metadata only names a single MetaData.
        differences = compare_metadata(context, cast(MetaData, list(store.METADATA)))
    assert differences == []
    # Running it again is a no-op (every process start does).
    assert store.create_schema(engine) == revision
    engine.dispose()


def test_a_store_from_before_migrations_keeps_its_data(databases: Any) -> None:
    """A city store made by create_all of the baseline tables is stamped, then upgraded."""
    engine = make_engine(databases("legacy-city"))
    # The baseline's link state and outbox: the models' tables without the columns that
    # later migrations add.
    added_later = {"outbox": {"acked_before_at"}}
    old = MetaData()
    for name in ("link_state", "outbox"):
        model = OutboxBase.metadata.tables[name]
        Table(
            name,
            old,
            *(c._copy() for c in model.columns if c.name not in added_later.get(name, ())),
        )
    old.create_all(engine)
    with write_connection(engine) as conn, conn.begin():
        conn.execute(insert(LinkState).values(id=1, city_code="620100", epoch="e" * 32, last_seq=7))
        # The baseline inbox, as session-1 stores had it (no *_by columns yet).
        conn.exec_driver_sql(
            "CREATE TABLE inbox (notice_seq BIGINT PRIMARY KEY, kind VARCHAR(32) NOT NULL, "
            "priority VARCHAR(16) NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, "
            "sender TEXT NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, "
            "received_at TIMESTAMP WITH TIME ZONE NOT NULL, "
            "task_deadline TIMESTAMP WITH TIME ZONE, payload BYTEA NOT NULL, "
            "read_at TIMESTAMP WITH TIME ZONE, done_at TIMESTAMP WITH TIME ZONE, "
            "done_note TEXT, objection_at TIMESTAMP WITH TIME ZONE, objection_reason TEXT)"
            if conn.dialect.name == "postgresql"
            else "CREATE TABLE inbox (notice_seq BIGINT PRIMARY KEY, kind VARCHAR(32) NOT NULL, "
            "priority VARCHAR(16) NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, "
            "sender TEXT NOT NULL, created_at DATETIME NOT NULL, received_at DATETIME NOT NULL, "
            "task_deadline DATETIME, payload BLOB NOT NULL, read_at DATETIME, done_at DATETIME, "
            "done_note TEXT, objection_at DATETIME, objection_reason TEXT)"
        )
    assert city_store.create_schema(engine) == head_revision(city_store.MIGRATIONS)
    with engine.connect() as conn:
        assert conn.execute(select(LinkState.last_seq)).scalar_one() == 7
        assert "tickets" in inspect(conn).get_table_names()
        assert "read_by" in {c["name"] for c in inspect(conn).get_columns("inbox")}
    engine.dispose()
