"""Serving a console: uvicorn inside the tier's own event loop (the process owns
SIGTERM/SIGINT and stops the console through its stop event). The session-signing key file
is :mod:`sync.web.keys`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from sync.web.listener import listen


class ConsoleServer(uvicorn.Server):
    """uvicorn inside the process's loop: it must not install its own signal handlers, and
    a port it cannot listen on is a :class:`~sync.config.ConfigError` naming the address
    (uvicorn itself logs and exits the whole process with status 3)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    #: What the server is called in a refusal ("the console", "the supervisor web").
    what = "the console"

    #: A socket bound before the server was built (``sync.web.listener.listen``), else
    #: the server binds its host and port when it starts.
    prebound: socket.socket | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:
            sockets = [self.prebound or listen(self.config.host, self.config.port, self.what)]
        await super().serve(sockets=sockets)


def console_server(
    app: FastAPI,
    *,
    host: str,
    port: int,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    what: str = "the console",
    trusted_proxies: Sequence[str] = (),
    prebound: socket.socket | None = None,
) -> ConsoleServer:
    """A quiet uvicorn server for ``app`` (no access log: URLs may name people's tickets),
    serving HTTPS when given a certificate and key; behind ``trusted_proxies`` (addresses or
    networks) the client is the one their ``X-Forwarded-For`` names."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        # The address failed logins are counted against is the peer's, or the client's as
        # a proxy named in ``trusted_proxies`` states it (the last address before it in
        # X-Forwarded-For that is not a trusted proxy). uvicorn would otherwise take the
        # header from any loopback peer, so a local process (or a proxy passing the
        # client's header through) could name a new address per attempt and never meet the
        # per-address limit, and write made-up addresses into the audit.
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies) or None,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
    server = ConsoleServer(config)
    server.what = what
    server.prebound = prebound
    return server


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
