"""One running node per city store, and no re-base under a running node.

``fedsync city run`` holds its store's node lock for as long as it runs; ``fedsync city
rebase --yes`` takes the same lock for the moment it renumbers, and is refused while a node
holds it (a running node keeps its link parked and its own idea of the outbox: a re-base
under it would be undone or half-seen). A second ``fedsync city run`` on the same store is
refused too: two nodes on one outbox would push the same envelopes twice.

SQLite: an exclusive ``flock`` on a file beside the store (``STORE-node.lock``; never on the
store file itself, whose POSIX locks SQLite owns and a closed descriptor would drop).
PostgreSQL: a session advisory lock on a connection held for as long as the lock is. Either
is released by the operating system or the server when the process dies, so a node killed
with SIGKILL leaves nothing to clean up. (On PostgreSQL the lock lasts as long as that
session: a server restart under a running node ends it, and the node runs on unlocked.)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from city_node.errors import CityError
from sync.filemodes import private_dir

log = logging.getLogger(__name__)


class NodeRunning(CityError):
    """Another process holds the store's node lock."""


def _pg_key(city_code: str) -> int:
    digest = hashlib.sha256(f"fedsync city node {city_code}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def node_lock(engine: Engine, city_code: str) -> Iterator[None]:
    """Hold the store's node lock, or raise :class:`NodeRunning` at once."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            key = _pg_key(city_code)
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            if not taken:
                raise NodeRunning("node.running", city=city_code)
            try:
                yield
            finally:
                # The session may be gone (the server restarted, an idle timeout): then so
                # is its lock, and there is nothing left to release.
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                except DBAPIError:
                    log.warning(
                        "city %s: the node lock's database session had ended before the "
                        "node stopped (the lock went with it)",
                        city_code,
                    )
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # a store no other process can open
        return
    path = Path(f"{database}-node.lock")
    private_dir(path.parent)  # a new store's folder, made as the store would make it
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NodeRunning("node.running", city=city_code) from None
        yield
    finally:
        os.close(fd)  # releases the lock
