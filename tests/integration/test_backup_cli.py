"""``fedsync hub backup`` and ``fedsync city backup``: copies of running SQLite stores, taken
while envelopes flow over real mutual TLS, are consistent and private, and a hub restored
from one gets back, from the cities, everything it lost, each envelope once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from city_node import services as city_services
from sync.cli import main
from sync.db import make_engine
from sync.outbox import Outbox, OutboxRow
from tests.conftest import ROSTER_CODES, wait_until
from tests.integration.test_recovery import hub_records, outbox_digests, suggestion

CITY = ROSTER_CODES[0]
#: Most batches a producer queues, whatever happens.
MOST = 5000


def fedsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *args], capture_output=True, text=True, timeout=120
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Producer:
    """Queues suggestion batches at the city, one per transaction, in a thread, until told
    to stop (at most ``MOST``)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.made = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for n in range(1, MOST + 1):
            if self._stop.wait(0.005):
                return
            city_services.send(self.engine, suggestion("b", n))
            self.made = n

    async def stop_after(self, more: int) -> int:
        """Let it queue ``more`` batches, stop it; how many it queued in all."""
        target = min(self.made + more, MOST)
        await wait_until(lambda: self.made >= target, what=f"{more} more batches")
        self._stop.set()
        await asyncio.to_thread(self.thread.join, 30)
        assert not self.thread.is_alive()
        return self.made


