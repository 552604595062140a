"""Composition root of a city node process.

It wires the product: store, link, routine, console. What a caller adds beyond it — the
demo's live traffic and automatic receipts (:func:`city_node.simulator_live.demo_extras`) —
comes in as :class:`Extras`, chosen by the command that starts the node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, make_url

from city_node import scheduler, services
from city_node.calendar import load_holidays
from city_node.context import CityContext, make_context
from city_node.link_view import silent_after
from city_node.node_lock import node_lock
from city_node.settings import CitySettings
from city_node.store import create_schema
from sync.categories import CategoryTree
from sync.config import ConfigError, trusted_proxies
from sync.db import make_engine, warn_if_store_exposed
from sync.filemodes import warn_if_exposed
from sync.link import LinkClient, LinkSettings
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pki import Revocations, TlsFiles, load_city_tls
from sync.web.keys import load_secret_key
from sync.web.listener import listen
from sync.web.transport import check_transport

if TYPE_CHECKING:
    import uvicorn

__all__ = [
    "CityNode",
    "Extras",
    "build",
    "build_console",
    "context_for",
    "serve",
]


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
        approver_not_drafter=settings.approver_not_drafter,
        qa_sample_rate=settings.qa_sample_rate,
    )


#: Work run beside the link until ``stop``, given the node's context and the link's wake.
Companion = Callable[[CityContext, asyncio.Event, Callable[[], None]], Coroutine[Any, Any, None]]
#: Called with each province notice the node has just accepted into its inbox.
NoticeHook = Callable[[Engine, pb.Notice], None]


@dataclass(frozen=True)
class Extras:
    """What a caller adds to a node beyond the product (the demo: live traffic, receipts)."""

    companions: tuple[tuple[str, Companion], ...] = ()  # (task name, work)
    after_notice: tuple[NoticeHook, ...] = ()


@dataclass
class CityNode:
    settings: CitySettings
    engine: Engine
    outbox: Outbox
    link: LinkClient
    ctx: CityContext
    #: The staff console's HTTP server, None when ``http_port`` is 0 (or not built yet).
    console: uvicorn.Server | None = None
    extras: Extras = field(default_factory=Extras)
    #: The console's session key, read by ``build`` when the console is built later.
    console_key: bytes | None = None
    #: The console's port, bound by ``build`` when the console is built later.
    console_socket: socket.socket | None = None

    async def run(self, stop: asyncio.Event, announce: Callable[[str], None] | None = None) -> None:
        """Run until ``stop``; ``announce`` is told the console's address once it listens
        (not before: a port in use is a refusal, not an address)."""
        tasks = [asyncio.create_task(self.link.run(stop), name="link")]
        if self.console is None and self.settings.http_port:
            # Built with console_after_link: the link makes its first contact while the
            # web stack is imported (≈ 0.4 s CPU, several seconds when 14 nodes start on
            # 2 cores, as in the demo).
            try:
                self.console = await asyncio.to_thread(
                    build_console,
                    self.settings,
                    self.ctx,
                    self.outbox,
                    self.console_key,
                    self.console_socket,
                )
            except BaseException:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._dispose()
                raise
        # Told to stop while the console was built: start nothing more, just wind down.
        starting = not stop.is_set()
        routine = None
        if starting and self.settings.schedule:
            # Catch up first (a node down at 00:15 still drafts yesterday's report), then
            # leave the rest to the clock.
            if await asyncio.to_thread(scheduler.catch_up, self.ctx) and self.ctx.auto_approve:
                self.link.wake()
            routine = scheduler.build(self.ctx, on_queued=self.link.wake)
            routine.start()
        if starting and self.console is not None:
            from sync.web.server import serve_until

            serving = asyncio.create_task(serve_until(self.console, stop), name="console")
            tasks.append(serving)
            if announce is not None:
                tasks.append(asyncio.create_task(self._announce(serving, announce)))
        for name, work in self.extras.companions if starting else ():
            tasks.append(asyncio.create_task(work(self.ctx, stop, self.link.wake), name=name))
        try:
            await asyncio.gather(*tasks)
        finally:
            if routine is not None:
                await routine.stop(ROUTINE_GRACE_SECONDS)  # a job's work in flight ends first
            self._dispose()

    async def _announce(self, serving: asyncio.Task[None], announce: Callable[[str], None]) -> None:
        assert self.console is not None
        while not self.console.started:
            if serving.done():
                return  # it could not listen: the console task says why
            await asyncio.sleep(0.02)
        scheme = "https" if self.settings.http_tls_cert else "http"
        announce(f"{scheme}://{self.settings.http_host}:{self.settings.http_port}/")

    def _dispose(self) -> None:
        """Close the node's engines (the console's own one too) and its console port."""
        if self.console_socket is not None:
            self.console_socket.close()
        if self.console is not None:
            from fastapi import FastAPI  # loaded already: this node serves a console

            # build_console may have given the console its own short-wait SQLite engine.
            app = self.console.config.app
            assert isinstance(app, FastAPI)
            console_engine = app.state.ctx.engine
            if console_engine is not self.engine:
                console_engine.dispose()
        self.engine.dispose()


#: How long a stopping node waits for a routine job's work in flight (a report draft).
ROUTINE_GRACE_SECONDS = 30.0


def open_engine(settings: CitySettings) -> Engine:
    engine = make_engine(settings.database_url)
    try:
        create_schema(engine)
        services.open_store(engine, settings.code)
    except BaseException:
        engine.dispose()  # a refused store (another tier's, another city's) is left closed
        raise
    return engine


def build(
    settings: CitySettings, extras: Extras | None = None, *, console_after_link: bool = False
) -> CityNode:
    """Wire a city node for ``settings`` (tests call this with their own settings), with
    what ``extras`` adds.

    With ``console_after_link`` the staff console's transport is checked here but the
    console itself is built by :meth:`CityNode.run` once the link has started (``serve``
    does so: the link need not wait for the web stack's import).
    """
    extras = extras or Extras()
    # Certificates and the revocation list first: a node that cannot tell a revoked hub
    # from the real one must not start (and has then opened nothing).
    tls = load_city_tls(settings.pki_dir, settings.code)
    assert tls.crl_path is not None  # load_city_tls always names it
    revocations = Revocations(tls.crl_path)
    console_key = None
    console_socket = None
    if settings.http_port and console_after_link:
        # Refused before the store is opened and the link starts: what the console needs
        # from the settings (the transport, its port, its session key); the web stack comes
        # later. A port in use (another node's console: a mistyped store beside a running
        # node) would otherwise refuse only after a new store had said Hello in the city's
        # name, showing the real node in conflict at the hub.
        check_console_transport(settings)
        console_socket = listen(settings.http_host, settings.http_port)
    try:
        if console_socket is not None:
            assert settings.secret_key_file is not None  # CitySettings fills in the default
            console_key = load_secret_key(settings.secret_key_file)
        return _wire(
            settings,
            extras,
            tls,
            revocations,
            console_after_link=console_after_link,
            console_key=console_key,
            console_socket=console_socket,
        )
    except BaseException:
        if console_socket is not None:  # whatever refused the start: the port is let go
            console_socket.close()
        raise


def _wire(
    settings: CitySettings,
    extras: Extras,
    tls: TlsFiles,
    revocations: Revocations,
    *,
    console_after_link: bool,
    console_key: bytes | None,
    console_socket: socket.socket | None,
) -> CityNode:
    engine = open_engine(settings)
    try:
        warn_if_store_exposed(engine)
        private = [(settings.pki_dir / "cities" / f"{settings.code}.key", "private key")]
        if settings.http_port and settings.secret_key_file is not None:
            private.append((settings.secret_key_file, "console session key"))
        warn_if_exposed(private)
        ctx = context_for(settings, engine)
        outbox = Outbox(engine)

        def on_notice(notice: pb.Notice) -> None:
            if services.accept_notice(engine, notice):
                for hook in extras.after_notice:
                    hook(engine, notice)

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
        if settings.http_port and not console_after_link:
            console = build_console(settings, ctx, outbox)
        return CityNode(
            settings=settings,
            engine=engine,
            outbox=outbox,
            link=link,
            ctx=ctx,
            console=console,
            extras=extras,
            console_key=console_key,
            console_socket=console_socket,
        )
    except BaseException:
        engine.dispose()  # a start refused after the store was opened
        raise


# --- the staff console ---------------------------------------------------------------------------


def check_console_transport(settings: CitySettings) -> None:
    """Refuse (``ConfigError``) a console that would send passwords, cookies and customers'
    data in clear over a network (:mod:`sync.web.transport`)."""
    check_transport(
        settings.http_host,
        cert=settings.http_tls_cert,
        key=settings.http_tls_key,
        allow_plain=settings.http_allow_plain,
        what="the console",
    )


def build_console(
    settings: CitySettings,
    ctx: CityContext,
    outbox: Outbox,
    secret_key: bytes | None = None,
    prebound: socket.socket | None = None,
) -> uvicorn.Server:
    # The web stack (FastAPI, Starlette, Jinja, uvicorn) is imported here only: a node
    # without a console does not carry it (tens of MB per process in the demo).
    from city_node.web.app import create_app
    from sync.web.server import console_server

    assert settings.secret_key_file is not None  # CitySettings fills in the default
    check_console_transport(settings)
    if secret_key is None:
        secret_key = load_secret_key(settings.secret_key_file)
    tls = settings.http_tls_cert is not None
    if ctx.engine.dialect.name == "sqlite":
        # People wait for the console: a store locked by another writer is a quick 503
        # (retry) rather than a minute's hang. The link and the routine keep the long wait.
        web_engine = make_engine(settings.database_url, busy_timeout=settings.http_busy_timeout)
        ctx = dataclasses.replace(ctx, engine=web_engine)
    app = create_app(
        ctx,
        outbox,
        secret_key=secret_key,
        secure_cookies=settings.http_secure_cookies or tls,
        max_body_bytes=settings.http_max_body_bytes,
        link_silent_after=silent_after(settings.heartbeat_seconds),
    )
    return console_server(
        app,
        host=settings.http_host,
        port=settings.http_port,
        ssl_certfile=settings.http_tls_cert,
        ssl_keyfile=settings.http_tls_key,
        trusted_proxies=trusted_proxies("http_trusted_proxies", settings.http_trusted_proxies),
        prebound=prebound,
    )


async def serve(settings: CitySettings, extras: Extras | None = None) -> None:
    """Run the city node (with ``extras``) until SIGTERM or SIGINT."""
    # One node per store, and no re-base under it (city_node.node_lock): taken before the
    # store is opened or migrated, on an engine of its own (one connection on PostgreSQL;
    # on SQLite a plain engine, which neither connects nor makes the store's file: a start
    # refused for its settings must leave no store behind).
    url = settings.database_url
    if make_url(url).get_backend_name() == "sqlite":
        lock_engine = create_engine(url)
    else:
        lock_engine = make_engine(url, pool_size=1)
    try:
        with node_lock(lock_engine, settings.code):
            await _serve_locked(settings, extras)
    finally:
        lock_engine.dispose()


async def _serve_locked(settings: CitySettings, extras: Extras | None) -> None:
    node = build(settings, extras, console_after_link=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def announce(url: str) -> None:
        print(f"fedsync city {settings.code} console on {url}", flush=True)

    print(f"fedsync city {settings.code} linking to {settings.hub}", flush=True)
    await node.run(stop, announce)
