"""A hub restored from its backup, with real processes: the hub and two cities as
``fedsync`` processes over mutual TLS, the hub SIGKILLed and started again on a copy taken
earlier (``fedsync hub backup`` while it ran, on SQLite; a copy of the stopped database on
PostgreSQL, as pg_dump would give).

Afterwards every envelope is held once, each city holds every notice once — the one sent
after the restore too, although a notice numbered later than the hub's clock before the
restore had moved the cities' cursors past it — and a receipt for a notice the restored hub
lost is kept quarantined, without a rejection.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, select

from city_node import services as city_services
from city_node.context import Actor
from city_node.domain import Role
from city_node.store import InboxNotice
from province_hub import services as hub_services
from province_hub.store import Notice, Record
from sync.outbox import OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES
from tests.faults.test_process_faults import (
    Federation,
    Producer,
    federation,
    snapshot,
    wait_all_delivered,
    wait_for,
)

__all__ = ["federation"]  # the fixture, used by name

pytestmark = pytest.mark.slow
CODES = ROSTER_CODES[:2]
LEADER = Actor("leader-1", Role.LEADER)


def inbox_titles(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(InboxNotice.title)).scalars())


def hub_holds(engine: Engine, code: str, count: int) -> bool:
    with engine.connect() as conn:
        seqs = conn.execute(select(Record.seq).where(Record.city_code == code)).scalars()
        return len(set(seqs)) == count


def titles_are(engine: Engine, titles: list[str]) -> bool:
    return inbox_titles(engine) == titles


def cursor_is(engine: Engine, seq: int) -> bool:
    return snapshot(engine).notice_cursor == seq


def announce(engine: Engine, title: str, now: datetime | None = None) -> pb.Notice:
    return hub_services.send_notice(
        engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title=title),
        roster_codes=CODES,
        now=now,
    )


def all_delivered(fed: Federation, cities: dict[str, Any], timeout: float) -> None:
    queued = {code: snapshot(engine).last_seq for code, (engine, _) in cities.items()}
    wait_all_delivered(fed, cities, queued, timeout=timeout)


def hub_backup(fed: Federation, databases: Any, url: str, hub: Any) -> str:
    """A backup of the hub's store: taken while it runs on SQLite (``fedsync hub backup``);
    PostgreSQL's copy needs the database closed (the hub stopped and started again)."""
    if databases.engine_name == "sqlite":
        target = fed.tmp_path / "hub-backup.sqlite"
        done = subprocess.run(
            [sys.executable, "-m", "sync.cli", "hub", "backup", "--database-url", url,
             "--to", str(target)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        fed.note(done.stdout.strip())
        return f"sqlite:///{target}"
    hub.kill()
    for engine in fed.engines:
        engine.dispose()
    copied: str = databases.copy(url)
    fed.start_hub(hub)
    return copied


@pytest.mark.timeout(300)
def test_hub_restored_from_its_backup_keeps_every_guarantee(
    databases: Any, federation: Federation
) -> None:
    fed = federation
    hub_engine, hub, cities = fed.launch(databases, CODES)
    hub_url = str(hub_engine.url.render_as_string(hide_password=False))
    producers = {code: Producer(engine, code) for code, (engine, _) in cities.items()}
    for producer in producers.values():
        producer.send(20)
    first = announce(hub_engine, "before the backup")
    all_delivered(fed, cities, timeout=60)
    for code, (engine, _) in cities.items():
        wait_for(
            partial(titles_are, engine, ["before the backup"]),
            timeout=30, what=f"{code}: the first notice", describe=fed.describe,
        )  # fmt: skip

    backup_url = hub_backup(fed, databases, hub_url, hub)

    for producer in producers.values():
        producer.send(20)
    # Numbered by a clock an hour ahead (the hub's clock was wrong, or a burst of notices
    # ran its counter ahead): the cities' cursors move past anything the restored hub's
    # clock would give.
    ahead = announce(hub_engine, "ahead", now=datetime.now(UTC) + timedelta(hours=1))
    for code, (engine, _) in cities.items():
        wait_for(
            partial(cursor_is, engine, ahead.seq),
            timeout=30, what=f"{code}: the notice ahead", describe=fed.describe,
        )  # fmt: skip
    answering, (answering_engine, _) = next(iter(cities.items()))
    receipt_seq = city_services.record_receipt(
        answering_engine, notice_seq=ahead.seq, action="read", actor=LEADER
    )
    all_delivered(fed, cities, timeout=60)

    hub.kill()
    fed.note(f"hub killed; restoring from {backup_url}")
    restored_engine = fed.hub_engine(backup_url)
    restored = fed.hub(backup_url)
    fed.start_hub(restored)
    after = announce(restored_engine, "after the restore")
    fed.note(f"notices: first {first.seq}, ahead {ahead.seq}, after {after.seq}")
    expected = ["after the restore", "ahead", "before the backup"]
    for code, (engine, _) in cities.items():
        wait_for(
            partial(titles_are, engine, expected),
            timeout=60, what=f"{code}: every notice once", describe=fed.describe,
        )  # fmt: skip
    # The cities' outboxes say delivered already: wait for the restored hub to hold it all.
    for code, (engine, _) in cities.items():
        wait_for(
            partial(hub_holds, restored_engine, code, snapshot(engine).last_seq),
            timeout=90, what=f"{code}: the restored hub refilled", describe=fed.describe,
        )  # fmt: skip

    for code, (engine, _) in cities.items():
        with engine.connect() as conn:
            queued = {
                seq: pb.Envelope.FromString(raw).content_digest
                for seq, raw in conn.execute(select(OutboxRow.seq, OutboxRow.envelope))
            }
        with restored_engine.connect() as conn:
            held = conn.execute(
                select(Record.seq, Record.digest, Record.status, Record.reason).where(
                    Record.city_code == code
                )
            ).all()
        assert {r.seq: r.digest for r in held} == queued, f"{code}: not each envelope once"
        odd = {r.seq: (r.status, r.reason) for r in held if r.status != "accepted"}
        if code == answering:
            [(status, reason)] = [odd.pop(receipt_seq)]
            assert status == "quarantined" and "restored" in reason
        assert odd == {}, f"{code}: {odd}"
        assert snapshot(engine).last_rejection == ""
    with restored_engine.connect() as conn:
        kinds = set(conn.execute(select(Notice.kind)).scalars())
    assert "REJECTION" not in kinds
