"""The traffic simulator's live side: tickets every few seconds, and the demo's receipts.

:func:`run` plays a :class:`city_node.simulator.Simulator` live until ``stop`` is set, with
the blocking database work off the event loop (``asyncio.to_thread``); an empty store first
gets :func:`city_node.simulator.backfill` history. :func:`auto_receipts` is the demo city
reading (and doing) the province's notices as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import heapq
import logging
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from city_node import commands, reports, services, tickets
from city_node.context import Actor, CityContext, CityError
from city_node.domain import (
    Action,
    CustomerTier,
    ReportStatus,
    Role,
    Status,
    TicketKind,
)
from city_node.simulator import Simulator, backfill
from city_node.simulator_mix import BRANCHES, LiveTicket, claim_demo_store
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.vocabulary import PeriodKind, ReportKind

if TYPE_CHECKING:
    from city_node.app import Companion, Extras
    from city_node.settings import CitySettings

# The simulator's log, wherever its code lives.
log = logging.getLogger("city_node.simulator")

#: Live mode: simulated seconds per real second (one working day in about seven minutes).
LIVE_SPEED = 200.0
#: History a demo node writes into an empty store before its live traffic starts.
DEMO_BACKFILL_DAYS = 3

#: What the live loop does to a ticket it finds open without a script (left by a backfill or
#: a previous run, or an overtime one): the next sensible step for its status.
_NEXT_STEP = {
    Status.REGISTERED: Action.ANSWER,
    Status.WITH_SENIOR: Action.DISPATCH,
    Status.DISPATCHED: Action.START,
    Status.IN_PROGRESS: Action.BRANCH_RETURN,
    Status.RETURNED: Action.CLOSE,
    Status.ESCALATED_MANAGER: Action.CLOSE,
}


class LiveTraffic:
    """The live loop's state: scripts being played at ``LIVE_SPEED`` and side jobs."""

    def __init__(self, sim: Simulator, rate_scale: float) -> None:
        self.sim = sim
        self.rate_scale = rate_scale
        self.pending: list[tuple[datetime, int, LiveTicket]] = []
        self.order = 0
        self.ticks = 0
        self.last: datetime | None = None
        self.reported: date | None = None

    def tick(self) -> None:
        """One round: new arrivals, due steps, and now and then the back-office work."""
        sim, ctx = self.sim, self.sim.ctx
        now = ctx.now()
        elapsed = (now - self.last).total_seconds() if self.last else 4.0
        self.last = now
        self.ticks += 1
        expected = sim.per_day * self.rate_scale * elapsed * LIVE_SPEED / 86_400
        arrivals = int(expected) + (1 if sim.rng.random() < expected % 1 else 0)
        for _ in range(arrivals):
            intake, actor, owner, steps = sim.new_ticket(now)
            try:
                ticket = tickets.register(
                    ctx,
                    actor,
                    intake.new,
                    at=now,
                    then=intake.then,
                    branch=intake.branch,
                    note=intake.note,
                )
            except CityError as exc:
                log.warning("simulator: registration refused: %s", exc)
                continue
            self._schedule(LiveTicket(ticket, steps, owner), now)
        while self.pending and self.pending[0][0] <= now:
            _, _, live = heapq.heappop(self.pending)
            step = live.steps.popleft()
            try:
                sim.do(live, step, max(now, live.ticket.history[-1].at))
            except CityError as exc:
                # Someone at the console worked this ticket meanwhile: leave it to them.
                log.info("simulator: ticket %s left alone: %s", live.ticket.id, exc)
                continue
            self._schedule(live, now)
        if self.ticks % 5 == 1:
            self._sweep(now)
        self._back_office(now)

    def _schedule(self, live: LiveTicket, now: datetime) -> None:
        if live.steps:
            self.order += 1
            at = self.sim.next_time(live, live.steps[0], now, speed=LIVE_SPEED)
            heapq.heappush(self.pending, (at, self.order, live))

    def _sweep(self, now: datetime) -> None:
        """Work one or two open tickets nobody scripted: overtime ones first (closed late,
        with compensation for complaints), else the oldest backlog."""
        sim, ctx = self.sim, self.sim.ctx
        scripted = {live.ticket.id for _, _, live in self.pending}
        rows = tickets.search(ctx, overtime_only=True, limit=20) or tickets.search(
            ctx, open_only=True, limit=20
        )
        for row in [r for r in rows if r.id not in scripted][:2]:
            action = _NEXT_STEP.get(Status(row.status))
            if action is None:
                continue  # with the province: its resolution comes as a notice
            if row.status == Status.ESCALATED_MANAGER:
                role = Role.MANAGER_HOTLINE
            elif row.tier != CustomerTier.ORDINARY.value or row.status == Status.WITH_SENIOR:
                role = Role.OPERATOR_SENIOR
            else:
                role = Role.OPERATOR_JUNIOR
            branch = sim.rng.choice(BRANCHES) if action is Action.DISPATCH else None
            try:
                command = commands.command_from(action, branch=branch)
                ticket = tickets.perform(ctx, sim.actor(role), row.id, command, at=now)
                overtime = ticket.closed_at is not None and ticket.closed_at > ticket.deadline
                if overtime and ticket.kind is TicketKind.COMPLAINT and sim.rng.random() < 0.7:
                    tickets.record_compensation(
                        ctx,
                        sim.actor(Role.MANAGER_HOTLINE),
                        row.id,
                        fen=2000,
                        note=sim.text("compensation"),
                        at=now,
                    )
            except CityError as exc:
                log.info("simulator: ticket %s left alone: %s", row.id, exc)

    def _back_office(self, now: datetime) -> None:
        """Now and then QA scoring, suggestion classification and batches, and yesterday's
        report; each guarded so a refusal never stops the traffic."""
        sim = self.sim
        jobs: list[Callable[[], None]] = []
        if self.ticks % 7 == 1:
            jobs.append(lambda: sim.qa_round(now, most=2))
        if self.ticks % 3 == 1:
            jobs.append(lambda: sim.classify_and_send_suggestions(now, send=self.ticks % 15 == 1))
        yesterday = sim.ctx.today(now) - timedelta(days=1)
        if self.reported != yesterday:
            # Once a day (the node's scheduler may have drafted it already: not twice).
            self.reported = yesterday
            if not _has_report(sim.ctx, ReportKind.STATISTICS, PeriodKind.DAY, yesterday):
                jobs.append(
                    lambda: sim.report_round(
                        [(ReportKind.STATISTICS, PeriodKind.DAY, yesterday)], now
                    )
                )
        elif self.ticks % 11 == 1:
            jobs.append(lambda: sim.report_round([], now))  # drafts by the scheduler too
        for job in jobs:
            try:
                job()
            except CityError as exc:
                log.info("simulator: back office: %s", exc)


