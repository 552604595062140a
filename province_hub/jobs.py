"""The hub's routine on APScheduler 3: overdue reports get their one REMINDER.

Every replica runs the same schedule; the work itself is single-runner and at-most-once
(see :mod:`province_hub.deadlines`: an advisory lock on PostgreSQL and a claim row per
reminder), so replicas need no coordination of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from province_hub.deadlines import Deadlines, Overdue, send_reminders
from sync.routine import Routine

log = logging.getLogger(__name__)


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
        try:
            sent: list[Overdue] = await routine.in_thread(
                send_reminders,
                engine,
                deadlines=deadlines,
                roster_codes=roster_codes,
                lookback=timedelta(days=lookback_days),
            )
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
