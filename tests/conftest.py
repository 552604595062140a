"""Shared fixtures: a real PKI, real databases (SQLite files and PostgreSQL), a real hub.

PostgreSQL comes from ``FEDSYNC_TEST_DATABASE_URL`` (a server where we may create
databases); when unset, testcontainers starts one if a Docker engine answers; otherwise the
PostgreSQL variants are skipped with the reason — or fail when ``FEDSYNC_REQUIRE_POSTGRES=1``
(CI sets it, so a missing PostgreSQL can never pass silently).
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from sync.pki import init_pki
from sync.roster import load_roster

ROSTER_CODES = tuple(city.code for city in load_roster())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--engines", default="sqlite,postgresql", help="database engines to test")


# --- PKI ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One province CA with hub and roster city certificates for the whole run."""
    directory = tmp_path_factory.mktemp("pki")
    init_pki(directory, city_codes=ROSTER_CODES, hub_hosts=("localhost", "127.0.0.1"))
    return directory


# --- databases ---------------------------------------------------------------------------------


def _docker_answers() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = host.removeprefix("unix://")
        if not Path(path).exists():
            return False  # no engine socket: nothing to ask
        # Ask the engine's /_ping over its socket ourselves, closing it on every path: the
        # docker SDK's failed ping left an AF_UNIX socket to the garbage collector, whose
        # ResourceWarning then failed whichever test ran next (filterwarnings=error).
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            try:
                sock.connect(path)
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                status = sock.recv(64)
            except OSError:
                return False
        return status.startswith(b"HTTP/1.") and b" 200 " in status
    try:
        import docker
    except ImportError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=3, version="1.41")
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False
        finally:
            gc.collect()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server on which tests may create and drop databases."""
    url = os.environ.get("FEDSYNC_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as container:
            yield container.get_connection_url()
        return
    reason = "no PostgreSQL: set FEDSYNC_TEST_DATABASE_URL or run a Docker engine"
    if os.environ.get("FEDSYNC_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"FEDSYNC_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


class DatabaseFactory:
    """Creates fresh, empty databases of one engine; drops them at the end."""

    def __init__(self, engine_name: str, tmp_path: Path, server_url: str | None) -> None:
        self.engine_name = engine_name
        self._tmp = tmp_path
        self._server_url = server_url
        self._created: list[str] = []

    def __call__(self, name: str) -> str:
        if self.engine_name == "sqlite":
            return f"sqlite:///{self._tmp / (name + '.sqlite')}"
        import psycopg

        assert self._server_url is not None
        db_name = f"fedsync_{name}_{uuid.uuid4().hex[:10]}".lower().replace("-", "_")
        admin = make_url(self._server_url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db_name}"')
        self._created.append(db_name)
        return (
            make_url(self._server_url)
            .set(drivername="postgresql+psycopg", database=db_name)
            .render_as_string(hide_password=False)
        )

    def copy(self, url: str) -> str:
        """A point-in-time copy of ``url`` (a "backup"), dropped with the others."""
        copied = copy_database(url)
        if self.engine_name == "postgresql":
            self._created.append(make_url(copied).database or "")
        return copied

    def drop_all(self) -> None:
        if not self._created:
            return
        import psycopg

        admin = make_url(self._server_url or "").set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            for db_name in self._created:
                with suppress(psycopg.Error):
                    conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _engine_params() -> list[Any]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]


@pytest.fixture(params=_engine_params())
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """Factory of fresh database URLs, once per engine (SQLite and PostgreSQL)."""
    engine_name: str = request.param
    wanted = request.config.getoption("--engines").split(",")
    if engine_name not in wanted:
        pytest.skip(f"{engine_name} not selected with --engines")
    server = request.getfixturevalue("postgres_server_url") if engine_name == "postgresql" else None
    factory = DatabaseFactory(engine_name, tmp_path, server)
    yield factory
    factory.drop_all()


# --- processes in this test's event loop ---------------------------------------------------------


@pytest.fixture
def hub_settings_factory(pki_dir: Path) -> Callable[..., Any]:
    from province_hub.settings import HubSettings

    def make(database_url: str, **overrides: Any) -> HubSettings:
        values: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "database_url": database_url,
            "pki_dir": pki_dir,
            "notice_poll_seconds": 0.2,
        }
        values.update(overrides)
        return HubSettings(**values)

    return make


@pytest.fixture
def city_settings_factory(pki_dir: Path) -> Callable[..., Any]:
    from city_node.settings import CitySettings

    def make(code: str, database_url: str, hub_port: int, **overrides: Any) -> CitySettings:
        values: dict[str, Any] = {
            "code": code,
            "hub": f"127.0.0.1:{hub_port}",
            "database_url": database_url,
            "pki_dir": pki_dir,
            "backoff_initial": 0.05,
            "backoff_max": 0.5,
            "heartbeat_seconds": 0.5,
        }
        values.update(overrides)
        return CitySettings(**values)

    return make


class RunningCity:
    """A city node running as a task of the test's event loop."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(node.run(self.stop_event))

    @property
    def engine(self) -> Any:
        return self.node.engine

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, timeout=15)


@pytest.fixture
async def start_city() -> AsyncIterator[Callable[[Any], RunningCity]]:
    from city_node.app import build

    started: list[RunningCity] = []

    def start(settings: Any) -> RunningCity:
        city = RunningCity(build(settings))
        started.append(city)
        return city

    yield start
    for city in started:
        if not city.task.done():
            await city.stop()
        # Tests read the store after a stop; close what those reads opened.
        city.engine.dispose()


async def wait_until(predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``predicate`` (sync, may do database reads) until truthy; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def start_hub() -> AsyncIterator[Callable[[Any], Any]]:
    """Start hubs in this test's event loop; every one is stopped at the end."""
    from province_hub.app import create_server

    started: list[Any] = []

    async def start(settings: Any) -> Any:
        hub = await create_server(settings)
        started.append(hub)
        return hub

    yield start
    for hub in started:
        with suppress(Exception):
            await hub.stop(grace=0.5)
        hub.engine.dispose()


def copy_database(url: str, copy_name_hint: str = "copy") -> str:
    """A point-in-time copy of a test database (a "backup"), returned as a new URL.

    SQLite: the online backup API. PostgreSQL: CREATE DATABASE ... TEMPLATE, after closing
    other sessions on the source (callers dispose their engines first).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        source_path = Path(parsed.database or "")
        target_path = source_path.with_name(
            f"{source_path.stem}-{copy_name_hint}-{uuid.uuid4().hex[:6]}.sqlite"
        )
        with sqlite3.connect(source_path) as source, sqlite3.connect(target_path) as target:
            source.backup(target)
        return f"sqlite:///{target_path}"
    import psycopg

    source_db = parsed.database
    target_db = f"{source_db}_{copy_name_hint}_{uuid.uuid4().hex[:6]}"[:63]
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (source_db,),
        )
        conn.execute(f'CREATE DATABASE "{target_db}" TEMPLATE "{source_db}"')
    return parsed.set(database=target_db).render_as_string(hide_password=False)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on a free loopback port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    from sync.web.server import console_server

    server = console_server(app, host="127.0.0.1", port=port)  # the product's settings
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "console did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