def _has_report(ctx: CityContext, kind: ReportKind, period_kind: PeriodKind, start: date) -> bool:
    """Sent or awaiting the leader already (a restarted node must not redraft each day)."""
    return any(
        r.kind == kind
        and r.period_kind == period_kind
        and r.period_start == start
        and r.status in (ReportStatus.DRAFT, ReportStatus.APPROVED)
        for r in reports.recent(ctx, 100)
    )


async def run(
    ctx: CityContext,
    stop: asyncio.Event,
    wake: Callable[[], None] | None = None,
    *,
    rate_scale: float = 1.0,
    seed: int | str | None = None,
    backfill_days: int = 0,
    interval: tuple[float, float] = (2.0, 6.0),
    lang: str = "zh",
    approve_after: timedelta = timedelta(0),
) -> None:
    """Produce live traffic every few seconds until ``stop`` is set.

    With ``backfill_days`` an empty store first gets that much history (a demo starts with
    something to look at). ``wake`` is called after each round so the link pushes at once.
    With ``approve_after`` the simulated leader leaves drafts that long, and last week's
    reports are drafted at the start: a visitor finds them waiting in the approval queue.
    """
    await asyncio.to_thread(claim_demo_store, ctx)
    sim = Simulator(ctx, seed=seed, scale=1.0, lang=lang, approve_after=approve_after)
    await asyncio.to_thread(sim.ensure_staff)
    if backfill_days and await asyncio.to_thread(tickets.count, ctx) == 0:
        await asyncio.to_thread(backfill, ctx, days=backfill_days, seed=seed, lang=lang)
    if approve_after > timedelta(0):
        await asyncio.to_thread(_drafts_to_review, sim)
    await asyncio.to_thread(release_memory)
    traffic = LiveTraffic(sim, rate_scale)
    while not stop.is_set():
        try:
            await asyncio.to_thread(traffic.tick)
        except Exception:  # a demo must keep going; the log says what broke
            log.exception("simulator: round failed")
        if traffic.ticks % 50 == 0:
            await asyncio.to_thread(release_memory)
        if wake is not None:
            wake()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=sim.rng.uniform(*interval))


