"""The hub's routine on APScheduler 3: overdue reports get their one REMINDER.

Every replica runs the same schedule; the work itself is single-runner and at-most-once
(see :mod:`province_hub.deadlines`: an advisory lock on PostgreSQL and a claim row per
reminder), so replicas need no coordination of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from province_hub.deadlines import Deadlines, Overdue, send_reminders

log = logging.getLogger(__name__)


class Routine:
    """The routine's scheduler and its ticks in flight.

    A tick runs in a worker thread with a database connection checked out, and APScheduler's
    ``shutdown(wait=False)`` does not wait for it: the hub stopping would dispose of its
    engine under a running tick, whose connection then closes only when collected (a
    ``ResourceWarning``, and on PostgreSQL a server session left open until then).
    :meth:`stop` ends the schedule and waits for the ticks in flight.
    """

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self.scheduler = scheduler
        self.ticks: set[asyncio.Future[Any]] = set()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def start(self) -> None:
        """Start the schedule (in the running event loop)."""
        self.scheduler.start()

    async def stop(self, grace: float) -> None:
        """No new tick; wait up to ``grace`` seconds for those in flight to end."""
        self.scheduler.shutdown(wait=False)
        if self.ticks:
            await asyncio.wait(set(self.ticks), timeout=grace)


def build_scheduler(
    *,
    engine: Engine,
    deadlines: Deadlines,
    roster_codes: Sequence[str],
    every_minutes: float,
    lookback_days: int,
    on_sent: Callable[[list[str]], None] | None = None,
) -> Routine:
    """The routine with the reminder job (not started: call ``start()`` in the loop).

    The first run is one interval after the start, so a hub restarting does not remind
    before cities that were waiting for it have pushed their backlog.
    """
    scheduler = AsyncIOScheduler(timezone=deadlines.calendar.zone)
    routine = Routine(scheduler)

    async def remind() -> None:
        tick: asyncio.Future[list[Overdue]] = asyncio.ensure_future(
            asyncio.to_thread(
                send_reminders,
                engine,
                deadlines=deadlines,
                roster_codes=roster_codes,
                lookback=timedelta(days=lookback_days),
            )
        )
        routine.ticks.add(tick)
        tick.add_done_callback(routine.ticks.discard)
        try:
            # Shielded: shutting the scheduler down cancels this coroutine, which must not
            # cancel the future the thread reports to (the thread would run on, unwatched).
            sent = await asyncio.shield(tick)
        except Exception:  # a failed tick must not stop the routine; the next one retries
            log.exception("report reminders failed")
            return
        if sent:
            log.info("sent %d report reminder(s)", len(sent))
            if on_sent is not None:
                on_sent(sorted({item.city_code for item in sent}))

    interval = timedelta(minutes=every_minutes)
    scheduler.add_job(
        remind,
        IntervalTrigger(seconds=interval.total_seconds(), timezone=deadlines.calendar.zone),
        id="report-reminders",
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(UTC) + interval,
    )
    return routine
