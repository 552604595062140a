"""A tier's routine: an APScheduler 3 scheduler whose jobs run their work in worker threads,
and which waits for the work in flight when it stops.

A job's work holds a database connection in its thread, and APScheduler's
``shutdown(wait=False)`` (the only shutdown an asyncio scheduler can do without blocking the
loop) neither waits for it nor can stop it: a process stopping would dispose of its engine
under a running tick, whose connection then closes only when collected (a
``ResourceWarning``, and on PostgreSQL a server session left open until then). Work started
through :meth:`Routine.in_thread` is tracked, and :meth:`Routine.stop` waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler

T = TypeVar("T")


class Routine:
    """A scheduler and the work its jobs have in flight."""

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self.scheduler = scheduler
        self.ticks: set[asyncio.Future[Any]] = set()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def get_job(self, job_id: str) -> Any:
        return self.scheduler.get_job(job_id)

    def start(self) -> None:
        """Start the schedule (in the running event loop)."""
        self.scheduler.start()

    async def in_thread(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work(*args, **kwargs)`` in a worker thread, tracked until it ends."""
        tick = asyncio.ensure_future(asyncio.to_thread(work, *args, **kwargs))
        self.ticks.add(tick)
        tick.add_done_callback(self.ticks.discard)
        # Shielded: shutting the scheduler down cancels the job's coroutine, which must not
        # cancel the future the thread reports to (the thread would run on, unwatched).
        return await asyncio.shield(tick)

    async def stop(self, grace: float) -> None:
        """No new tick; wait up to ``grace`` seconds for the work in flight to end."""
        self.scheduler.shutdown(wait=False)
        if self.ticks:
            await asyncio.wait(set(self.ticks), timeout=grace)
