"""A realistic traffic simulator for one city center (demo, load tests, a history to look at).

It drives the city's own use cases — :mod:`city_node.tickets` (register, register_many, perform,
record_compensation), :mod:`city_node.staff`, and the report, QA and suggestion services —
and never writes a table itself, so everything it produces went through the same rules,
history and outbox as a person's work.

Two ways to use it:

* :func:`backfill` writes a plausible recent history: ``days`` days of tickets dated in
  the past, each ticket's steps at non-decreasing, timezone-aware times, none after ``now``
  (a ticket whose next step would be in the future simply stays open, as it would be).
* :func:`city_node.simulator_live.run` produces live traffic every few seconds until ``stop``
  is set, with the blocking database work off the event loop (``asyncio.to_thread``).

The mix per city (docs/domain.md): volume scaled by the city's population (``sync.roster``);
complaints, enquiries, suggestions, help requests and praise; leaf categories of the city's
category tree; phone / web / walk-in / letter; about 5 % VIP, important and leased-line
customers (registered by a junior, handed to a senior, worked by the senior); branch work
with chases and rework; repeat complaints (same phone and category); escalations to the
manager hotline and on to the province; some overtime closures with compensation; surveys
including unreachable customers and dissatisfied customers whose ticket is reopened.

The mix (volumes, shares, staff plan, words) is in :mod:`city_node.simulator_mix`.
Deterministic: the same ``seed``, city, ``now`` and store give the same tickets. Proportions
are dealt from a :class:`~city_node.simulator_mix.Deck` (an error-diffusion quota) rather than
drawn independently, so even a small city over a few days shows every scenario in about its
share.

Staff: the simulator signs in as its own accounts (``op-junior-1`` … ``leader-1``, see
:func:`staff_plan`), created on first use with the password :data:`DEMO_PASSWORD` — demo
accounts, never for a real deployment.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import math
import random
from collections import deque
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from city_node import qa, reports, suggestions, tickets
from city_node.context import Actor, CityContext, CityError
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    Role,
    Satisfaction,
    Ticket,
    TicketKind,
)
from city_node.simulator_mix import (
    BRANCHES,
    CATEGORY_WEIGHTS,
    CHANNEL_MIX,
    COMPLAINT_CONTENT,
    COMPLAINT_FATES,
    CONTENT,
    DEFECT_NAMES,
    DEMO_PASSWORD,
    DEMO_TEXTS,
    FIRST_HOUR,
    GIVEN,
    HOUR_WEIGHTS,
    KIND_MIX,
    MIN_PER_DAY,
    OFF_DAY_FACTOR,
    REPEAT_SHARE,
    SUGGESTION_LABELS,
    SURNAMES,
    SURVEY_MIX,
    SURVEY_SHARE,
    TIER_MIX,
    Deck,
    LiveTicket,
    Step,
    claim_demo_store,
    daily_volume,
    ensure_staff,
    population_of,
    staff_plan,
)
from city_node.tickets import Intake, NewTicket
from sync.limits import report_date_problem
from sync.vocabulary import PeriodKind, ReportKind

log = logging.getLogger(__name__)
#: Largest volume multiplier a simulated history takes (100x is far beyond any city).
MAX_SCALE = 100.0

#: When the back office works in a backfilled day (local time).
MORNING, EVENING = time(9, 0), time(18, 30)


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def _hours(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(hours=rng.uniform(low, high))


class Simulator:
    """The traffic of one city; :func:`backfill` and :func:`city_node.simulator_live.run` are
    the entry points."""

    def __init__(
        self,
        ctx: CityContext,
        *,
        seed: int | str | None = None,
        scale: float = 1.0,
        population: int | None = None,
        lang: str = "zh",
        approve_after: timedelta = timedelta(0),
    ) -> None:
        self.ctx = ctx
        #: Language of the texts the simulated staff write (names, QA findings, notes).
        self.lang = lang if lang in DEMO_TEXTS else "zh"
        #: The simulated leader approves only drafts at least this old, so that a visitor
        #: of a live demo finds a draft waiting in the approval queue.
        self.approve_after = approve_after
        self.rng = random.Random(f"{seed}/{ctx.city_code}" if seed is not None else None)
        self.population = population or population_of(ctx.city_code)
        self.per_day = daily_volume(self.population, scale)
        self.staff: dict[Role, list[str]] = {}
        self.leaves = sorted(c.code for c in ctx.categories if not ctx.categories.children(c.code))
        self._kinds = Deck(dict(KIND_MIX), self.rng)
        self._channels = Deck(dict(CHANNEL_MIX), self.rng)
        self._tiers = Deck(dict(TIER_MIX), self.rng)
        self._fates = Deck(dict(COMPLAINT_FATES), self.rng)
        self._surveys = Deck(dict(SURVEY_MIX), self.rng)
        self._repeats = Deck({True: REPEAT_SHARE, False: 1 - REPEAT_SHARE}, self.rng)
        #: Recent complaints (phone, category, registered_at), for repeat complaints.
        self._recent: deque[tuple[str, str, datetime]] = deque(maxlen=500)
        self.counts: dict[str, int] = {}

    # -- people ----------------------------------------------------------------------------

    def ensure_staff(self) -> None:
        self.staff = ensure_staff(self.ctx.engine, staff_plan(self.population), lang=self.lang)

    def text(self, key: str, **values: Any) -> str:
        return DEMO_TEXTS[self.lang][key].format(**values)

    def actor(self, role: Role, staff_id: str | None = None) -> Actor:
        return Actor(staff_id or self.rng.choice(self.staff[role]), role)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- a new ticket ----------------------------------------------------------------------

    def _category(self) -> str:
        weights = [CATEGORY_WEIGHTS.get(code, 1.0) for code in self.leaves]
        return self.rng.choices(self.leaves, weights=weights)[0]

    def _phone(self) -> str:
        return "1" + self.rng.choice("3578") + "".join(self.rng.choices("0123456789", k=9))

    def _content(self, kind: TicketKind, category: str) -> str:
        if kind is TicketKind.COMPLAINT:
            top = category.split(".")[0]
            return self.rng.choice(COMPLAINT_CONTENT.get(top, COMPLAINT_CONTENT["OTH"]))
        return self.rng.choice(CONTENT[kind])

    def new_ticket(self, at: datetime) -> tuple[Intake, Actor, str, deque[Step]]:
        """An intake with its registering operator, the owning operator and its script."""
        kind: TicketKind = self._kinds.deal()
        tier: CustomerTier = self._tiers.deal()
        channel: Channel = self._channels.deal()
        category = self._category()
        phone = self._phone()
        if kind is TicketKind.COMPLAINT:
            window = timedelta(days=self.ctx.repeat_window_days)
            earlier = [r for r in self._recent if timedelta(0) < at - r[2] <= window]
            if self._repeats.deal() and earlier:
                phone, category, _ = self.rng.choice(earlier)
                self._count("repeat")
            self._recent.append((phone, category, at))
        name = self.rng.choice(SURNAMES) + "".join(self.rng.choices(GIVEN, k=2))
        new = NewTicket(
            kind=kind.value,
            category=category,
            channel=channel.value,
            customer_phone=phone,
            customer_name=name,
            tier=tier.value,
            content=self._content(kind, category),
        )
        junior = self.actor(Role.OPERATOR_JUNIOR)
        priority = tier is not CustomerTier.ORDINARY
        owner = self.actor(Role.OPERATOR_SENIOR).id if priority else junior.id
        owner_role = Role.OPERATOR_SENIOR if priority else Role.OPERATOR_JUNIOR
        script = self._script(kind, owner_role)
        self._count(kind.value)
        if priority:
            self._count("priority")
            # A junior may only take a priority customer in and pass it on (domain rule); the
            # senior does the script's first step a little later.
            intake = Intake(new, at, Action.HAND_TO_SENIOR, note="priority customer")
            script[0] = dataclasses.replace(script[0], delay=_minutes(self.rng, 2, 30))
        else:
            first = script.popleft()
            assert first.action is not None
            intake = Intake(
                new,
                at,
                first.action,
                branch=str(first.params.get("branch", "")),
                note=str(first.params.get("note", "")),
            )
        return intake, junior, owner, script

    def _branch(self) -> dict[str, Any]:
        return {"branch": self.rng.choice(BRANCHES)}

    def _survey(self, delay: timedelta) -> Step:
        outcome: Satisfaction = self._surveys.deal()
        # A plain "dissatisfied" here stays closed; reopening is the "reopen" fate's script.
        return Step(Role.SURVEYOR, Action.SURVEY, delay, params={"outcome": outcome.value})

    def _script(self, kind: TicketKind, op: Role) -> deque[Step]:
        """The steps a ticket will go through, the first being done with the registration."""
        rng = self.rng

        def m(low: float, high: float) -> timedelta:
            return _minutes(rng, low, high)

        def h(low: float, high: float) -> timedelta:
            return _hours(rng, low, high)

        answer = Step(op, Action.ANSWER, timedelta(0), params={"note": "answered on the call"})
        if kind is not TicketKind.COMPLAINT:
            branch_share = {TicketKind.ENQUIRY: 0.15, TicketKind.HELP_REQUEST: 0.7}
            if rng.random() >= branch_share.get(kind, 0.25):
                return deque([answer])
            steps = [
                Step(op, Action.DISPATCH, timedelta(0), params=self._branch()),
                Step(op, Action.START, m(10, 120)),
                Step(op, Action.BRANCH_RETURN, h(1, 6), frac=rng.uniform(0.2, 0.8)),
                Step(op, Action.CLOSE, m(10, 90)),
            ]
            if kind is TicketKind.HELP_REQUEST and rng.random() < 0.3:
                steps.append(self._survey(h(2, 30)))
            return deque(steps)
        fate: str = self._fates.deal()
        self._count(f"fate:{fate}")
        if fate == "spot":
            steps = [answer]
            if rng.random() < SURVEY_SHARE:
                steps.append(self._survey(h(2, 30)))
            return deque(steps)
        dispatch = Step(op, Action.DISPATCH, timedelta(0), params=self._branch())
        start = Step(op, Action.START, m(10, 240))
        steps = [dispatch, start]
        mgr = Role.MANAGER_HOTLINE
        if fate == "chase_rework":
            steps += [
                Step(op, Action.CHASE, h(2, 8), params={"note": "客户来电催办"}),
                Step(op, Action.BRANCH_RETURN, h(1, 8), frac=rng.uniform(0.15, 0.3)),
                Step(op, Action.REWORK, m(20, 120), params={"note": "回单内容不完整，退回重办"}),
                Step(op, Action.BRANCH_RETURN, h(2, 10), frac=rng.uniform(0.35, 0.7)),
            ]
        elif fate == "overtime":
            steps += [
                Step(
                    op,
                    Action.CHASE,
                    h(1, 4),
                    frac=rng.uniform(0.8, 0.95),
                    params={"note": "临近时限催办"},
                ),
                Step(op, Action.BRANCH_RETURN, h(1, 12), frac=rng.uniform(1.05, 1.4)),
            ]
        elif fate == "extension":
            steps += [
                Step(
                    op,
                    Action.REQUEST_EXTENSION,
                    h(2, 12),
                    frac=0.5,
                    params={"days": rng.randint(2, 3), "reason": "需协调外部单位施工"},
                ),
                Step(Role.LEADER, Action.APPROVE_EXTENSION, h(1, 6)),
                # Measured against the extended deadline: late for the first one, in time now.
                Step(op, Action.BRANCH_RETURN, h(4, 20), frac=0.9),
            ]
        elif fate in ("manager", "province"):
            steps += [
                Step(op, Action.BRANCH_RETURN, h(2, 12), frac=rng.uniform(0.2, 0.5)),
                Step(op, Action.ESCALATE_MANAGER, m(10, 60), params={"note": "客户不接受处理结果"}),
            ]
            if fate == "province":
                steps.append(
                    Step(
                        mgr,
                        Action.ESCALATE_PROVINCE,
                        h(2, 20),
                        params={"note": "多次协调无果，客户要求省公司处理"},
                    )
                )
                return deque(steps)  # the province's resolution comes back as a notice
            if rng.random() < 0.5:
                steps.append(Step(mgr, Action.ANSWER, h(1, 8), params={"note": "经理致电客户解释"}))
            else:
                steps += [
                    Step(mgr, Action.DISPATCH, h(1, 4), params=self._branch()),
                    Step(mgr, Action.BRANCH_RETURN, h(2, 24)),
                    Step(mgr, Action.CLOSE, m(10, 60)),
                ]
            steps.append(self._survey(h(2, 30)))
            return deque(steps)
        else:  # branch, reopen
            steps.append(Step(op, Action.BRANCH_RETURN, h(1, 10), frac=rng.uniform(0.1, 0.45)))
        steps.append(Step(op, Action.CLOSE, m(10, 120)))
        if fate == "overtime" and rng.random() < 0.7:
            fen = rng.choice((1000, 2000, 3000, 5000))
            steps.append(
                Step(mgr, None, h(1, 20), params={"note": "超时限赔付"}, compensate_fen=fen)
            )
        if fate == "reopen":
            steps += [
                Step(
                    Role.SURVEYOR,
                    Action.SURVEY,
                    h(2, 24),
                    params={"outcome": Satisfaction.DISSATISFIED.value, "reopen": True},
                ),
                Step(op, Action.BRANCH_RETURN, h(4, 30)),
                Step(op, Action.CLOSE, m(10, 120)),
                Step(Role.SURVEYOR, Action.SURVEY, h(2, 24), params={"outcome": "satisfied"}),
            ]
        elif rng.random() < SURVEY_SHARE:
            steps.append(self._survey(h(2, 30)))
        return deque(steps)

    # -- doing a step ----------------------------------------------------------------------

    def next_time(
        self, live: LiveTicket, step: Step, after: datetime, speed: float = 1.0
    ) -> datetime:
        """When ``step`` happens, ``after`` the previous one (``speed`` compresses delays;
        the time-limit fraction only applies to simulated time, speed 1)."""
        at = after + step.delay / speed
        if step.frac is not None and speed == 1.0:
            t = live.ticket
            at = max(at, t.registered_at + (t.deadline - t.registered_at) * step.frac)
        return at

    def do(self, live: LiveTicket, step: Step, at: datetime) -> None:
        """Perform ``step`` at ``at`` through the city's services."""
        if step.role in (Role.OPERATOR_JUNIOR, Role.OPERATOR_SENIOR):
            who = Actor(live.operator, step.role)
        else:
            who = self.actor(step.role)
        if step.action is None:
            try:
                tickets.record_compensation(
                    self.ctx,
                    who,
                    live.ticket.id,
                    fen=step.compensate_fen,
                    note=str(step.params.get("note", "")),
                    at=at,
                )
            except CityError as exc:
                # Run faster than simulated time, an "overtime" ticket may close in time:
                # no compensation is due then.
                if exc.code != "compensation.not_overtime":
                    raise
                self._count("compensation_not_due")
                return
            self._count("compensation")
            return
        live.ticket = tickets.perform(self.ctx, who, live.ticket.id, step.command(), at=at)
        self._count(step.action.value)
        if step.action is Action.SURVEY:
            self._count(f"survey:{step.params['outcome']}")

    # -- back office: suggestions, QA, reports ---------------------------------------------

    def classify_and_send_suggestions(self, at: datetime, *, send: bool = True) -> None:
        """The materials clerk classifies new suggestions and sends them up as a batch."""
        clerk = self.actor(Role.MATERIALS_CLERK)
        for row in suggestions.unclassified(self.ctx, 200):
            label = self.rng.choice(SUGGESTION_LABELS)
            suggestions.classify(self.ctx, clerk, row.id, label, now=at)
            self._count("classified")
        if send and suggestions.send_batch(self.ctx, clerk, now=at) is not None:
            self._count("suggestion_batch")

    def qa_round(self, at: datetime, *, day: date | None = None, most: int = 50) -> None:
        """The QA inspector draws samples (the day's scheduled share, else a random spot
        check of two) and scores what is waiting; about one sample in five has a defect."""
        inspector = self.actor(Role.QA_INSPECTOR)
        if day is not None:
            qa.draw(self.ctx, day=day, inspector=inspector.id, seed=self._seed(), now=at)
        elif not qa.worklist(self.ctx, limit=1):
            qa.draw(
                self.ctx,
                count=2,
                how="random",
                inspector=inspector.id,
                seed=self._seed(),
                now=at,
            )
        for sample in qa.worklist(self.ctx, limit=most):
            defects = [] if self.rng.random() < 0.8 else [self.rng.choice(qa.DEFECT_KINDS)]
            items = {
                item.key: 100 if not defects else self.rng.choice((40, 60, 80, 100))
                for item in qa.SCORECARD
            }
            finding = (
                self.text("finding_ok")
                if not defects
                else self.text(
                    "finding_defect",
                    defect=DEFECT_NAMES[defects[0]][0 if self.lang == "zh" else 1],
                )
            )
            qa.score(
                self.ctx,
                inspector,
                sample.id,
                items=items,
                defects=defects,
                finding=finding,
                now=at,
            )
            self._count("qa_scored")

    def report_round(
        self, kinds: Sequence[tuple[ReportKind, PeriodKind, date]], at: datetime
    ) -> None:
        """The statistician drafts the reports for these periods; then, demo only, the
        simulated leader approves every pending draft so it reaches the province. In a real
        center a person reviews each draft in the console first."""
        stat = self.actor(Role.STATISTICIAN)
        for kind, period_kind, start in kinds:
            reports.draft(self.ctx, kind, period_kind, start, by=stat.id, now=at)  # demo
            self._count(f"report:{kind}")
        leader = self.actor(Role.LEADER)
        for report in reports.pending(self.ctx):
            if at - report.drafted_at < self.approve_after:
                continue  # left for a visitor to review first
            try:
                reports.approve(self.ctx, leader, report.id, note=self.text("approval"), now=at)
                self._count("report_approved")
            except CityError as exc:
                log.warning("simulator: report %s not approved: %s", report.id, exc)
                self._count("report_refused")

    def _seed(self) -> int:
        return self.rng.randrange(2**31)


