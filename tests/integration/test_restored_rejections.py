"""Rejections through restores, with a real hub and city over mutual TLS (SQLite and
PostgreSQL): a city files the rejection of one of its envelopes once, however often a
restored hub quarantines it again, and its link status shows only rejections of envelopes of
its own store, not those of the store it was restored in place of.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select

from city_node import services as city_services
from city_node.store import InboxNotice
from province_hub.store import Notice, Record
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES, wait_until
from tests.integration.test_recovery import suggestion

CITY = ROSTER_CODES[0]

#: Totals that do not add up: the hub quarantines it (the city's pre-check is bypassed).
BAD_REPORT = pb.StatisticsReport(
    period=pb.Period(kind=pb.DAY, start="2026-01-05"),
    revision=1,
    complaints_received=3,
    closed=2,
    closed_in_time=5,
    approved_by="leader",
)


def rejections_in_inbox(engine: Any) -> list[pb.Rejection]:
    with engine.connect() as conn:
        payloads = conn.execute(
            select(InboxNotice.payload)
            .where(InboxNotice.kind == "REJECTION")
            .order_by(InboxNotice.notice_seq)
        ).scalars()
        return [pb.Notice.FromString(p).rejection for p in payloads]


def hub_rejection_seqs(engine: Any) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Notice.seq).where(Notice.kind == "REJECTION").order_by(Notice.seq)
            ).scalars()
        )


def hub_status_of(engine: Any, seq: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(Record.status).where(Record.city_code == CITY, Record.seq == seq)
        ).scalar()


async def test_a_rejection_re_sent_by_a_restored_hub_is_filed_once(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub_settings = hub_settings_factory(databases("hub"))
    hub = await start_hub(hub_settings)
    city = start_city(city_settings_factory(CITY, databases("city"), hub.port))
    city_services.send(city.engine, suggestion("a", 1))
    await wait_until(lambda: Outbox(city.engine).snapshot().delivered_seq == 1)
    await hub.stop(grace=0.5)
    hub.engine.dispose()
    backup_url = databases.copy(hub_settings.database_url)  # holds seq 1 only
    hub = await start_hub(dataclasses.replace(hub_settings, listen=f"127.0.0.1:{hub.port}"))
    bad_seq = city_services.send(city.engine, BAD_REPORT)
    await wait_until(lambda: len(rejections_in_inbox(city.engine)) == 1, what="the rejection")
    [first] = rejections_in_inbox(city.engine)
    assert first.seq == bad_seq and first.epoch == Outbox(city.engine).snapshot().epoch
    assert "closed_in_time" in Outbox(city.engine).snapshot().last_rejection

    await hub.stop(grace=0.5)
    restored = await start_hub(
        dataclasses.replace(hub_settings, database_url=backup_url, listen=f"127.0.0.1:{hub.port}")
    )
    # The city re-sends what the restored hub lost; the hub quarantines it again and sends a
    # second rejection of the same envelope.
    await wait_until(lambda: hub_status_of(restored.engine, bad_seq) == "quarantined")
    [again] = hub_rejection_seqs(restored.engine)
    await wait_until(
        lambda: Outbox(city.engine).snapshot().notice_cursor >= again,
        what="the second rejection streamed",
    )
    assert rejections_in_inbox(city.engine) == [first]


async def test_link_status_shows_only_rejections_of_the_stores_own_envelopes(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    city_services.send(city.engine, suggestion("a", 1))
    await wait_until(lambda: Outbox(city.engine).snapshot().delivered_seq == 1)
    await city.stop()
    city.engine.dispose()
    backup_url = databases.copy(settings.database_url)  # before the bad report
    city = start_city(settings)
    bad_seq = city_services.send(city.engine, BAD_REPORT)
    await wait_until(lambda: len(rejections_in_inbox(city.engine)) == 1, what="the rejection")
    assert "closed_in_time" in Outbox(city.engine).snapshot().last_rejection
    await city.stop()

    # The store is restored from the copy taken before the bad report was queued: the
    # rejection is the province's word to this city, so it is in the inbox, but it is about
    # an envelope this store never held.
    restored = start_city(dataclasses.replace(settings, database_url=backup_url))
    await wait_until(lambda: len(rejections_in_inbox(restored.engine)) == 1, what="replayed")
    assert rejections_in_inbox(restored.engine)[0].seq == bad_seq
    snapshot = Outbox(restored.engine).snapshot()
    assert snapshot.last_seq < bad_seq and snapshot.last_rejection == ""
