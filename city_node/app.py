"""Composition root of a city node process."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from city_node import demo_traffic, services
from city_node.settings import CitySettings
from city_node.store import create_schema
from sync.db import make_engine
from sync.link import LinkClient, LinkSettings
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pki import load_city_tls

log = logging.getLogger(__name__)


@dataclass
class CityNode:
    settings: CitySettings
    engine: Engine
    outbox: Outbox
    link: LinkClient

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.link.run(stop), name="link")]
        if self.settings.demo_traffic:
            tasks.append(
                asyncio.create_task(
                    demo_traffic.run(
                        self.engine, tz_name=self.settings.timezone, stop=stop, wake=self.link.wake
                    ),
                    name="demo-traffic",
                )
            )
        try:
            await asyncio.gather(*tasks)
        finally:
            self.engine.dispose()


def open_engine(settings: CitySettings) -> Engine:
    engine = make_engine(settings.database_url)
    create_schema(engine)
    services.open_store(engine, settings.code)
    return engine


def build(settings: CitySettings) -> CityNode:
    """Wire a city node for ``settings`` (tests call this with their own settings)."""
    engine = open_engine(settings)
    outbox = Outbox(engine)
    tls = load_city_tls(settings.pki_dir, settings.code)

    def on_notice(notice: pb.Notice) -> None:
        if services.accept_notice(engine, notice) and settings.demo_traffic:
            demo_traffic.auto_receipts(engine, notice)

    link = LinkClient(
        outbox=outbox,
        city_code=settings.code,
        tls=tls,
        settings=LinkSettings(
            hub_address=settings.hub,
            server_name=settings.hub_server_name,
            batch_size=settings.batch_size,
            backoff_initial=settings.backoff_initial,
            backoff_max=settings.backoff_max,
            heartbeat_seconds=settings.heartbeat_seconds,
            retention_days=settings.retention_days,
        ),
        on_notice=on_notice,
    )
    return CityNode(settings=settings, engine=engine, outbox=outbox, link=link)


async def serve(settings: CitySettings, **_: Any) -> None:
    """Run the city node until SIGTERM or SIGINT."""
    node = build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fedsync city {settings.code} linking to {settings.hub}", flush=True)
    await node.run(stop)
