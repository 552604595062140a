"""Notices and receipts through a hub restored from an older copy, with a real hub and city
(mutual TLS on loopback, real SQLite and PostgreSQL stores).

A restored hub has lost notices the cities hold, rejections it sent and the notice numbers it
handed out; the cities' stores still hold all of it. Every notice must still reach each city
once, and nothing a city sends about a lost notice may leave it waiting on the hub.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from city_node import services as city_services
from city_node.context import Actor
from city_node.domain import Role
from city_node.store import InboxNotice
from province_hub import grpc_service
from province_hub import services as hub_services
from province_hub.store import Counter, Notice, Record, create_schema
from sync.db import make_engine
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES, wait_until

CITY = ROSTER_CODES[0]
LEADER = Actor("leader-1", Role.LEADER)


def inbox_titles(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(InboxNotice.title)).scalars())


def hub_records(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Record.seq, Record.kind, Record.status, Record.reason)
                .where(Record.city_code == CITY)
                .order_by(Record.seq)
            )
        )


def hub_notice_kinds(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(Notice.kind).order_by(Notice.seq)).scalars())


async def restored_hub(start_hub: Any, settings: Any, hub: Any, backup_url: str) -> Any:
    """Stop ``hub`` and start one on ``backup_url`` at the same address."""
    await hub.stop(grace=0.5)
    return await start_hub(
        dataclasses.replace(settings, database_url=backup_url, listen=f"127.0.0.1:{hub.port}")
    )


async def test_receipt_for_a_notice_the_restored_hub_lost_is_kept_quarantined(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub_settings = hub_settings_factory(databases("hub"))
    hub = await start_hub(hub_settings)
    await hub.stop(grace=0.5)
    hub.engine.dispose()
    backup_url = databases.copy(hub_settings.database_url)  # before the notice
    hub = await start_hub(dataclasses.replace(hub_settings, listen=f"127.0.0.1:{hub.port}"))
    city = start_city(city_settings_factory(CITY, databases("city"), hub.port))
    sent = hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="lost with the restore", targets=[CITY]),
        roster_codes=ROSTER_CODES,
    )
    await wait_until(lambda: inbox_titles(city.engine) == ["lost with the restore"])
    restored = await restored_hub(start_hub, hub_settings, hub, backup_url)

    receipt_seq = city_services.record_receipt(
        city.engine, notice_seq=sent.seq, action="done", actor=LEADER, note="posted"
    )
    await wait_until(
        lambda: Outbox(city.engine).snapshot().delivered_seq == receipt_seq,
        what="the receipt acknowledged",
    )
    [record] = [r for r in hub_records(restored.engine) if r.seq == receipt_seq]
    assert (record.kind, record.status) == ("notice_receipt", "quarantined")
    assert f"notice {sent.seq}" in record.reason and "restored" in record.reason
    # Nothing to correct, so no rejection asks the city to send anything again.
    assert "REJECTION" not in hub_notice_kinds(restored.engine)
    snapshot = Outbox(city.engine).snapshot()
    assert snapshot.state == "connected" and snapshot.last_rejection == ""
    assert inbox_titles(city.engine) == ["lost with the restore"]


def notice_counter(engine: Any) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            select(Counter.value).where(Counter.name == hub_services.NOTICE_COUNTER)
        ).scalar()
    return int(value or 0)


def announce(engine: Any, title: str, *, now: datetime | None = None) -> pb.Notice:
    return hub_services.send_notice(
        engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title=title, targets=[CITY]),
        roster_codes=ROSTER_CODES,
        now=now,
    )


async def city_holds_a_cursor_ahead_of_the_restored_hub(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
) -> tuple[Any, Any, str, pb.Notice, Any]:
    """A city holds a notice numbered two hours ahead of the hub's clock (the clock of the
    hub that numbered it ran ahead, or a burst of notices did); the hub's store is then
    restored from a copy taken before that notice. Returns the hub settings, the running
    hub, the backup's URL, the notice and the running city."""
    hub_settings = hub_settings_factory(databases("hub"))
    hub = await start_hub(hub_settings)
    await hub.stop(grace=0.5)
    hub.engine.dispose()
    backup_url = databases.copy(hub_settings.database_url)
    hub = await start_hub(dataclasses.replace(hub_settings, listen=f"127.0.0.1:{hub.port}"))
    city = start_city(city_settings_factory(CITY, databases("city"), hub.port))
    ahead = announce(hub.engine, "ahead", now=datetime.now(UTC) + timedelta(hours=2))
    await wait_until(lambda: Outbox(city.engine).snapshot().notice_cursor == ahead.seq)
    return hub_settings, hub, backup_url, ahead, city