def _drafts_to_review(sim: Simulator) -> None:
    """Last week's three reports as drafts (a new revision where sent already), unless
    drafts wait already."""
    if reports.pending(sim.ctx):
        return
    week = reports.complete_periods(sim.ctx, PeriodKind.WEEK)[0].start
    try:
        sim.report_round(
            [
                (ReportKind.STATISTICS, PeriodKind.WEEK, week),
                (ReportKind.QA, PeriodKind.WEEK, week),
                (ReportKind.OVERTIME, PeriodKind.WEEK, week),
            ],
            sim.ctx.now(),
        )
    except CityError as exc:
        log.info("simulator: drafts to review: %s", exc)


def release_memory() -> None:
    """Give the heap the backfill and the rounds left behind back to the system: glibc keeps
    freed memory in the process otherwise (about 15 MB a city; 14 of them in a demo)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


#: How long the demo's simulated leader leaves a draft for a visitor to review.
DEMO_APPROVAL_DELAY = timedelta(minutes=4)


# --- notices (demo) ----------------------------------------------------------------------------


def auto_receipts(engine: Engine, notice: pb.Notice, *, actor: str = "leader-1") -> None:
    """Demo only: read announcements, tasks, standard answers, findings and reminders as
    they arrive, and mark tasks done — as a diligent city would."""
    leader = Actor(actor, Role.LEADER)
    if notice.kind in (pb.ANNOUNCEMENT, pb.TASK, pb.STANDARD_ANSWER, pb.FINDING, pb.REMINDER):
        services.record_receipt(engine, notice_seq=notice.seq, action="read", actor=leader)
    if notice.kind == pb.TASK:
        services.record_receipt(
            engine, notice_seq=notice.seq, action="done", actor=leader, note="done (demo)"
        )


def demo_extras(settings: CitySettings) -> Extras:
    """What ``fedsync demo`` adds to each city it starts (``--demo-traffic``: live traffic
    on a backfilled store, drafts left for a visitor; ``--demo-receipts``: each notice read
    and done at once); nothing for a node started without those settings. Receipts come
    from people otherwise: the product's composition root knows of neither."""
    from city_node.app import Extras

    companions: tuple[tuple[str, Companion], ...] = ()
    if settings.demo_traffic:

        async def traffic(ctx: CityContext, stop: asyncio.Event, wake: Callable[[], None]) -> None:
            await run(
                ctx,
                stop,
                wake,
                backfill_days=DEMO_BACKFILL_DAYS,
                lang=settings.demo_lang,
                approve_after=DEMO_APPROVAL_DELAY,
            )

        companions = (("demo-traffic", traffic),)
    hooks = (auto_receipts,) if settings.demo_receipts else ()
    return Extras(companions=companions, after_notice=hooks)


__all__ = [
    "DEMO_APPROVAL_DELAY",
    "DEMO_BACKFILL_DAYS",
    "LiveTraffic",
    "auto_receipts",
    "demo_extras",
    "run",
]
