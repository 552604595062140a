"""Schema migrations (Alembic) run from code, for the city store and the hub store alike.

Each store has its own migration scripts (``city_node/migrations``,
``province_hub/migrations``); a process brings its store to the latest revision at start
and ``fedsync city|hub migrate`` does it on its own. On PostgreSQL an advisory lock makes
two processes starting on one database (two hub replicas) take turns; on SQLite the
``BEGIN IMMEDIATE`` of :mod:`sync.db` does the same.

Stores created before migrations existed (tables present, no ``alembic_version``) are
stamped with the baseline revision first, so their data is kept and only later revisions
run.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from sync.db import write_connection

#: Arbitrary constant naming "fedsync schema migration" for pg_advisory_xact_lock.
_PG_LOCK_KEY = 0x6665_6473_796E_63


def config(script_location: str, metadata: Sequence[MetaData], conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["connection"] = conn
    cfg.attributes["target_metadata"] = list(metadata)
    return cfg


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def head_revision(script_location: str) -> str:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None, f"no migrations in {script_location}"
    return head


def upgrade(
    engine: Engine,
    *,
    script_location: str,
    metadata: Sequence[MetaData],
    baseline: str,
    baseline_table: str,
) -> str:
    """Bring ``engine``'s schema to head; return the revision it is at afterwards.

    ``baseline_table`` present without a recorded revision means a store made before
    migrations: it is stamped ``baseline`` (its tables are that revision's) and upgraded.
    """
    with write_connection(engine) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        cfg = config(script_location, metadata, conn)
        if current_revision(conn) is None and inspect(conn).has_table(baseline_table):
            command.stamp(cfg, baseline)
        command.upgrade(cfg, "head")
        revision = current_revision(conn)
    assert revision is not None
    return revision


def run_env(metadata: Sequence[MetaData]) -> None:
    """The body of a store's Alembic ``env.py``: run the migrations on the connection
    :func:`upgrade` passed in, or — from alembic's own CLI — on ``-x url=...``."""
    from alembic import context
    from sqlalchemy import create_engine

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=list(metadata),
            render_as_batch=True,  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.get_x_argument(as_dictionary=True)["url"]
    with create_engine(url).begin() as conn:
        run(conn)
