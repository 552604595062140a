"""Restores, conflicts, quarantine and offline notices — the link's recovery paths."""

from __future__ import annotations

import dataclasses
from functools import partial

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine, select

from city_node import services as city_services
from city_node.errors import CityError
from city_node.store import InboxNotice
from province_hub import services as hub_services
from province_hub.store import CityLink, NoticeDelivery, Record
from sync.outbox import Outbox, OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES, wait_until

TZ = "Asia/Shanghai"
CITY = ROSTER_CODES[0]


def suggestion(tag: str, n: int) -> pb.SuggestionBatch:
    return pb.SuggestionBatch(
        batch_date="2026-01-05",
        batch_number=n,
        suggestions=[pb.Suggestion(ticket_id=f"{tag}-{n}", content=f"suggestion {tag} {n}")],
    )


def produce(engine, tag: str, count: int) -> None:
    for n in range(1, count + 1):
        city_services.send(engine, suggestion(tag, n))


def hub_records(engine, city: str = CITY) -> dict[int, tuple[bytes, str]]:
    with engine.connect() as conn:
        return {
            r.seq: (r.digest, r.status)
            for r in conn.execute(
                select(Record.seq, Record.digest, Record.status).where(Record.city_code == city)
            )
        }


def outbox_digests(engine) -> dict[int, bytes]:
    with engine.connect() as conn:
        return {
            seq: pb.Envelope.FromString(raw).content_digest
            for seq, raw in conn.execute(select(OutboxRow.seq, OutboxRow.envelope))
        }


def delivered_all(engine) -> bool:
    snap = Outbox(engine).snapshot()
    return snap.last_seq > 0 and snap.delivered_seq == snap.last_seq


def delivered_up_to(engine: Engine, seq: int) -> bool:
    return Outbox(engine).snapshot().delivered_seq == seq


def notice_cursor_at(engine: Engine, seq: int) -> bool:
    return Outbox(engine).snapshot().notice_cursor == seq


def hub_holds(engine: Engine, city: str, count: int) -> bool:
    return len(hub_records(engine, city)) == count


def inbox_seqs(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(InboxNotice.notice_seq)).scalars())


def inbox_is(engine: Engine, seqs: list[int]) -> bool:
    return inbox_seqs(engine) == seqs


