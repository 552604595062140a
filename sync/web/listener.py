"""The console's listening socket, without the web stack: a node binds its console port
before it opens its store and says Hello to the hub, so a port in use is refused before
anything is made (:mod:`sync.web.server` serves on it later)."""

from __future__ import annotations

import errno
import socket

from sync.config import ConfigError


def listen(host: str, port: int, what: str = "the console") -> socket.socket:
    """A socket listening on ``host:port``, or ``ConfigError`` saying why not (the port in
    use by another process, an address that is not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        raise ConfigError(
            f"--http-port {port}: {what} cannot listen on {host}:{port}: {reason}"
        ) from None
    sock.set_inheritable(True)
    return sock