# --- backfill ----------------------------------------------------------------------------------


def _registration_times(
    sim: Simulator, day: date, start: datetime, now: datetime
) -> list[datetime]:
    ctx = sim.ctx
    midnight = datetime.combine(day, time(0), tzinfo=ctx.zone)
    expected = sim.per_day * (1.0 if ctx.calendar.is_workday(day) else OFF_DAY_FACTOR)
    n = int(expected) + (1 if sim.rng.random() < expected % 1 else 0)
    times = []
    for _ in range(n):
        hour = sim.rng.choices(range(len(HOUR_WEIGHTS)), weights=HOUR_WEIGHTS)[0]
        seconds = (FIRST_HOUR + hour) * 3600 + sim.rng.randrange(3600)
        times.append(midnight + timedelta(seconds=seconds))
    return sorted(t for t in times if start <= t < now)


def backfill(
    ctx: CityContext,
    *,
    days: int,
    seed: int | str | None = 0,
    scale: float = 1.0,
    now: datetime | None = None,
    population: int | None = None,
    lang: str = "zh",
) -> dict[str, int]:
    """Write ``days`` days of history ending at ``now`` (default: the context's clock).

    Events are played in time order: registrations in batches (``register_many``), every
    later step with ``perform`` at its own time; steps that would fall after ``now`` are left
    undone, so recent tickets are open as they would be. Returns counts by kind, fate,
    action and survey outcome (``tickets``: how many were registered).
    """
    if days < 1:
        raise CityError("simulate.days", days=days)
    if not (isinstance(scale, int | float) and math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise CityError("simulate.scale", maximum=MAX_SCALE, scale=scale)
    moment = now or ctx.now()
    if moment.tzinfo is None:
        raise CityError("simulate.naive_now")
    # Checked before anything is written: the history's reports must fall in their years.
    problem = report_date_problem((moment - timedelta(days=days)).astimezone(ctx.zone).date())
    if problem:
        raise CityError("simulate.too_early", days=days, problem=problem)
    claim_demo_store(ctx)
    sim = Simulator(ctx, seed=seed, scale=scale, population=population, lang=lang)
    sim.ensure_staff()
    start = moment - timedelta(days=days)
    # The heap holds (time, order, payload); order keeps equal times in creation order so a
    # seed always replays the same way.
    heap: list[tuple[datetime, int, Any]] = []
    order = 0
    first_day = start.astimezone(ctx.zone).date()
    day = first_day
    while day <= moment.astimezone(ctx.zone).date():
        for at in _registration_times(sim, day, start, moment):
            heap.append((at, order, None))
            order += 1
        for clock, job in ((MORNING, "morning"), (EVENING, "evening")):
            at = datetime.combine(day, clock, tzinfo=ctx.zone)
            if start <= at <= moment and (job == "evening" or day > first_day):
                heap.append((at, order, (job, day)))
                order += 1
        day += timedelta(days=1)
    heapq.heapify(heap)
    batch: list[tuple[Intake, Actor, str, deque[Step]]] = []

    def flush() -> None:
        nonlocal order
        # One register_many per run of the same operator keeps ticket ids in time order.
        stored: list[Ticket] = []
        run_start = 0
        for index in range(1, len(batch) + 1):
            if index == len(batch) or batch[index][1] != batch[run_start][1]:
                run = [b[0] for b in batch[run_start:index]]
                stored += tickets.register_many(ctx, batch[run_start][1], run)
                run_start = index
        for (intake, _, owner, steps), ticket in zip(batch, stored, strict=True):
            live = LiveTicket(ticket, steps, owner)
            order += 1
            if steps:
                after = intake.at or moment
                heapq.heappush(heap, (sim.next_time(live, steps[0], after), order, live))
        batch.clear()

    while heap or batch:
        # Registrations are written in batches; a batch is flushed before anything else
        # happens and at most half an hour of intake at a time, so a step scheduled by the
        # flush is never far behind the clock of the replay (and never before its own
        # ticket's previous step, the order that matters).
        if batch and (
            not heap
            or heap[0][2] is not None
            or len(batch) >= 200
            or heap[0][0] - (batch[0][0].at or moment) > timedelta(minutes=30)
        ):
            flush()
            continue
        at, _, payload = heapq.heappop(heap)
        if at > moment:
            continue  # a step after "now": the ticket stays where it is
        if payload is None:
            batch.append(sim.new_ticket(at))
            continue
        if isinstance(payload, tuple):
            _day_job(sim, payload[0], payload[1], at)
            continue
        live: LiveTicket = payload
        step = live.steps.popleft()
        sim.do(live, step, at)
        if live.steps:
            order += 1
            heapq.heappush(heap, (sim.next_time(live, live.steps[0], at), order, live))
    sim.counts["tickets"] = sum(sim.counts.get(k.value, 0) for k in TicketKind)
    return dict(sorted(sim.counts.items()))


def _day_job(sim: Simulator, job: str, day: date, at: datetime) -> None:
    """The back office's day: in the morning yesterday's reports (and last week's on a
    Monday) and QA of yesterday's closures; in the evening the day's suggestion batch."""
    if job == "evening":
        sim.classify_and_send_suggestions(at)
        return
    yesterday = day - timedelta(days=1)
    sim.qa_round(at, day=yesterday)
    due = [(ReportKind.STATISTICS, PeriodKind.DAY, yesterday)]
    if day.weekday() == 0:
        week = day - timedelta(days=7)
        due += [
            (ReportKind.STATISTICS, PeriodKind.WEEK, week),
            (ReportKind.QA, PeriodKind.WEEK, week),
            (ReportKind.OVERTIME, PeriodKind.WEEK, week),
        ]
    sim.report_round(due, at)


__all__ = [
    "DEMO_PASSWORD",
    "MIN_PER_DAY",
    "Simulator",
    "backfill",
    "daily_volume",
    "population_of",
    "staff_plan",
]
