"""``fedsync city restore`` and ``fedsync hub restore``: a backup put in place of a SQLite
store through SQLite itself. The store a crash left behind keeps its last commits in its
WAL; a copy laid over the store file beside that WAL read as a mix of both (indexes against
their tables, ticket numbers given twice). Restored by the command, the store is the copy,
whole, and no WAL is left to misread."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from city_node.node_lock import node_lock
from city_node.store import create_schema as city_schema
from province_hub.store import create_schema as hub_schema
from sync.cli import main
from sync.db import make_engine
from tests.conftest import ROSTER_CODES

CITY = ROSTER_CODES[0]


def _store(path: Path, schema) -> None:
    """A tier's store with a table of the test's own, for the writes a crash leaves."""
    engine = make_engine(f"sqlite:///{path}")
    schema(engine)
    engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE crash_rows (n INTEGER)")


def _counters(path: Path) -> list[tuple[int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT n FROM crash_rows ORDER BY n").fetchall()


def _crash_after_writes(path: Path, rows: int) -> None:
    """Commit ``rows`` counter bumps in ``path`` and die without closing: the commits stay
    in ``path``-wal, as after a crash (kill -9)."""
    script = textwrap.dedent(
        f"""
        import os, sqlite3
        conn = sqlite3.connect({str(path)!r}, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        for n in range({rows}):
            conn.execute("INSERT INTO crash_rows (n) VALUES (?)", (n,))
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_a_city_store_left_by_a_crash_is_restored_whole(tmp_path: Path, capsys) -> None:
    store = tmp_path / "city.sqlite"
    _store(store, city_schema)
    before = _counters(store)
    backup = tmp_path / "backup.sqlite"
    url = ["--code", CITY, "--database-url", f"sqlite:///{store}"]
    assert main(["city", "backup", *url, "--to", str(backup)]) == 0
    _crash_after_writes(store, 200)
    wal = Path(f"{store}-wal")
    assert wal.stat().st_size > 0, "the crash left its commits in the WAL"
    capsys.readouterr()

    assert main(["city", "restore", *url, "--from", str(backup)]) == 1  # says what, does not
    assert "re-run with --yes" in capsys.readouterr().out
    assert main(["city", "restore", *url, "--from", str(backup), "--yes"]) == 0
    assert "restored from" in capsys.readouterr().out
    assert _counters(store) == before
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert not wal.exists() or wal.stat().st_size == 0, "no WAL left to misread"
    assert store.stat().st_mode & 0o077 == 0


def test_restore_refuses_what_it_should_not_do(tmp_path: Path, capsys) -> None:
    store = tmp_path / "city.sqlite"
    _store(store, city_schema)
    hub_copy = tmp_path / "hub.sqlite"
    _store(hub_copy, hub_schema)
    url = ["--code", CITY, "--database-url", f"sqlite:///{store}"]
    before = store.read_bytes()
    cases = {
        "is not a city store": ["--from", str(hub_copy), "--yes"],
        "no such file": ["--from", str(tmp_path / "none.sqlite"), "--yes"],
        "--from: name the backup file": ["--from", "", "--yes"],
    }
    for said, argv in cases.items():
        assert main(["city", "restore", *url, *argv]) == 2, said
        assert said in capsys.readouterr().err
    # Never under a running node (its lock held).
    copy = tmp_path / "copy.sqlite"
    assert main(["city", "backup", *url, "--to", str(copy)]) == 0
    engine = make_engine(f"sqlite:///{store}")
    try:
        with node_lock(engine, CITY):
            assert main(["city", "restore", *url, "--from", str(copy), "--yes"]) == 2
    finally:
        engine.dispose()
    assert store.read_bytes() == before
    pg = ["--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/city"]
    assert main(["city", "restore", "--code", CITY, *pg, "--from", str(copy), "--yes"]) == 2
    assert "pg_restore" in capsys.readouterr().err


def test_a_hub_store_is_restored_and_a_missing_one_is_made(tmp_path: Path, capsys) -> None:
    store = tmp_path / "hub.sqlite"
    _store(store, hub_schema)
    backup = tmp_path / "backup.sqlite"
    assert main(["hub", "backup", "--database-url", f"sqlite:///{store}", "--to", str(backup)]) == 0
    _crash_after_writes(store, 50)
    elsewhere = tmp_path / "new" / "hub.sqlite"
    elsewhere.parent.mkdir()
    for target in (store, elsewhere):
        argv = ["hub", "restore", "--database-url", f"sqlite:///{target}", "--from", str(backup)]
        assert main([*argv, "--yes"]) == 0
        assert _counters(target) == _counters(backup)
    assert main(["hub", "status", "--database-url", f"sqlite:///{elsewhere}"]) == 0
    city_copy = tmp_path / "city.sqlite"
    _store(city_copy, city_schema)
    argv = ["hub", "restore", "--database-url", f"sqlite:///{store}", "--from", str(city_copy)]
    assert main([*argv, "--yes"]) == 2
    assert "is not a hub store" in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _quiet_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")
