"""Exactly once through every restore: the ways a restored store meets the hub.

A city store restored from a backup meets a hub that holds more than the backup knew. However
it comes back, after the operator's re-base the hub must hold each distinct envelope once:
what it already held (by digest) counts as delivered, only the rest is renumbered. And a hub
restored from a backup older than a city's re-base gets what it lost, one epoch per batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from city_node.services import follow_rebase
from province_hub import services as hub_services
from province_hub.store import Record
from sync.link import make_channel, rebase_against_hub
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import load_city_tls
from tests.conftest import ROSTER_CODES, wait_until
from tests.integration.test_recovery import delivered_all, produce

CITY = ROSTER_CODES[0]


def hub_contents(engine, city: str = CITY) -> dict[int, tuple[str, str]]:
    """seq -> (the suggestion's ticket id, epoch) for every record the hub holds."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Record.seq, Record.body, Record.epoch, Record.status).where(
                Record.city_code == city
            )
        ).all()
    assert all(row.status == "accepted" for row in rows)
    return {
        row.seq: (pb.SuggestionBatch.FromString(row.body).suggestions[0].ticket_id, row.epoch)
        for row in rows
    }


def assert_each_once(engine, expected: set[str]) -> dict[int, tuple[str, str]]:
    held = hub_contents(engine)
    counts = Counter(ticket for ticket, _ in held.values())
    doubled = {ticket: n for ticket, n in counts.items() if n > 1}
    assert not doubled, f"held more than once: {doubled}"
    assert set(counts) == expected, (
        f"missing {sorted(expected - set(counts))}, unexpected {sorted(set(counts) - expected)}"
    )
    assert sorted(held) == list(range(1, len(held) + 1)), "the hub's seqs must be gap-free"
    return held


def tags(tag: str, count: int) -> set[str]:
    return {f"{tag}-{n}" for n in range(1, count + 1)}


async def rebase(settings, engine, *, apply: bool = True):
    channel = make_channel(
        settings.hub,
        load_city_tls(settings.pki_dir, settings.code),
        server_name=settings.hub_server_name,
    )
    async with channel:
        return await rebase_against_hub(
            Outbox(engine), channel, apply=apply, on_renumber=follow_rebase
        )


async def backup_with_unsent_rows(databases: Any, settings: Any, start_city: Any, hub: Any) -> str:
    """The original store delivers a-1..10, then queues b-1..10 while its node is down; the
    copy is taken then (assigned 20, delivered 10). The original goes on: delivers b and c-1..5.
    Returns the backup's URL."""
    city = start_city(settings)
    produce(city.engine, "a", 10)
    await wait_until(lambda: delivered_all(city.engine), what="a delivered")
    await city.stop()
    produce(city.engine, "b", 10)
    snap = Outbox(city.engine).snapshot()
    assert (snap.last_seq, snap.delivered_seq) == (20, 10)
    city.engine.dispose()
    backup_url: str = databases.copy(settings.database_url)
    city = start_city(settings)
    produce(city.engine, "c", 5)
    await wait_until(
        lambda: Outbox(city.engine).snapshot().delivered_seq == 25, what="original at 25"
    )
    await city.stop()
    city.engine.dispose()
    assert_each_once(hub.engine, tags("a", 10) | tags("b", 10) | tags("c", 5))
    return backup_url


