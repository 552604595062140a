"""Restores as an operator does them, with real processes: stores copied and swapped, nodes
killed, ``fedsync city rebase --yes`` run from a shell.

After each scenario the federation's promise is checked by content, not by count: every
distinct envelope any store produced is held by the hub exactly once, under gap-free seqs.
The three ways a restored city store meets the hub (restart then work; work while down then
restart; a backup taken with unsent rows), and a hub restored to before a city's re-base.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from city_node import services as city_services
from province_hub import services as hub_services
from province_hub.store import Record
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import today_in
from tests.conftest import ROSTER_CODES
from tests.faults.test_process_faults import TZ, Federation, Proc, federation, wait_for

__all__ = ["federation"]  # the fixture, used by name

pytestmark = pytest.mark.slow
CODE = ROSTER_CODES[0]


def produce(engine: Engine, tag: str, count: int) -> set[str]:
    day = (today_in(TZ) - timedelta(days=1)).isoformat()
    made = set()
    for n in range(1, count + 1):
        ticket = f"{tag}-{n}"
        city_services.send(
            engine,
            pb.SuggestionBatch(
                batch_date=day,
                batch_number=n,
                suggestions=[pb.Suggestion(ticket_id=ticket, category="SVC", content=ticket)],
                classified_by="clerk-1",
            ),
            tz_name=TZ,
        )
        made.add(ticket)
    return made


def held_once(fed: Federation, hub_engine: Engine, expected: set[str]) -> bool:
    with hub_engine.connect() as conn:
        rows = conn.execute(
            select(Record.seq, Record.body).where(Record.city_code == CODE).order_by(Record.seq)
        ).all()
    tickets = Counter(pb.SuggestionBatch.FromString(r.body).suggestions[0].ticket_id for r in rows)
    doubled = {t: n for t, n in tickets.items() if n > 1}
    assert not doubled, f"[{fed.engine_name}] held twice: {doubled}\n{fed.describe()}"
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), "hub seqs have a gap"
    return set(tickets) == expected


def state(engine: Engine) -> str:
    return Outbox(engine).snapshot().state


def until(fed: Federation, predicate: Any, what: str, timeout: float = 60) -> Any:
    return wait_for(predicate, timeout=timeout, what=what, describe=fed.describe, interval=0.1)


def rebase_cli(fed: Federation, url: str) -> str:
    done = subprocess.run(
        [
            sys.executable, "-m", "sync.cli", "city", "rebase", "--yes",
            "--code", CODE,
            "--hub", f"127.0.0.1:{fed.port}",
            "--pki-dir", str(fed.pki_dir),
            "--database-url", url,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"rebase failed: {done.stdout}\n{done.stderr}"
    fed.note(f"rebase: {done.stdout.strip()}")
    return done.stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", ["restart-then-work", "work-while-down", "unsent-only"])
def test_restored_city_store_meets_the_hub(path: str, databases: Any, federation: Federation):
    fed = federation
    hub_url, city_url = databases("hub"), databases("city")
    hub_engine = fed.hub_engine(hub_url)
    engine = fed.city_engine(city_url, CODE)
    fed.start_hub(fed.hub(hub_url))
    city = fed.city(CODE, city_url)
    city.start()
    expected = produce(engine, "a", 10)
    until(fed, lambda: Outbox(engine).snapshot().delivered_seq == 10, "a delivered")
    city.kill()
    expected |= produce(engine, "b", 10)  # queued while the node is down: the backlog
    engine.dispose()
    backup_url = databases.copy(city_url)  # assigned 20, delivered 10
    city.start()
    expected |= produce(engine, "c", 5)
    until(fed, lambda: Outbox(engine).snapshot().delivered_seq == 25, "original at 25")
    city.kill()
    assert held_once(fed, hub_engine, expected)

    restored_engine = fed.city_engine(backup_url, CODE)
    restored = fed.city(CODE, backup_url)
    if path == "work-while-down":
        expected |= produce(restored_engine, "d", 8)
        restored.start()
    else:
        restored.start()
        until(fed, lambda: state(restored_engine) == "conflict", "conflict at Hello")
        if path == "restart-then-work":
            expected |= produce(restored_engine, "d", 3)
    until(fed, lambda: state(restored_engine) == "conflict", "conflict")
    restored.kill()
    assert held_once(fed, hub_engine, expected - {f"d-{n}" for n in range(1, 9)})

    out = rebase_cli(fed, backup_url)
    assert "20 envelopes the hub already holds at their seq" in out
    restored.start()
    expected |= produce(restored_engine, "e", 2)
    until(fed, lambda: held_once(fed, hub_engine, expected), "each envelope held once")
    until(fed, lambda: state(restored_engine) == "connected", "connected")


@pytest.mark.timeout(300)
def test_hub_restored_to_before_a_rebase(databases: Any, federation: Federation):
    fed = federation
    hub_url, city_url = databases("hub"), databases("city")
    hub_engine = fed.hub_engine(hub_url)
    engine = fed.city_engine(city_url, CODE)
    hub = fed.hub(hub_url)
    fed.start_hub(hub)
    city = fed.city(CODE, city_url)
    city.start()
    expected = produce(engine, "a", 6)
    until(fed, lambda: Outbox(engine).snapshot().delivered_seq == 6, "a delivered")
    hub.kill()
    hub_engine.dispose()
    hub_backup = databases.copy(hub_url)  # 1..6 under the first epoch
    fed.start_hub(hub)
    expected |= produce(engine, "b", 4)
    until(fed, lambda: Outbox(engine).snapshot().delivered_seq == 10, "b delivered")
    city.kill()
    first_epoch = Outbox(engine).snapshot().epoch

    # A re-base with nothing to move, so only the epoch changes. The command says "nothing to
    # re-base" to a store in step with its hub; the outbox's own re-base (what the command
    # runs when one is due) starts the new epoch all the same.
    assert "nothing to re-base" in rebase_cli(fed, city_url)
    held = hub_services.list_held(hub_engine, city_code=CODE, from_seq=1).held
    Outbox(engine).rebase(hub_acked_seq=10, held={seq: digest for seq, digest, _ in held})
    city.start()
    expected |= produce(engine, "c", 5)
    until(fed, lambda: Outbox(engine).snapshot().delivered_seq == 15, "c delivered")
    assert Outbox(engine).snapshot().epoch != first_epoch

    hub.kill()
    restored_engine = fed.hub_engine(hub_backup)
    restored: Proc = fed.hub(hub_backup)
    fed.start_hub(restored)
    until(fed, lambda: held_once(fed, restored_engine, expected), "the restored hub refilled")
    expected |= produce(engine, "d", 1)
    until(fed, lambda: held_once(fed, restored_engine, expected), "new work after the refill")
    assert state(engine) == "connected"