@pytest.mark.timeout(180)
async def test_hub_backup_while_running_restores_to_each_envelope_once(
    tmp_path, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub_settings = hub_settings_factory(sqlite_url(tmp_path / "hub.sqlite"))
    hub = await start_hub(hub_settings)
    city = start_city(city_settings_factory(CITY, sqlite_url(tmp_path / "city.sqlite"), hub.port))
    producer = Producer(city.engine)
    await wait_until(lambda: len(hub_records(hub.engine)) >= 10, what="envelopes flowing")
    copy = tmp_path / "backups" / "hub-copy.sqlite"
    copy.parent.mkdir()
    done = await asyncio.to_thread(
        fedsync, "hub", "backup", "--database-url", hub_settings.database_url, "--to", str(copy)
    )
    assert done.returncode == 0, done.stderr
    assert f"copied to {copy}" in done.stdout
    count = await producer.stop_after(20)
    await wait_until(lambda: len(hub_records(hub.engine)) == count, what="all delivered")
    assert mode_of(copy) == 0o600

    # The copy is the hub as of one commit: a gap-free prefix of what the city sent.
    copy_engine = make_engine(sqlite_url(copy))
    try:
        held = hub_records(copy_engine)
    finally:
        copy_engine.dispose()
    assert 10 <= len(held) < count and sorted(held) == list(range(1, len(held) + 1))

    await hub.stop(grace=0.5)
    restored = await start_hub(
        dataclasses.replace(
            hub_settings, database_url=sqlite_url(copy), listen=f"127.0.0.1:{hub.port}"
        )
    )
    await wait_until(
        lambda: len(hub_records(restored.engine)) == count, what="the restored hub refilled"
    )
    refilled = hub_records(restored.engine)
    assert {seq: digest for seq, (digest, _) in refilled.items()} == outbox_digests(city.engine)
    assert all(status == "accepted" for _, status in refilled.values())


@pytest.mark.timeout(180)
async def test_city_backup_while_running_is_consistent_and_private(
    tmp_path, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(sqlite_url(tmp_path / "hub.sqlite")))
    settings = city_settings_factory(CITY, sqlite_url(tmp_path / "city.sqlite"), hub.port)
    city = start_city(settings)
    producer = Producer(city.engine)
    await wait_until(lambda: Outbox(city.engine).snapshot().last_seq >= 10, what="writes")
    copy = tmp_path / "city-copy.sqlite"
    done = await asyncio.to_thread(
        fedsync,
        "city", "backup", "--code", CITY,
        "--database-url", settings.database_url,
        "--to", str(copy),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    count = await producer.stop_after(20)
    assert mode_of(copy) == 0o600
    copy_engine = make_engine(sqlite_url(copy))
    try:
        snapshot = Outbox(copy_engine).snapshot()
        with copy_engine.connect() as conn:
            seqs = list(conn.execute(select(OutboxRow.seq).order_by(OutboxRow.seq)).scalars())
    finally:
        copy_engine.dispose()
    # Every seq the copy assigned is in it, and nothing after: one commit's view.
    assert 10 <= snapshot.last_seq < count
    assert seqs == list(range(1, snapshot.last_seq + 1))
    assert snapshot.epoch == Outbox(city.engine).snapshot().epoch
    await city.stop()


def test_backup_refuses_bad_input_with_the_reason(tmp_path, capsys):
    stores = {"hub": tmp_path / "hub.sqlite", "city": tmp_path / "city.sqlite"}
    assert main(["hub", "migrate", "--database-url", sqlite_url(stores["hub"])]) == 0
    city_store = ["--database-url", sqlite_url(stores["city"])]
    assert main(["city", "migrate", "--code", CITY, *city_store]) == 0
    existing = tmp_path / "taken.sqlite"
    existing.write_bytes(b"keep me")
    for tier in (["hub"], ["city", "--code", CITY]):
        store = stores[tier[0]]
        cases = [
            (["--database-url", sqlite_url(store), "--to", str(existing)], "exists already"),
            (["--database-url", sqlite_url(store), "--to", str(tmp_path)], "is a folder"),
            (["--database-url", sqlite_url(store), "--to", ""], "--to: name the file to write"),
            (
                ["--database-url", sqlite_url(store), "--to", str(tmp_path / "no" / "x.sqlite")],
                f"the folder {tmp_path / 'no'} does not exist",
            ),
            (["--database-url", sqlite_url(store), "--to", str(store)], "exists already"),
            (
                [
                    "--database-url",
                    sqlite_url(tmp_path / "none.sqlite"),
                    "--to",
                    str(tmp_path / "c"),
                ],
                f"database_url: there is no store at {tmp_path / 'none.sqlite'}",
            ),
        ]
        for flags, reason in cases:
            capsys.readouterr()
            assert main([tier[0], "backup", *tier[1:], *flags]) == 2, (tier, flags)
            assert reason in capsys.readouterr().err, (tier, flags)
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "none.sqlite").exists()  # no store made where there was none
    assert not (tmp_path / "c").exists()


def test_backup_of_a_postgresql_store_points_to_pg_dump(postgres_server_url, tmp_path, capsys):
    from city_node.store import create_schema as city_schema
    from province_hub.store import create_schema as hub_schema
    from tests.conftest import DatabaseFactory

    target = tmp_path / "pg.dump"
    databases = DatabaseFactory("postgresql", tmp_path, postgres_server_url)
    try:
        for tier, schema in ((["hub"], hub_schema), (["city", "--code", CITY], city_schema)):
            url = databases(f"pg-backup-{tier[0]}")
            engine = make_engine(url)
            schema(engine)
            engine.dispose()
            code = main([tier[0], "backup", *tier[1:], "--database-url", url, "--to", str(target)])
            assert code == 2
            assert "pg_dump" in capsys.readouterr().err
    finally:
        databases.drop_all()
    assert not target.exists()


def test_a_hub_store_with_qa_and_overtime_rows_is_copied_and_a_real_null_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite 3.40 reports a NULL in every row of a WITHOUT ROWID table whose NOT NULL
    columns come before its key (fig_qa_defects…): the copy is checked by a query then."""
    import sqlite3

    store = tmp_path / "hub.sqlite"
    url = f"sqlite:///{store}"
    assert main(["hub", "migrate", "--database-url", url]) == 0
    with sqlite3.connect(store) as conn:
        conn.execute(
            "INSERT INTO fig_qa_defects(defect, count, city_code, seq, n) "
            "VALUES ('late', 1, ?, 1, 0)",
            (CITY,),
        )
    copy = tmp_path / "copy.sqlite"
    assert main(["hub", "backup", "--database-url", url, "--to", str(copy)]) == 0
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT defect, count FROM fig_qa_defects").fetchall() == [("late", 1)]
    # A NULL that is there (a schema edited behind SQLite's back): the copy is refused.
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE t (a TEXT)")
        conn.execute("INSERT INTO t VALUES (NULL)")
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute(
            "UPDATE sqlite_master SET sql='CREATE TABLE t (a TEXT NOT NULL)' WHERE name='t'"
        )
    capsys.readouterr()
    bad = tmp_path / "bad.sqlite"
    assert main(["hub", "backup", "--database-url", url, "--to", str(bad)]) == 2
    assert "NULL value in t.a" in capsys.readouterr().err
    assert not bad.exists()


def test_a_backup_of_the_other_tiers_store_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`city backup` given a hub's store (or the reverse) says what the store is and copies
    nothing: a copy filed as the wrong tier's backup would be restored in the wrong place."""
    stores = {"hub": tmp_path / "hub.sqlite", "city": tmp_path / "city.sqlite"}
    assert main(["hub", "migrate", "--database-url", f"sqlite:///{stores['hub']}"]) == 0
    assert (
        main(["city", "migrate", "--code", CITY, "--database-url", f"sqlite:///{stores['city']}"])
        == 0
    )
    capsys.readouterr()
    for tier, other in (("city", "hub"), ("hub", "city")):
        target = tmp_path / f"{tier}-backup.sqlite"
        code = ["--code", CITY] if tier == "city" else []
        url = f"sqlite:///{stores[other]}"
        assert main([tier, "backup", *code, "--database-url", url, "--to", str(target)]) == 2
        err = capsys.readouterr().err
        assert f"is a {other} store" in err and f"not a {tier} store" in err, err
        assert not target.exists()
        # Its own store is copied as before.
        own = f"sqlite:///{stores[tier]}"
        assert main([tier, "backup", *code, "--database-url", own, "--to", str(target)]) == 0
        assert target.exists()
