"""The city's routine, on APScheduler 3 in the federation's time zone.

=================  ===========================  ================================================
job                when (federation zone)       what
=================  ===========================  ================================================
day report         daily 00:15                  statistics draft for yesterday
week report        Monday 00:20                 statistics draft for last week
month reports      1st of the month 00:30       statistics, QA and overtime drafts
quarter reports    1st of Jan/Apr/Jul/Oct 00:40 statistics and overtime drafts
year report        1 January 00:50              statistics draft
QA sampling        daily 01:00                  draw ``qa_sample_rate`` of yesterday's closures
suggestions        daily 23:30                  send the day's classified suggestions
=================  ===========================  ================================================

Drafts wait for the leader unless the node auto-approves. Every job is idempotent — a
period that already has a report is left alone, a day already sampled is not sampled
again — and :func:`catch_up` runs the report jobs once at start, so a node that was down
at 00:15 still drafts yesterday's report (the job store is in memory on purpose: the
database, not the scheduler, remembers what was done).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Connection, delete, func, insert, select

from city_node import qa, reports, suggestions
from city_node.context import Actor, CityContext
from city_node.domain import ReportStatus, Role
from city_node.store import NodeSetting, Report, TicketRow
from sync.routine import Routine
from sync.vocabulary import PeriodKind, ReportKind

log = logging.getLogger(__name__)

#: Who the history and the reports name for work the schedule did.
SCHEDULER_ID = "scheduler"

#: (report kind, period kind) drafted for each period kind when it ends.
_S, _QA, _OT = ReportKind.STATISTICS, ReportKind.QA, ReportKind.OVERTIME
REPORTS_FOR: dict[PeriodKind, tuple[ReportKind, ...]] = {
    PeriodKind.DAY: (_S,),
    PeriodKind.WEEK: (_S,),
    PeriodKind.MONTH: (_S, _QA, _OT),
    PeriodKind.QUARTER: (_S, _OT),
    PeriodKind.YEAR: (_S,),
}
_CRON: dict[str, dict[str, Any]] = {
    PeriodKind.DAY: {"hour": 0, "minute": 15},
    PeriodKind.WEEK: {"day_of_week": "mon", "hour": 0, "minute": 20},
    PeriodKind.MONTH: {"day": 1, "hour": 0, "minute": 30},
    PeriodKind.QUARTER: {"month": "1,4,7,10", "day": 1, "hour": 0, "minute": 40},
    PeriodKind.YEAR: {"month": 1, "day": 1, "hour": 0, "minute": 50},
}


#: How many complete periods back a node that was down catches up on, per period kind.
LOOKBACK = {
    PeriodKind.DAY: 7,
    PeriodKind.WEEK: 4,
    PeriodKind.MONTH: 3,
    PeriodKind.QUARTER: 2,
    PeriodKind.YEAR: 1,
}


def draft_due(
    ctx: CityContext, period_kind: str, now: datetime | None = None, *, lookback: int = 1
) -> list[int]:
    """Draft the reports of the last ``lookback`` complete periods that have no final one.

    A report drafted while its period was still running (a statistician looking at today)
    is not final: its figures stop at the moment it was drafted, so the period gets a new
    revision once it has ended. Periods before the store's first ticket are skipped — a
    node that has not started work has nothing to report.
    """
    with ctx.engine.connect() as conn:
        first = conn.execute(select(func.min(TicketRow.registered_at))).scalar()
    if first is None:
        return []
    made = []
    for p in reports.complete_periods(ctx, period_kind, lookback, now):
        if p.end_at <= first:
            continue
        for kind in REPORTS_FOR[PeriodKind(period_kind)]:
            with ctx.engine.connect() as conn:
                final = conn.execute(
                    select(func.count()).where(
                        Report.kind == kind,
                        Report.period_kind == period_kind,
                        Report.period_start == p.start.isoformat(),
                        Report.status.in_((ReportStatus.DRAFT, ReportStatus.APPROVED)),
                        Report.drafted_at >= p.end_at,
                    )
                ).scalar()
            if final:
                continue
            view = reports.draft(ctx, kind, period_kind, p.start, by=SCHEDULER_ID, now=now)
            log.info("drafted %s %s report for %s (id %d)", kind, period_kind, p.start, view.id)
            made.append(view.id)
    return made


_QA_MARK = "qa.scheduled_through"


def sample_yesterday(ctx: CityContext, now: datetime | None = None) -> list[int]:
    """Draw the scheduled QA share of yesterday's closures, once per day: the last day
    drawn is kept in ``node_settings``, written in the draw's own transaction."""
    moment = now or ctx.now()
    day = ctx.today(moment) - timedelta(days=1)

    def mark(conn: Connection) -> bool:
        done = conn.execute(select(NodeSetting.value).where(NodeSetting.key == _QA_MARK)).scalar()
        if done is not None and done >= day.isoformat():
            return False
        conn.execute(delete(NodeSetting).where(NodeSetting.key == _QA_MARK))
        conn.execute(insert(NodeSetting).values(key=_QA_MARK, value=day.isoformat()))
        return True

    return qa.draw(ctx, day=day, how="scheduled", now=moment, guard=mark)


def send_suggestions(ctx: CityContext, now: datetime | None = None) -> tuple[int, int] | None:
    return suggestions.send_batch(ctx, Actor(SCHEDULER_ID, Role.MATERIALS_CLERK), now=now)


def catch_up(ctx: CityContext, now: datetime | None = None) -> list[int]:
    """Draft whatever report is due and missing, up to :data:`LOOKBACK` periods back (run
    once when the node starts, so a node that was down for days catches up)."""
    made: list[int] = []
    for period_kind in REPORTS_FOR:
        made += draft_due(ctx, period_kind, now, lookback=LOOKBACK[period_kind])
    return made


def build(ctx: CityContext, *, on_queued: Callable[[], None] | None = None) -> Routine:
    """The routine with its jobs (not started: call ``start()`` in the loop; ``stop()``
    waits for a job's work in flight)."""
    scheduler = AsyncIOScheduler(timezone=ctx.zone)
    routine = Routine(scheduler)

    def add(job_id: str, cron: dict[str, Any], work: Callable[[], Any], grace_hours: int) -> None:
        async def run() -> None:
            try:
                result = await routine.in_thread(work)
            except Exception:  # a failed job must not stop the others; it runs again later
                log.exception("scheduled job %s failed", job_id)
                return
            if result and on_queued is not None:
                on_queued()  # an auto-approved report or a batch is in the outbox: push now

        scheduler.add_job(
            run,
            CronTrigger(timezone=ctx.zone, **cron),
            id=job_id,
            coalesce=True,
            misfire_grace_time=grace_hours * 3600,
        )

    for period_kind, cron in _CRON.items():
        add(f"reports-{period_kind}", cron, partial(draft_due, ctx, period_kind), 6)
    add("qa-sampling", {"hour": 1, "minute": 0}, partial(sample_yesterday, ctx), 6)
    add("suggestions", {"hour": 23, "minute": 30}, partial(send_suggestions, ctx), 1)
    return routine
