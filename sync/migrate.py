"""Schema migrations (Alembic) run from code, for the city store and the hub store alike.

Each store has its own migration scripts (``city_node/migrations``,
``province_hub/migrations``); a process brings its store to the latest revision at start
and ``fedsync city|hub migrate`` does it on its own. On PostgreSQL an advisory lock makes
two processes starting on one database (two hub replicas) take turns; on SQLite the
``BEGIN IMMEDIATE`` of :mod:`sync.db` does the same.

Stores created before migrations existed (tables present, no ``alembic_version``) are
stamped with the baseline revision first, so their data is kept and only later revisions
run.

Alembic (with Mako and Pygments, ≈ 11 MB resident and a tenth of a second) is imported only
when a store is behind: a store already at head is recognised by reading its
``alembic_version`` row and the ``revision``/``down_revision`` lines of the migration
scripts, so a process restarting on its store, or one that only reads a store (the demo's
province desk), does not load it.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, MetaData, inspect, text

from sync.config import ConfigError
from sync.db import write_connection

if TYPE_CHECKING:
    from alembic.config import Config

#: Arbitrary constant naming "fedsync schema migration" for pg_advisory_xact_lock.
_PG_LOCK_KEY = 0x6665_6473_796E_63


def config(script_location: str, metadata: Sequence[MetaData], conn: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["connection"] = conn
    cfg.attributes["target_metadata"] = list(metadata)
    return cfg


def current_revision(conn: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def head_revision(script_location: str) -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

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
        at_head = _recorded_head(conn, script_location)
        if at_head is not None:
            return at_head
        from alembic import command

        cfg = config(script_location, metadata, conn)
        recorded = current_revision(conn)
        known = _script_revisions(script_location)
        if recorded is not None and known is not None and recorded not in known:
            # Another kind of store (a city's database given to the hub, or the reverse),
            # or one a newer fedsync migrated: Alembic would only say it cannot locate it.
            mine = _STORE_NAMES.get(script_location, "store")
            what = _other_store(recorded)
            advice = (
                "check the database URL (a FEDSYNC_DATABASE_URL left in the environment "
                "outranks --config)"
            )
            if what == f"a {mine}":  # this kind, from a later release
                what = f"a {mine} a newer fedsync migrated"
                advice = "run the fedsync release that migrated it, or a later one"
            raise ConfigError(
                f"the database is at schema revision {recorded!r}, which this fedsync's "
                f"{mine} migrations do not know (they end at "
                f"{_script_head(script_location)!r}): it is {what}; {advice}"
            )
        if recorded is None and inspect(conn).has_table(baseline_table):
            command.stamp(cfg, baseline)
        command.upgrade(cfg, "head")
        revision = current_revision(conn)
    assert revision is not None
    return revision


def _recorded_head(conn: Connection, script_location: str) -> str | None:
    """The store's revision when it is recorded as the scripts' one head, else None (the
    store is behind, new, or the scripts are not plain enough to read: Alembic decides)."""
    head = _script_head(script_location)
    if head is None or not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return head if list(rows) == [head] else None


#: The stores by their scripts' location, for a refusal that names them.
_STORE_NAMES = {"city_node:migrations": "city store", "province_hub:migrations": "hub store"}


def _other_store(revision: str) -> str:
    """What a revision unknown to the scripts at hand says of the store (the city's
    revisions are ``c0001``…, the hub's ``h0001``…)."""
    if revision[:1] == "c" and revision[1:].isdigit():
        return "a city store"
    if revision[:1] == "h" and revision[1:].isdigit():
        return "a hub store"
    return "not a fedsync store of this kind, or one a newer fedsync migrated"


def _script_head(script_location: str) -> str | None:
    """The one head of the migration scripts at ``script_location`` (``package:dir`` or a
    directory), read from each script's ``revision`` and ``down_revision`` assignments
    without importing Alembic; None when that does not name exactly one head."""
    found = _scripts(script_location)
    return None if found is None else found[1]


def _script_revisions(script_location: str) -> frozenset[str] | None:
    """Every revision of the scripts at ``script_location``; None when they cannot be read."""
    found = _scripts(script_location)
    return None if found is None else found[0]


@functools.cache  # the scripts do not change while a process runs; tests open many stores
def _scripts(script_location: str) -> tuple[frozenset[str], str] | None:
    """The scripts' revisions and their one head; None when that does not name exactly one."""
    package, sep, sub = script_location.partition(":")
    if sep:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        versions = Path(next(iter(spec.submodule_search_locations))) / sub / "versions"
    else:
        versions = Path(script_location) / "versions"
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        scripts = sorted(versions.glob("*.py"))
        for script in scripts:
            found = _assignments(script.read_text("utf-8"), str(script))
            revision = found.get("revision")
            if not isinstance(revision, str):
                return None
            revisions.add(revision)
            down = found.get("down_revision")
            if isinstance(down, str):
                parents.add(down)
            elif isinstance(down, tuple | list):  # a merge point
                parents.update(str(d) for d in down)
            elif down is not None:
                return None
    except (OSError, SyntaxError, ValueError):
        return None
    heads = revisions - parents
    return (frozenset(revisions), next(iter(heads))) if len(heads) == 1 else None


def _assignments(source: str, filename: str) -> dict[str, object]:
    """Module-level ``revision``/``down_revision`` assignments with literal values."""
    found: dict[str, object] = {}
    for node in ast.parse(source, filename).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            found[target.id] = ast.literal_eval(value)
    return found


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