@pytest.mark.parametrize("path", ["restart-then-work", "work-while-down", "unsent-only"])
async def test_restored_city_store_rebases_without_doubling(
    path, databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    backup_url = await backup_with_unsent_rows(databases, settings, start_city, hub)
    restored_settings = dataclasses.replace(settings, database_url=backup_url)
    expected = tags("a", 10) | tags("b", 10) | tags("c", 5)

    if path == "work-while-down":
        # Staff keep working while the node is down: 8 new rows take seqs 21..28 locally,
        # past the hub's 25, so Hello finds nothing and the push meets the digest check.
        restored = start_city(restored_settings)
        await restored.stop()
        produce(restored.engine, "d", 8)
        restored = start_city(restored_settings)
        new = 8
    else:
        restored = start_city(restored_settings)
        new = 3 if path == "restart-then-work" else 0
        if new:
            produce(restored.engine, "d", new)
    snap = await wait_until(
        lambda: (s := Outbox(restored.engine).snapshot()).state == "conflict" and s,
        what="conflict",
    )
    assert "rebase" in snap.last_error
    assert_each_once(hub.engine, expected)  # nothing at the hub changed
    await restored.stop()

    plan = (await rebase(restored_settings, restored.engine, apply=False)).plan
    assert (plan.already_held, plan.held_elsewhere, plan.renumbered) == (20, 0, new)
    assert Outbox(restored.engine).snapshot().state == "conflict", "a plan changes nothing"
    outcome = await rebase(restored_settings, restored.engine)
    assert outcome.hub_acked_seq == 25
    assert (outcome.plan.already_held, outcome.plan.renumbered) == (20, new)

    restored = start_city(restored_settings)
    produce(restored.engine, "e", 2)  # and the city works on under its new epoch
    expected |= tags("d", new) | tags("e", 2)
    await wait_until(lambda: len(hub_contents(hub.engine)) == len(expected), what="all held")
    await wait_until(lambda: delivered_all(restored.engine), what="drained")
    held = assert_each_once(hub.engine, expected)
    snap = Outbox(restored.engine).snapshot()
    assert snap.state == "connected" and snap.last_seq == 25 + new + 2
    assert {epoch for seq, (_, epoch) in held.items() if seq > 25} == {snap.epoch}


async def test_rebase_drops_rows_the_hub_holds_under_another_seq(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    """A store restored from a copy taken just before its own earlier re-base: the rows that
    re-base moved are at the hub under their new seqs, so they are dropped, not sent again."""
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    produce(city.engine, "a", 10)
    await wait_until(lambda: delivered_all(city.engine))
    await city.stop()
    city.engine.dispose()
    old_url = databases.copy(settings.database_url)  # delivered 10

    city = start_city(settings)
    produce(city.engine, "b", 5)
    await wait_until(lambda: Outbox(city.engine).snapshot().delivered_seq == 15)
    await city.stop()

    old = dataclasses.replace(settings, database_url=old_url)
    restored = start_city(old)
    await restored.stop()
    produce(restored.engine, "x", 3)  # seqs 11..13, other content than b
    restored.engine.dispose()
    before_rebase_url = databases.copy(old_url)
    await rebase(old, restored.engine)  # x-1..3 renumbered to 16..18
    restored = start_city(old)
    await wait_until(lambda: len(hub_contents(hub.engine)) == 18)
    await restored.stop()
    restored.engine.dispose()

    # The operator restores the copy taken before that re-base: x-1..3 under seqs 11..13.
    again = dataclasses.replace(settings, database_url=before_rebase_url)
    city = start_city(again)
    await wait_until(lambda: Outbox(city.engine).snapshot().state == "conflict")
    await city.stop()
    outcome = await rebase(again, city.engine)
    assert (outcome.plan.already_held, outcome.plan.held_elsewhere, outcome.plan.renumbered) == (
        10,
        3,
        0,
    )
    assert dict(outcome.plan.seq_map) == {11: 16, 12: 17, 13: 18}
    city = start_city(again)
    produce(city.engine, "e", 1)
    await wait_until(lambda: delivered_all(city.engine))
    assert_each_once(hub.engine, tags("a", 10) | tags("b", 5) | tags("x", 3) | tags("e", 1))


async def test_hub_restored_to_before_a_rebase_gets_both_epochs(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub_settings = hub_settings_factory(databases("hub"))
    hub = await start_hub(hub_settings)
    port = hub.port
    settings = city_settings_factory(CITY, databases("city"), port)
    city = start_city(settings)
    produce(city.engine, "a", 6)
    await wait_until(lambda: delivered_all(city.engine))
    await city.stop()
    await hub.stop()
    hub_backup = databases.copy(hub_settings.database_url)  # holds 1..6 under the first epoch
    hub = await start_hub(dataclasses.replace(hub_settings, listen=f"127.0.0.1:{port}"))
    city = start_city(settings)
    produce(city.engine, "b", 4)
    await wait_until(lambda: Outbox(city.engine).snapshot().delivered_seq == 10)
    await city.stop()
    first_epoch = Outbox(city.engine).snapshot().epoch

    # A re-base (here with nothing to move), then the city goes on under the new epoch.
    outcome = await rebase(settings, city.engine)
    assert (outcome.plan.already_held, outcome.plan.renumbered) == (10, 0)
    city = start_city(settings)
    produce(city.engine, "c", 5)
    await wait_until(lambda: Outbox(city.engine).snapshot().delivered_seq == 15)
    new_epoch = Outbox(city.engine).snapshot().epoch
    assert new_epoch != first_epoch

    # Disaster at the hub: it comes back from the backup, holding 1..6 under the old epoch.
    await hub.stop()
    hub = await start_hub(
        dataclasses.replace(hub_settings, database_url=hub_backup, listen=f"127.0.0.1:{port}")
    )
    await wait_until(lambda: len(hub_contents(hub.engine)) == 15, what="the hub refilled")
    held = assert_each_once(hub.engine, tags("a", 6) | tags("b", 4) | tags("c", 5))
    assert {held[seq][1] for seq in range(1, 11)} == {first_epoch}
    assert {held[seq][1] for seq in range(11, 16)} == {new_epoch}
    await wait_until(lambda: Outbox(city.engine).snapshot().state == "connected")
    produce(city.engine, "d", 1)
    await wait_until(lambda: len(hub_contents(hub.engine)) == 16)


async def test_list_held_pages_and_names_only_the_callers_city(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    produce(city.engine, "a", 7)
    await wait_until(lambda: delivered_all(city.engine))
    await city.stop()

    page = await asyncio.to_thread(
        hub_services.list_held, hub.engine, city_code=CITY, from_seq=2, page=3
    )
    assert [seq for seq, _, _ in page.held] == [2, 3, 4] and page.next_seq == 5
    assert page.acked_through_seq == 7
    with pytest.raises(Exception, match="from_seq"):
        hub_services.list_held(hub.engine, city_code=CITY, from_seq=0)

    channel = make_channel(settings.hub, load_city_tls(settings.pki_dir, CITY))
    async with channel:
        stub = pb_grpc.FederationStub(channel)
        answer = await stub.ListHeld(pb.ListHeldRequest(city_code=CITY, from_seq=1))
        assert [h.seq for h in answer.held] == list(range(1, 8)) and answer.next_seq == 0
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListHeld(pb.ListHeldRequest(city_code=ROSTER_CODES[1], from_seq=1))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
