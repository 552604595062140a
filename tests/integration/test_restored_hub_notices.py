"""Notices and receipts through a hub restored from an older copy, with a real hub and city
(mutual TLS on loopback, real SQLite and PostgreSQL stores).

A restored hub has lost notices the cities hold, rejections it sent and the notice numbers it
handed out; the cities' stores still hold all of it. Every notice must still reach each city
once, and nothing a city sends about a lost notice may leave it waiting on the hub.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select

from city_node import services as city_services
from city_node.context import Actor
from city_node.domain import Role
from city_node.store import InboxNotice
from province_hub import services as hub_services
from province_hub.store import Notice, Record
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
