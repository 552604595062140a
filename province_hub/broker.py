"""Wakes the notice streams of a city when a notice for it is committed.

Two ways a stream learns that a notice for its city was committed:

* **In this process** (every engine): whoever commits it calls ``NoticeBroker.notify``.
* **In another process** sharing the PostgreSQL store (another hub replica, the
  ``fedsync hub notice`` command): the creating transaction runs ``NOTIFY`` with the notice's
  seq (:func:`announce_notice`; PostgreSQL delivers it at commit, never for a rolled-back
  transaction), and each replica's :class:`NoticeListener` wakes the targeted streams.

A notification can be missed (the listener's connection dropped, the replica was
restarting), so the listener never trusts it alone: it keeps the highest notice seq it has
seen and, on every notification, on every (re)connection and every
``notice_listen_fallback_seconds``, reads the cities of all notices after that seq from the
table (**catch-up by sequence**). Notice seqs are handed out under a row lock held to commit
(``notice_feed._next_counter``), so they become visible in seq order and "after the highest
seen" misses nothing. Each stream also keeps its own cursor and its own slow poll
(``notice_poll_seconds``), so a city never depends on a wake-up to get a notice, only to get
it promptly.

On SQLite (one process per store) there is no listener; the in-process broker is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

#: The PostgreSQL channel on which committed notices are announced (payload: the seq).
NOTICE_CHANNEL = "fedsync_notice"


def announce_notice(conn: Connection, seq: int) -> None:
    """Announce notice ``seq`` to every hub replica when the caller's transaction commits.

    A no-op on SQLite, where a store belongs to one process.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :seq)"), {"channel": NOTICE_CHANNEL, "seq": str(seq)}
        )


class NoticeBroker:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def close(self) -> None:
        """The hub is stopping: wake every stream so it ends instead of holding shutdown."""
        self.closed = True
        for events in self._waiters.values():
            for event in events:
                event.set()

    def register(self, city_code: str) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiters.setdefault(city_code, set()).add(event)
        return event

    def unregister(self, city_code: str, event: asyncio.Event) -> None:
        self._waiters.get(city_code, set()).discard(event)

    def notify(self, city_codes: Iterable[str]) -> None:
        """Wake the streams of these cities; safe to call from any thread."""
        codes = list(city_codes)
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake(codes)
        else:
            loop.call_soon_threadsafe(self._wake, codes)

    def _wake(self, codes: list[str]) -> None:
        for code in codes:
            for event in self._waiters.get(code, ()):
                event.set()


def libpq_conninfo(database_url: str) -> str:
    """The libpq URI of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://`` and the like)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


_CATCH_UP = (
    "SELECT notice_seq, city_code FROM notice_deliveries WHERE notice_seq > %s ORDER BY notice_seq"
)


class NoticeListener:
    """One replica's ``LISTEN`` on :data:`NOTICE_CHANNEL`, waking streams through the broker.

    Runs as a task of the hub's event loop on its own psycopg ``AsyncConnection`` (autocommit,
    outside the engine's pool: a listening connection is held for the process's life). When
    the connection fails it reconnects with exponential backoff and jitter, then catches up;
    it waits on the socket (or ``fallback_seconds``), never spins. ``stop`` cancels the task
    and closes the connection.
    """

    def __init__(
        self,
        broker: NoticeBroker,
        *,
        database_url: str,
        fallback_seconds: float = 5.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
    ) -> None:
        self._broker = broker
        self._conninfo = libpq_conninfo(database_url)
        self._fallback = fallback_seconds
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        #: Highest notice seq whose cities were woken (None: not read yet).
        self.last_seen: int | None = None
        #: The listening connection's server pid while connected (None otherwise).
        self.backend_pid: int | None = None
        #: Connections made so far (the first one included).
        self.connections = 0
        self._listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notice-listener")

    async def wait_listening(self) -> None:
        """Until the listener is connected and has caught up (start-up, tests)."""
        await self._listening.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        self.backend_pid = None
        self._listening.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self) -> None:
        import psycopg

        delay = self._backoff_initial
        while True:
            try:
                await self._connect()
                delay = self._backoff_initial
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.warning("notice listener: %s; reconnecting in %.1f s", exc, delay)
            except Exception:
                log.exception("notice listener failed; reconnecting in %.1f s", delay)
            await self._close()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff_max)

    async def _connect(self) -> None:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        self._conn = conn
        # Listen first, then read: a notice committed in between is both announced and read,
        # never neither.
        await conn.execute(f"LISTEN {NOTICE_CHANNEL}")
        self.backend_pid = conn.info.backend_pid
        self.connections += 1
        if self.last_seen is None:
            cursor = await conn.execute("SELECT coalesce(max(seq), 0) FROM notices")
            row = await cursor.fetchone()
            self.last_seen = int(row[0]) if row else 0
        else:
            await self._catch_up()
        self._listening.set()
        log.info("notice listener on %s (backend pid %s)", NOTICE_CHANNEL, self.backend_pid)

    async def _listen(self) -> None:
        conn = self._conn
        while True:
            received = 0
            new = False
            # Ends after one notification (any arriving meanwhile queue on the connection and
            # come with the next call) or after the fallback interval without one.
            async for notify in conn.notifies(timeout=self._fallback, stop_after=1):
                received += 1
                payload = notify.payload
                new = new or not payload.isdigit() or int(payload) > (self.last_seen or 0)
            # A notification of a seq already read (caught up with an earlier one) needs no
            # query; silence for the whole interval gets the fallback read.
            if new or not received:
                await self._catch_up()

    async def _catch_up(self) -> None:
        """Wake the cities of every notice after ``last_seen``."""
        cursor = await self._conn.execute(_CATCH_UP, (self.last_seen or 0,))
        rows = await cursor.fetchall()
        if not rows:
            return
        self.last_seen = max(int(seq) for seq, _ in rows)
        self._broker.notify(sorted({str(code) for _, code in rows}))
