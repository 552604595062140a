"""The delivery loop survives failures of the city's own store and keeps retrying."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import OperationalError

from city_node import services
from city_node.store import create_schema
from sync.db import make_engine
from sync.link import LinkClient, LinkSettings
from sync.outbox import Outbox
from sync.pki import load_city_tls
from tests.conftest import ROSTER_CODES


async def test_store_error_does_not_end_delivery(tmp_path, pki_dir):
    code = ROSTER_CODES[0]
    engine = make_engine(f"sqlite:///{tmp_path / 'city.sqlite'}")
    create_schema(engine)
    services.open_store(engine, code)
    outbox = Outbox(engine)
    calls: list[str] = []
    real_set_state = outbox.set_state

    def flaky_set_state(state, **kwargs):
        calls.append(state)
        if len(calls) == 1:
            raise OperationalError("UPDATE link_state", {}, Exception("database is locked"))
        return real_set_state(state, **kwargs)

    outbox.set_state = flaky_set_state  # type: ignore[method-assign]
    client = LinkClient(
        outbox=outbox,
        city_code=code,
        tls=load_city_tls(pki_dir, code),
        settings=LinkSettings(hub_address="127.0.0.1:1", backoff_initial=0.05, backoff_max=0.2),
        on_notice=lambda notice: None,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        for _ in range(100):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        engine.dispose()
    assert len(calls) >= 3, f"delivery stopped retrying after a store error: {calls}"
    check = make_engine(f"sqlite:///{tmp_path / 'city.sqlite'}")
    assert Outbox(check).snapshot().state == "backing-off"
    check.dispose()
