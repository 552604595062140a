"""`hub status` tells the truth as time passes: connected only while the city is heard from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from city_node.link_view import link_view, silent_after
from province_hub.status import current_error, format_table, link_status
from province_hub.store import CityLink
from sync.outbox import Outbox
from tests.conftest import ROSTER_CODES, wait_until
from tests.integration.test_recovery import delivered_all, produce

CITY = ROSTER_CODES[0]


async def test_a_city_that_stops_is_silent_since_its_last_contact(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    city = start_city(city_settings_factory(CITY, databases("city"), hub.port))
    produce(city.engine, "a", 2)
    await wait_until(lambda: delivered_all(city.engine))
    rows = {r["city_code"]: r for r in link_status(hub.engine, ROSTER_CODES)}
    assert rows[CITY]["state"] == "connected"
    assert rows[ROSTER_CODES[1]]["state"] == "never"
    await city.stop()
    with hub.engine.connect() as conn:
        last = conn.execute(
            select(CityLink.last_contact_at).where(CityLink.city_code == CITY)
        ).scalar_one()
    last = last if last.tzinfo else last.replace(tzinfo=UTC)

    later = {
        r["city_code"]: r
        for r in link_status(hub.engine, ROSTER_CODES, now=last + timedelta(seconds=31))
    }
    assert later[CITY]["state"] == "silent"
    assert later[CITY]["last_contact"] == last.isoformat(timespec="seconds")
    assert later[ROSTER_CODES[1]]["state"] == "never"
    soon = last + timedelta(seconds=5)
    within = link_status(hub.engine, ROSTER_CODES, now=soon, silent_after=timedelta(seconds=10))
    assert within[0]["state"] == "connected"

    table = format_table(list(later.values()), "Asia/Shanghai")
    assert "last contact, Beijing time (UTC+8)" in table.splitlines()[0]
    shanghai = (last + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    line = next(line for line in table.splitlines() if line.startswith(CITY))
    assert "silent since" in line and shanghai in line, line


async def test_an_idle_city_heard_by_its_heartbeats_reads_connected_at_both_ends(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    """Nothing to send for many heartbeats: the heartbeats alone are the contact, at the
    city as at the hub (the city read silent three heartbeats after its last row)."""
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    produce(city.engine, "a", 1)
    await wait_until(lambda: delivered_all(city.engine))
    outbox = Outbox(city.engine)
    last_row = outbox.snapshot().last_contact_at
    window = silent_after(settings.heartbeat_seconds)

    def heard_after_the_last_row() -> bool:
        contact = outbox.snapshot().last_contact_at
        return contact is not None and last_row is not None and contact > last_row + window

    await wait_until(heard_after_the_last_row, timeout=30)
    assert link_view(outbox.snapshot(), silent_after=window).state == "connected"
    (row,) = [r for r in link_status(hub.engine, ROSTER_CODES) if r["city_code"] == CITY]
    assert row["state"] == "connected"
    await city.stop()


async def test_a_conflict_is_not_hidden_by_silence(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    produce(city.engine, "a", 2)
    await wait_until(lambda: delivered_all(city.engine))
    await city.stop()
    import dataclasses

    fresh = start_city(dataclasses.replace(settings, database_url=databases("fresh")))
    await wait_until(lambda: Outbox(fresh.engine).snapshot().state == "conflict")
    await fresh.stop()
    far = datetime.now(UTC) + timedelta(days=2)
    assert link_status(hub.engine, ROSTER_CODES, now=far)[0]["state"] == "conflict"


def test_the_table_shows_an_error_while_the_link_is_not_connected() -> None:
    def row(state: str) -> dict[str, Any]:
        return {
            "city_code": CITY,
            "state": state,
            "last_contact": "2026-11-29T01:00:00+00:00",
            "acked_seq": 7,
            "records": {"statistics_report": 7},
            "quarantined": 0,
            "backlog": 0,
            "last_error": "CertificateRevoked: certificate serial 5680 is revoked",
            "last_error_at": "2026-11-28T01:00:00+00:00",
            "city_last_error": "",
        }

    connected = format_table([row("connected")]).splitlines()[-1]
    revoked = format_table([row("revoked")]).splitlines()[-1]
    assert "CertificateRevoked" not in connected, "a healed link shows no old error"
    assert "CertificateRevoked" in revoked
    # The JSON, the API and the links page say the same in ``error``; last_error is history.
    assert current_error(row("connected")) == ""
    assert current_error(row("revoked")) == row("revoked")["last_error"]
    assert current_error({**row("silent"), "last_error": "", "city_last_error": "timeout"}) == (
        "timeout"
    )