async def test_restored_hub_numbers_new_notices_after_the_cursor_a_city_presents(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city, caplog
):
    (
        hub_settings,
        hub,
        backup_url,
        ahead,
        city,
    ) = await city_holds_a_cursor_ahead_of_the_restored_hub(
        databases, hub_settings_factory, city_settings_factory, start_hub, start_city
    )
    # The city is away while the hub restarts, so the counter is read before the city can
    # present its cursor (it reconnects within milliseconds otherwise).
    await city.stop()
    restored = await restored_hub(start_hub, hub_settings, hub, backup_url)
    assert notice_counter(restored.engine) < ahead.seq
    with caplog.at_level(logging.WARNING, logger="province_hub.services"):
        city = start_city(city.node.settings)
        await wait_until(
            lambda: notice_counter(restored.engine) >= ahead.seq,
            what="the counter raised to the cursor the city presents",
        )
    assert any("notice counter raised" in r.getMessage() for r in caplog.records)
    after = announce(restored.engine, "after")
    assert after.seq > ahead.seq
    await wait_until(
        lambda: inbox_titles(city.engine) == ["after", "ahead"], what="the notice sent after"
    )


async def test_notice_numbered_below_a_city_cursor_is_still_delivered_once(
    databases,
    hub_settings_factory,
    city_settings_factory,
    start_hub,
    start_city,
    caplog,
    monkeypatch,
):
    (
        hub_settings,
        hub,
        backup_url,
        ahead,
        city,
    ) = await city_holds_a_cursor_ahead_of_the_restored_hub(
        databases, hub_settings_factory, city_settings_factory, start_hub, start_city
    )
    await city.stop()
    restored = await restored_hub(start_hub, hub_settings, hub, backup_url)
    # Sent before the city is back: numbered by the hub's clock, below the city's cursor.
    hidden = announce(restored.engine, "sent while the city was away")
    assert hidden.seq < ahead.seq
    with caplog.at_level(logging.WARNING, logger="province_hub.services"):
        city = start_city(city.node.settings)
        await wait_until(
            lambda: inbox_titles(city.engine) == ["ahead", "sent while the city was away"],
            what="the notice numbered below the cursor",
        )
    gaps = [r.getMessage() for r in caplog.records if "never streamed" in r.getMessage()]
    assert gaps and f"after notice {ahead.seq}" in gaps[0] and str(hidden.seq) in gaps[0]
    assert Outbox(city.engine).snapshot().notice_cursor == ahead.seq
    # No cursor will confirm it: a stream that ends soon after (a city dying before it filed
    # the notice) leaves it to be sent again at the next opening, and the city files it once.
    await city.stop()
    assert streamed(restored.engine, hidden.seq) is None
    again = hub_services.open_stream(restored.engine, city_code=CITY, cursor=ahead.seq)
    assert [pb.Notice.FromString(n).seq for n in again] == [hidden.seq]
    # A stream that stays open confirms it (here after half a second, not 100).
    monkeypatch.setattr(grpc_service, "MISSED_CONFIRM_SECONDS", 0.5)
    city = start_city(city.node.settings)
    await wait_until(
        lambda: streamed(restored.engine, hidden.seq) is not None, what="marked streamed"
    )
    later = announce(restored.engine, "later")
    await wait_until(lambda: len(inbox_titles(city.engine)) == 3, what="the later notice")
    assert inbox_titles(city.engine) == ["ahead", "later", "sent while the city was away"]
    assert later.seq > ahead.seq


def streamed(engine: Any, seq: int) -> Any:
    """When the hub marked notice ``seq`` streamed to CITY (None: not yet)."""
    from province_hub.store import NoticeDelivery

    with engine.connect() as conn:
        return conn.execute(
            select(NoticeDelivery.streamed_at).where(
                NoticeDelivery.notice_seq == seq, NoticeDelivery.city_code == CITY
            )
        ).scalar_one()


def test_a_cursor_far_beyond_the_hub_is_not_followed(databases, caplog):
    engine = make_engine(databases("hub"))
    try:
        create_schema(engine)
        sent = announce(engine, "now")
        far = int(datetime.now(UTC).timestamp() * 1000) + 2 * 24 * 3600 * 1000
        with caplog.at_level(logging.WARNING, logger="province_hub.services"):
            missed = hub_services.open_stream(engine, city_code=CITY, cursor=far)
        assert notice_counter(engine) == sent.seq
        assert any("not following it" in r.getMessage() for r in caplog.records)
        # The notice the cursor skipped is still the city's to receive.
        assert [pb.Notice.FromString(p).title for p in missed] == ["now"]
        near = far - 2 * 24 * 3600 * 1000 + 60_000  # a minute ahead: a restore explains it
        hub_services.open_stream(engine, city_code=CITY, cursor=near)
        assert notice_counter(engine) == near
        assert announce(engine, "next").seq == near + 1
    finally:
        engine.dispose()
