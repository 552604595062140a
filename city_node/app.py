"""Composition root of a city node process."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from datetime import date
from typing import Any

import uvicorn
from sqlalchemy import Engine

from city_node import scheduler, services, simulator, simulator_live
from city_node.calendar import load_holidays
from city_node.categories import CategoryTree
from city_node.context import CityContext, make_context
from city_node.settings import CitySettings
from city_node.store import create_schema
from city_node.web.app import create_app
from sync.config import ConfigError
from sync.db import make_engine, warn_if_store_exposed
from sync.filemodes import warn_if_exposed
from sync.link import LinkClient, LinkSettings
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pki import Revocations, load_city_tls
from sync.web.server import console_server, load_secret_key, serve_until

__all__ = ["CityNode", "build", "build_console", "context_for", "load_secret_key", "serve"]

log = logging.getLogger(__name__)


def context_for(settings: CitySettings, engine: Engine) -> CityContext:
    """The one CityContext of a process: calendar, categories and rules from settings."""
    holidays: frozenset[date] = frozenset()
    extra: frozenset[date] = frozenset()
    try:
        if settings.holidays_file is not None:
            holidays, extra = load_holidays(settings.holidays_file)
        categories = CategoryTree.load(settings.categories_file)
    except ValueError as exc:  # CategoryError is a ValueError too
        raise ConfigError(str(exc)) from None
    return make_context(
        engine,
        settings.code,
        tz_name=settings.timezone,
        holidays=holidays,
        extra_workdays=extra,
        categories=categories,
        repeat_window_days=settings.repeat_window_days,
        auto_approve=settings.auto_approve,
        qa_sample_rate=settings.qa_sample_rate,
    )


@dataclass
class CityNode:
    settings: CitySettings
    engine: Engine
    outbox: Outbox
    link: LinkClient
    ctx: CityContext
    #: The staff console's HTTP server, None when ``http_port`` is 0.
    console: uvicorn.Server | None = None

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.link.run(stop), name="link")]
        routine = None
        if self.settings.schedule:
            # Catch up first (a node down at 00:15 still drafts yesterday's report), then
            # leave the rest to the clock.
            if await asyncio.to_thread(scheduler.catch_up, self.ctx) and self.ctx.auto_approve:
                self.link.wake()
            routine = scheduler.build(self.ctx, on_queued=self.link.wake)
            routine.start()
        if self.console is not None:
            tasks.append(asyncio.create_task(serve_until(self.console, stop), name="console"))
        if self.settings.demo_traffic:
            tasks.append(
                asyncio.create_task(
                    simulator_live.run(
                        self.ctx,
                        stop,
                        self.link.wake,
                        backfill_days=simulator.DEMO_BACKFILL_DAYS,
                    ),
                    name="demo-traffic",
                )
            )
        try:
            await asyncio.gather(*tasks)
        finally:
            if routine is not None:
                routine.shutdown(wait=False)
            self.engine.dispose()


def open_engine(settings: CitySettings) -> Engine:
    engine = make_engine(settings.database_url)
    create_schema(engine)
    services.open_store(engine, settings.code)
    return engine


def build(settings: CitySettings) -> CityNode:
    """Wire a city node for ``settings`` (tests call this with their own settings)."""
    # Certificates and the revocation list first: a node that cannot tell a revoked hub
    # from the real one must not start (and has then opened nothing).
    tls = load_city_tls(settings.pki_dir, settings.code)
    assert tls.crl_path is not None  # load_city_tls always names it
    revocations = Revocations(tls.crl_path)
    engine = open_engine(settings)
    warn_if_store_exposed(engine)
    private = [(settings.pki_dir / "cities" / f"{settings.code}.key", "private key")]
    if settings.http_port and settings.secret_key_file is not None:
        private.append((settings.secret_key_file, "console session key"))
    warn_if_exposed(private)
    ctx = context_for(settings, engine)
    outbox = Outbox(engine)

    def on_notice(notice: pb.Notice) -> None:
        # Receipts come from people; only `fedsync demo` asks the node to send them itself.
        if services.accept_notice(engine, notice) and settings.demo_receipts:
            simulator_live.auto_receipts(engine, notice)

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
        revocations=revocations,
    )
    console = None
    if settings.http_port:
        console = build_console(settings, ctx, outbox)
    return CityNode(
        settings=settings, engine=engine, outbox=outbox, link=link, ctx=ctx, console=console
    )


# --- the staff console ---------------------------------------------------------------------------


def build_console(settings: CitySettings, ctx: CityContext, outbox: Outbox) -> uvicorn.Server:
    assert settings.secret_key_file is not None  # CitySettings fills in the default
    app = create_app(
        ctx,
        outbox,
        secret_key=load_secret_key(settings.secret_key_file),
        secure_cookies=settings.http_secure_cookies,
    )
    return console_server(app, host=settings.http_host, port=settings.http_port)


async def serve(settings: CitySettings, **_: Any) -> None:
    """Run the city node until SIGTERM or SIGINT."""
    node = build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fedsync city {settings.code} linking to {settings.hub}", flush=True)
    if node.console is not None:
        print(
            f"fedsync city {settings.code} console on "
            f"http://{settings.http_host}:{settings.http_port}/",
            flush=True,
        )
    await node.run(stop)
