"""Composition root of the hub process: the one place its parts are built and wired.

``create_server`` builds everything for given settings and binds (port 0 in tests);
``serve`` runs it until SIGTERM/SIGINT and shuts down cleanly.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine

from province_hub.broker import NoticeBroker, NoticeListener
from province_hub.deadlines import Deadlines
from province_hub.grpc_service import FederationService, RevocationInterceptor
from province_hub.jobs import build_scheduler
from province_hub.settings import HubSettings
from province_hub.store import create_schema
from sync.categories import CategoryTree
from sync.config import ConfigError, trusted_proxies
from sync.db import is_sqlite, make_engine, warn_if_store_exposed
from sync.filemodes import warn_if_exposed
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pki import Revocations, load_hub_tls
from sync.roster import City, load_roster
from sync.routine import Routine
from sync.web.listener import listen
from sync.web.transport import check_transport

if TYPE_CHECKING:
    from sync.web.server import ConsoleServer

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Federation"].full_name


@dataclass
class HubServer:
    server: grpc.aio.Server
    port: int
    settings: HubSettings
    engine: Engine
    broker: NoticeBroker
    executor: ThreadPoolExecutor
    roster_codes: tuple[str, ...]
    service: FederationService
    #: The supervisor web, running, when ``http_port`` is set (else None).
    web: SupervisorWeb | None = None
    #: The routine (report reminders); None when ``reminder_minutes`` is 0.
    scheduler: Routine | None = None
    #: LISTEN for notices committed elsewhere (PostgreSQL with ``notice_listen``; else None).
    listener: NoticeListener | None = None

    async def stop(self, grace: float = 5.0) -> None:
        if self.web is not None:
            await self.web.stop()
        if self.scheduler is not None:
            await self.scheduler.stop(grace)  # waits for a tick in flight (it holds a connection)
        if self.listener is not None:
            await self.listener.stop()
        # Notice streams never end by themselves; end them so the grace period only waits
        # for pushes in flight.
        self.broker.close()
        await self.server.stop(grace)
        await self.service.flush_streamed()
        self.executor.shutdown(wait=True)
        self.engine.dispose()


async def create_server(settings: HubSettings) -> HubServer:
    """Build the hub for ``settings``, bind its port and start serving."""
    web_socket = None
    if settings.http_port:
        # Sign-ins, cookies and the escalated customers' contacts cross the supervisor web.
        check_transport(
            settings.http_host,
            cert=settings.http_tls_cert,
            key=settings.http_tls_key,
            allow_plain=settings.http_allow_plain,
            what="the supervisor web",
        )
        # Its port before anything is opened or made: a port in use refuses the start with
        # no store and no session key left behind.
        web_socket = listen(settings.http_host, settings.http_port, "the supervisor web")
    try:
        return await _create_server(settings, web_socket)
    except BaseException:
        if web_socket is not None:
            web_socket.close()
        raise


async def _create_server(settings: HubSettings, web_socket: socket.socket | None) -> HubServer:
    # Roster and deadlines are read once and shared by the link, the routine and the web.
    roster = load_roster(settings.roster)
    roster_codes = tuple(city.code for city in roster)
    deadlines = settings.deadlines()
    # The category names (the web's): a file the tree cannot load refuses the start, with
    # or without the web, before anything is opened.
    categories = CategoryTree.load(settings.categories)
    # Certificates and the revocation list first: a hub that cannot check who calls must not
    # start (and has then opened nothing).
    tls = load_hub_tls(settings.pki_dir)
    revocations = Revocations(settings.pki_dir / "crl.pem")
    max_bytes = settings.max_message_mb * 1024 * 1024
    server = grpc.aio.server(
        interceptors=[RevocationInterceptor(revocations)],
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # Linux lets several servers share a port with SO_REUSEPORT (gRPC's default),
            # splitting the cities between them: a second hub on the port must not start.
            ("grpc.so_reuseport", 0),
        ],
    )
    credentials = grpc.ssl_server_credentials(
        [(tls.private_key, tls.cert_chain)],
        root_certificates=tls.ca_cert,
        require_client_auth=True,
    )
    port = 0
    if _may_bind(settings.listen):
        try:
            port = server.add_secure_port(settings.listen, credentials)
        except RuntimeError:  # grpcio's "Failed to bind to address …"
            port = 0
    if port == 0:
        raise ConfigError(
            f"--listen {settings.listen}: the hub cannot listen there: the port is in use "
            "(another hub?) or the address is not this machine's"
        )
    # The store is opened (made, migrated) once the port is this hub's: a start refused for
    # its port leaves no store behind. gRPC takes its handlers until it starts.
    engine = make_engine(settings.database_url, pool_size=max(settings.db_workers, 8))
    try:
        create_schema(engine)
    except BaseException:
        engine.dispose()
        await server.stop(None)  # the port is given back at once, not when collected
        raise
    warn_if_store_exposed(engine)
    warn_if_exposed([(settings.pki_dir / "hub.key", "private key")])
    workers = settings.db_workers or (1 if is_sqlite(engine) else 8)
    # SQLite has one writer at a time; more threads would only queue on its lock.
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub-db")
    broker = NoticeBroker()
    listener = None
    if settings.notice_listen and not is_sqlite(engine):
        listener = NoticeListener(
            broker,
            database_url=settings.database_url,
            fallback_seconds=settings.notice_listen_fallback_seconds,
            backoff_max=settings.notice_listen_backoff_max,
        )
    service = FederationService(
        engine=engine,
        settings=settings,
        roster_codes=roster_codes,
        broker=broker,
        executor=executor,
        revocations=revocations,
    )
    server.add_generic_rpc_handlers((service.handler(),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    await server.start()
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    log.info("hub serving Federation on port %d (%d cities on roster)", port, len(roster_codes))
    scheduler = None
    if settings.reminder_minutes > 0:
        scheduler = build_scheduler(
            engine=engine,
            deadlines=deadlines,
            roster_codes=roster_codes,
            every_minutes=settings.reminder_minutes,
            lookback_days=settings.reminder_lookback_days,
            on_sent=broker.notify,
        )
        scheduler.start()
    if listener is not None:
        listener.start()
        # Listening before the hub reports ready, so a notice committed elsewhere right after
        # start-up wakes its streams; a database that does not answer only delays it (the
        # listener keeps trying in the background and the streams' own polls still run).
        try:
            await asyncio.wait_for(listener.wait_listening(), 10)
        except TimeoutError:
            log.warning("notice listener not connected yet; it keeps trying")
    hub = HubServer(
        server,
        port,
        settings,
        engine,
        broker,
        executor,
        roster_codes,
        service,
        None,
        scheduler,
        listener,
    )
    if settings.http_port:
        try:
            hub.web = await start_web(
                settings,
                engine,
                roster=roster,
                deadlines=deadlines,
                on_notice=broker.notify,
                categories=categories,
                prebound=web_socket,
            )
        except BaseException:
            # The web could not start (its port is taken…): the hub does not run without it.
            await hub.stop(grace=0)
            raise
    return hub


@dataclass
class SupervisorWeb:
    """The supervisor web's HTTP server, served inside the hub's event loop."""

    server: ConsoleServer
    task: asyncio.Task[None]
    stopping: asyncio.Event
    #: The web's own SQLite engine (its short busy timeout), disposed with it; None: the
    #: hub's engine serves the web.
    engine: Engine | None = None

    async def stop(self) -> None:
        self.stopping.set()
        await self.task
        if self.engine is not None:
            self.engine.dispose()


async def start_web(
    settings: HubSettings,
    engine: Engine,
    *,
    roster: Sequence[City] | None = None,
    deadlines: Deadlines | None = None,
    on_notice: Callable[[Iterable[str]], None] | None = None,
    categories: CategoryTree | None = None,
    prebound: socket.socket | None = None,
) -> SupervisorWeb:
    """Serve the supervisor web on ``http_host:http_port`` (the same store and roster; the
    hub passes the roster and deadlines it loaded, otherwise they are read from settings;
    ``on_notice`` wakes the notice streams of the cities a web-sent notice targets)."""
    # The web stack (FastAPI, Starlette, Jinja, uvicorn) is imported here only: a hub
    # without an HTTP port (the ingest benchmark, a replica that only serves the link)
    # does not carry it and starts sooner.
    from province_hub.web.app import create_app
    from province_hub.web.context import HubWeb
    from province_hub.web.login_failures import StoreLoginThrottle
    from sync.web.keys import load_secret_key
    from sync.web.server import console_server, serve_until

    own_engine = None
    if engine.dialect.name == "sqlite":
        # People wait for the pages: a store locked by another writer (a backup, a shell
        # command) is a quick 503 (retry) rather than a minute's hang. Ingest and the
        # routine keep the long wait.
        engine = own_engine = make_engine(
            settings.database_url, busy_timeout=settings.http_busy_timeout
        )
    hub_web = HubWeb(
        engine=engine,
        roster=tuple(roster) if roster is not None else load_roster(settings.roster),
        zone=ZoneInfo(settings.timezone),
        deadlines=deadlines if deadlines is not None else settings.deadlines(),
        escalation_limit_days=settings.escalation_limit_days,
        on_notice=on_notice,
        categories=categories if categories is not None else CategoryTree.load(settings.categories),
    )
    secret_key = load_secret_key(settings.secret_key_file)
    app = create_app(
        hub_web,
        secret_key=secret_key,
        secure_cookies=settings.http_secure_cookies or settings.http_tls_cert is not None,
        # Counted in the store: replicas behind one address share one limit.
        throttle=StoreLoginThrottle(engine, secret=secret_key),
    )
    server = console_server(
        app,
        host=settings.http_host,
        port=settings.http_port,
        ssl_certfile=settings.http_tls_cert,
        ssl_keyfile=settings.http_tls_key,
        trusted_proxies=trusted_proxies("http_trusted_proxies", settings.http_trusted_proxies),
        what="the supervisor web",
        prebound=prebound,
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(serve_until(server, stopping), name="supervisor-web")
    # Ready before create_server returns: callers (tests, the demo) use it at once.
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (port taken…)
            raise OSError(f"the supervisor web could not listen on port {settings.http_port}")
        await asyncio.sleep(0.02)
    log.info(
        "supervisor web on %s://%s:%d/",
        "https" if settings.http_tls_cert else "http",
        settings.http_host,
        settings.http_port,
    )
    return SupervisorWeb(server, task, stopping, own_engine)


async def serve(settings: HubSettings) -> None:
    """Run the hub until SIGTERM or SIGINT."""
    hub = await create_server(settings)
    print(f"fedsync hub listening on port {hub.port}", flush=True)
    if hub.web is not None:
        print(
            f"fedsync hub supervisor web on {'https' if settings.http_tls_cert else 'http'}"
            f"://{settings.http_host}:{settings.http_port}/",
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("hub stopping")
    await hub.stop()


def _may_bind(listen: str) -> bool:
    """Whether ``listen`` (host:port) is free, asked with sockets of our own first: gRPC's
    own failure also writes a line of its C core's log to stderr before the hub's one-line
    refusal. False only when no address of it binds and one is in use (gRPC starts on any
    address that binds); anything else (an address that does not resolve, a family this host
    lacks) is left for gRPC to judge. Bound as gRPC binds (SO_REUSEADDR, no SO_REUSEPORT),
    then closed."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return True
    try:
        found = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return True
    in_use = False
    for family, kind, proto, _, address in found:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            in_use = in_use or exc.errno == errno.EADDRINUSE
            continue
        return True
    return not in_use
