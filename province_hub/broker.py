"""Wakes the notice streams of a city when a notice for it is committed in this process.

Notices created elsewhere (another hub replica, the ``fedsync hub notice`` command) are
found by each stream's polling fallback (``notice_poll_seconds``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


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
