"""Serving a console: its session-signing key file, and uvicorn inside the tier's own event
loop (the process owns SIGTERM/SIGINT and stops the console through its stop event)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from sync.config import ConfigError
from sync.filemodes import private_dir

_KEY_BYTES = 32


def load_secret_key(path: Path, *, setting_name: str = "secret_key_file") -> bytes:
    """The console's session-signing key from ``path``, created on first start.

    Kept in a file (not generated per start) so staff stay signed in across a restart;
    delete the file to sign everyone out.
    """
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        private_dir(path.parent)
        key = secrets.token_hex(_KEY_BYTES).encode()
        # O_EXCL: two processes starting at once must not each write a different key.
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key + b"\n")
            return key
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{setting_name} {path}: cannot read it ({exc.strerror})") from None
    if len(key) < _KEY_BYTES:
        raise ConfigError(
            f"{setting_name} {path}: the key has {len(key)} bytes; use at least {_KEY_BYTES}"
        )
    return key


class ConsoleServer(uvicorn.Server):
    """uvicorn inside the process's loop: it must not install its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def console_server(
    app: FastAPI,
    *,
    host: str,
    port: int,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> ConsoleServer:
    """A quiet uvicorn server for ``app`` (no access log: URLs may name people's tickets),
    serving HTTPS when given a certificate and key."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
    return ConsoleServer(config)


async def serve_until(server: uvicorn.Server, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then finish in-flight requests and return."""
    serving = asyncio.create_task(server.serve(), name="console-serve")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving


def bound_port(server: uvicorn.Server) -> int | None:
    """The port a started server listens on (port 0 asked for any free one)."""
    for s in getattr(server, "servers", []) or []:
        for sock in s.sockets:
            port: int = sock.getsockname()[1]
            return port
    return None