async def test_city_restored_from_older_copy_is_a_conflict_and_hub_keeps_its_data(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    produce(city.engine, "a", 10)
    await wait_until(lambda: delivered_all(city.engine), what="first 10 delivered")
    await city.stop()
    city.engine.dispose()
    backup_url = databases.copy(settings.database_url)

    city = start_city(settings)
    produce(city.engine, "b", 10)
    await wait_until(
        lambda: Outbox(city.engine).snapshot().delivered_seq == 20, what="20 delivered"
    )
    await city.stop()
    held = hub_records(hub.engine)
    assert sorted(held) == list(range(1, 21))

    # The city's database is restored from the backup (seq 10) and keeps working.
    restored = start_city(dataclasses.replace(settings, database_url=backup_url))
    produce(restored.engine, "c", 5)  # seqs 11..15 again, with other content
    snap = await wait_until(
        lambda: (s := Outbox(restored.engine).snapshot()).state == "conflict" and s,
        what="conflict state",
    )
    assert "restored" in snap.last_error and "rebase" in snap.last_error
    assert hub_records(hub.engine) == held, "the hub's data must not change"
    with hub.engine.connect() as conn:
        link = conn.execute(select(CityLink).where(CityLink.city_code == CITY)).one()
    assert link.acked_seq == 20
    assert link.state == "conflict" and "SequenceConflict" in link.last_error

    # After review the operator re-bases: the 5 new envelopes follow the hub's mark.
    await restored.stop()
    page = hub_services.list_held(hub.engine, city_code=CITY, from_seq=1)
    plan = Outbox(restored.engine).rebase(
        hub_acked_seq=20, held={seq: digest for seq, digest, _ in page.held}
    )
    epoch = plan.epoch
    assert (plan.already_held, plan.renumbered) == (10, 5)
    restored = start_city(dataclasses.replace(settings, database_url=backup_url))
    await wait_until(
        lambda: len(hub_records(hub.engine)) == 25, what="re-based envelopes at the hub"
    )
    after = hub_records(hub.engine)
    assert {seq: after[seq] for seq in held} == held
    assert all(status == "accepted" for _, status in after.values())
    digests = outbox_digests(restored.engine)
    assert all(after[seq][0] == digests[seq] for seq in range(21, 26))
    with hub.engine.connect() as conn:
        assert (
            conn.execute(select(CityLink.epoch).where(CityLink.city_code == CITY)).scalar_one()
            == epoch
        )


async def test_city_store_recreated_from_scratch_is_a_conflict(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    produce(city.engine, "a", 3)
    await wait_until(lambda: delivered_all(city.engine))
    await city.stop()
    held = hub_records(hub.engine)

    fresh = start_city(dataclasses.replace(settings, database_url=databases("city-new")))
    produce(fresh.engine, "n", 2)
    snap = await wait_until(
        lambda: (s := Outbox(fresh.engine).snapshot()).state == "conflict" and s
    )
    assert "re-created" in snap.last_error
    assert hub_records(hub.engine) == held


async def test_hub_restored_from_older_copy_gets_what_it_lost(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub_settings = hub_settings_factory(databases("hub"))
    hub = await start_hub(hub_settings)
    cities = [
        start_city(city_settings_factory(code, databases(f"city{code}"), hub.port))
        for code in ROSTER_CODES[:2]
    ]
    for city in cities:
        produce(city.engine, "a", 8)
    for city in cities:
        await wait_until(partial(delivered_all, city.engine))
    await hub.stop()
    backup_url = databases.copy(hub_settings.database_url)
    hub = await start_hub(dataclasses.replace(hub_settings, listen=f"127.0.0.1:{hub.port}"))
    for city in cities:
        produce(city.engine, "b", 7)
    for city in cities:
        await wait_until(partial(delivered_up_to, city.engine, 15))
    await hub.stop()

    # Disaster: the hub comes back from the backup holding 8 per city, cities delivered 15.
    restored = await start_hub(
        dataclasses.replace(hub_settings, database_url=backup_url, listen=f"127.0.0.1:{hub.port}")
    )
    assert sorted(hub_records(restored.engine, ROSTER_CODES[0])) == list(range(1, 9))
    for code, city in zip(ROSTER_CODES[:2], cities, strict=True):
        await wait_until(partial(hub_holds, restored.engine, code, 15), what=f"{code} refilled")
        digests = outbox_digests(city.engine)
        held = hub_records(restored.engine, code)
        assert {seq: d for seq, (d, _) in held.items()} == digests
        assert Outbox(city.engine).snapshot().state == "connected"
        # Refilled: the hub's link is connected again (it was "behind" between Hello and Push).
        assert hub_link_state(restored.engine, code)[0] == "connected"


def hub_link_state(engine: Engine, city: str = CITY) -> tuple[str, str]:
    from province_hub.status import link_status

    [row] = [r for r in link_status(engine, [city]) if r["city_code"] == city]
    return row["state"], row["last_error"]


async def test_a_hub_that_lost_what_the_city_no_longer_keeps_shows_the_city_behind(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city, caplog
):
    """A hub restored from an older copy, a city that purged the rows the hub lost: the city
    stops (and says so in its log) until a re-base; the hub shows the link "behind" with
    what it waits for — before, it showed the city connected while nothing arrived."""
    from sqlalchemy import delete

    hub_settings = hub_settings_factory(databases("hub"))
    hub = await start_hub(hub_settings)
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    produce(city.engine, "a", 4)
    await wait_until(partial(delivered_all, city.engine))
    await hub.stop()
    backup_url = databases.copy(hub_settings.database_url)  # holds 1-4
    hub = await start_hub(dataclasses.replace(hub_settings, listen=f"127.0.0.1:{hub.port}"))
    produce(city.engine, "b", 3)
    await wait_until(partial(delivered_up_to, city.engine, 7))
    await city.stop()
    await hub.stop()
    with city.engine.begin() as conn:  # as retention would: the delivered rows are gone
        conn.execute(delete(OutboxRow).where(OutboxRow.seq > 4))
    city.engine.dispose()

    restored = await start_hub(
        dataclasses.replace(hub_settings, database_url=backup_url, listen=f"127.0.0.1:{hub.port}")
    )
    city = start_city(settings)
    await wait_until(lambda: Outbox(city.engine).snapshot().state == "error", what="city stops")
    assert "no longer keeps seqs 5-7" in Outbox(city.engine).snapshot().last_error
    _, error = await wait_until(
        lambda: (got := hub_link_state(restored.engine))[0] == "behind" and got, what="behind"
    )
    assert "delivered up to seq 7; this hub holds up to 4" in error and "rebase" in error
    assert any(
        r.levelname == "ERROR" and "stopped (error)" in r.getMessage() for r in caplog.records
    )
    assert sorted(hub_records(restored.engine)) == [1, 2, 3, 4]


async def test_business_rule_failure_is_quarantined_and_the_city_told(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    city = start_city(city_settings_factory(CITY, databases("city"), hub.port))
    bad = pb.StatisticsReport(
        period=pb.Period(kind=pb.DAY, start="2026-01-05"),
        revision=1,
        complaints_received=3,
        closed=2,
        closed_in_time=5,
        approved_by="leader",
    )
    city_services.send(city.engine, suggestion("x", 1))
    bad_seq = city_services.send(city.engine, bad)  # no tz_name: the city does not pre-check
    city_services.send(city.engine, suggestion("x", 2))
    await wait_until(lambda: delivered_all(city.engine))
    held = hub_records(hub.engine)
    assert [held[s][1] for s in sorted(held)] == ["accepted", "quarantined", "accepted"]
    with hub.engine.connect() as conn:
        reason = conn.execute(select(Record.reason).where(Record.seq == bad_seq)).scalar_one()
    assert "closed_in_time (5) exceeds closed (2)" in reason

    def rejection():
        with city.engine.connect() as conn:
            return conn.execute(select(InboxNotice).where(InboxNotice.kind == "REJECTION")).first()

    notice = await wait_until(rejection, what="the rejection notice")
    detail = pb.Notice.FromString(notice.payload).rejection
    assert detail.seq == bad_seq and detail.body_kind == "statistics_report"
    assert "closed_in_time" in Outbox(city.engine).snapshot().last_rejection
    # The city's own pre-check refuses the same body with the same words.
    try:
        city_services.send(city.engine, bad, tz_name=TZ)
    except CityError as exc:
        assert "closed_in_time (5) exceeds closed (2)" in str(exc)
    else:
        raise AssertionError("the pre-check accepted a report whose totals do not add up")


async def test_notice_sent_while_city_is_down_arrives_exactly_once(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    await wait_until(lambda: Outbox(city.engine).snapshot().state == "connected")
    await city.stop()
    sent = hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(
            kind=pb.TASK,
            title="check the backlog",
            targets=[CITY],
            task_deadline=Timestamp(seconds=2_000_000_000),
        ),
        roster_codes=ROSTER_CODES,
    )

    assert inbox_seqs(city.engine) == []
    for _ in range(3):  # come back, go down, come back: still exactly one copy
        city = start_city(settings)
        await wait_until(partial(inbox_is, city.engine, [sent.seq]), what="the notice")
        await wait_until(partial(notice_cursor_at, city.engine, sent.seq))
        await city.stop()
        assert inbox_seqs(city.engine) == [sent.seq]

    def delivered_at():
        with hub.engine.connect() as conn:
            return conn.execute(
                select(NoticeDelivery.delivered_at).where(NoticeDelivery.notice_seq == sent.seq)
            ).scalar_one()

    # The hub learns the city persisted it from the city's next heartbeat or subscription.
    city = start_city(settings)
    await wait_until(delivered_at, what="delivery confirmed at the hub")
    assert inbox_seqs(city.engine) == [sent.seq]


async def test_rebase_command_after_a_recreated_store(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    """`fedsync city rebase`: shows the situation, and with --yes continues after the mark."""
    import asyncio
    import subprocess
    import sys

    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    produce(city.engine, "a", 4)
    await wait_until(lambda: delivered_all(city.engine))
    await city.stop()
    fresh_settings = dataclasses.replace(settings, database_url=databases("city-new"))
    fresh = start_city(fresh_settings)
    produce(fresh.engine, "n", 3)
    await wait_until(lambda: Outbox(fresh.engine).snapshot().state == "conflict")
    await fresh.stop()

    def rebase(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "sync.cli",
                "city",
                "rebase",
                "--code",
                CITY,
                "--hub",
                f"127.0.0.1:{hub.port}",
                "--pki-dir",
                str(settings.pki_dir),
                "--database-url",
                fresh_settings.database_url,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    shown = await asyncio.to_thread(rebase)
    assert shown.returncode == 1 and "hub holds seqs up to 4" in shown.stdout, shown.stderr
    assert Outbox(fresh.engine).snapshot().last_seq == 3  # nothing changed without --yes
    done = await asyncio.to_thread(rebase, "--yes")
    assert done.returncode == 0 and "3 envelopes renumbered from 5" in done.stdout
    # Run again before the node reconnects: the first re-base stands, no second epoch.
    rebased = Outbox(fresh.engine).snapshot()
    twice = await asyncio.to_thread(rebase, "--yes")
    assert twice.returncode == 0 and "nothing to re-base" in twice.stdout, twice.stdout
    assert "re-based already, not sent yet" in twice.stdout
    assert Outbox(fresh.engine).snapshot() == rebased
    again = start_city(fresh_settings)
    await wait_until(lambda: sorted(hub_records(hub.engine)) == list(range(1, 8)))
    await again.stop()
    # In step again: a re-base has nothing to do, and --yes starts no new epoch.
    epoch = Outbox(fresh.engine).snapshot().epoch
    idle = await asyncio.to_thread(rebase, "--yes")
    assert idle.returncode == 0 and "nothing to re-base" in idle.stdout, idle.stdout
    assert Outbox(fresh.engine).snapshot().epoch == epoch


async def test_notices_after_a_hub_restore_are_not_hidden_behind_city_cursors(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    """A restored hub must not reuse notice numbers the cities' cursors have passed."""
    hub_settings = hub_settings_factory(databases("hub"))
    hub = await start_hub(hub_settings)
    await hub.stop()
    backup_url = databases.copy(hub_settings.database_url)  # before any notice
    hub = await start_hub(dataclasses.replace(hub_settings, listen=f"127.0.0.1:{hub.port}"))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    first = hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="before", targets=[CITY]),
        roster_codes=ROSTER_CODES,
    )

    def titles() -> list[str]:
        with city.engine.connect() as conn:
            return sorted(conn.execute(select(InboxNotice.title)).scalars())

    await wait_until(lambda: titles() == ["before"])
    await hub.stop()
    restored = await start_hub(
        dataclasses.replace(hub_settings, database_url=backup_url, listen=f"127.0.0.1:{hub.port}")
    )
    second = hub_services.send_notice(
        restored.engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="after", targets=[CITY]),
        roster_codes=ROSTER_CODES,
    )
    assert second.seq > first.seq
    await wait_until(
        lambda: titles() == ["after", "before"], what="the notice sent after the restore"
    )
