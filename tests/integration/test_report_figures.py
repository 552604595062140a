"""Report correctness: for random ticket histories, every figure of every period's report
(built by SQL) equals an independent count over the history of events, and the figures
that count events add up (a week is the sum of its days, a month of its days).

The tickets are worked through the real services on a real store (SQLite, and PostgreSQL
where available): dissatisfied surveys that reopen the ticket, re-closures and re-surveys,
closures and reopenings on either side of period boundaries, deadline extensions (also
after a reopening), escalations to the province with or without its resolution. The test
writes its own log of every step it takes — when, who, what, the survey's outcome, the
deadline before and after, open or closed after — and the expected figures are counted
from that log with the KPI definitions of the README written out again here, not by
calling the report code nor reading its columns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from city_node import reports, tickets
from city_node.context import Actor, make_context
from city_node.domain import Action, Role, Status
from city_node.services import open_store
from city_node.store import Escalation, HistoryRow, Report, TicketRow, create_schema
from sync.db import make_engine, write_connection
from tests import ticket_steps

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 0, 0, tzinfo=ZONE)  # a Monday
LATER = datetime(2026, 7, 1, tzinfo=ZONE)  # every period below has ended by then
OPS = [Actor("op-j1", Role.OPERATOR_JUNIOR), Actor("op-j2", Role.OPERATOR_JUNIOR)]
SENIOR = Actor("op-s1", Role.OPERATOR_SENIOR)
MANAGER = Actor("mgr-1", Role.MANAGER_HOTLINE)
SURVEYOR = Actor("sv-1", Role.SURVEYOR)
LEADER = Actor("leader-1", Role.LEADER)
PROVINCE = Actor("province-gm", Role.PROVINCE)
OPERATOR_ROLES = {Role.OPERATOR_JUNIOR, Role.OPERATOR_SENIOR, Role.MANAGER_HOTLINE}
OPEN = {
    Status.REGISTERED,
    Status.DISPATCHED,
    Status.WITH_SENIOR,
    Status.IN_PROGRESS,
    Status.RETURNED,
    Status.ESCALATED_MANAGER,
    Status.ESCALATED_PROVINCE,
}
OUTCOMES = ("very_satisfied", "satisfied", "neutral", "dissatisfied", "unreachable")

ticket_specs = st.lists(
    st.fixed_dictionaries(
        {
            "minute": st.integers(0, 20 * 24 * 60),  # registered within 20 days of START
            "kind": st.sampled_from(["complaint", "complaint", "suggestion", "enquiry", "praise"]),
            "category": st.sampled_from(["BILL", "NET.BROADBAND", "NET.SIGNAL"]),
            "channel": st.sampled_from(["phone", "web", "walk_in"]),
            "phone": st.sampled_from(["13800000001", "13800000002", "13800000003"]),
            "tier": st.sampled_from(["ordinary", "ordinary", "ordinary", "vip"]),
            "op": st.integers(0, 1),
            "path": st.sampled_from(["answer", "close", "close", "open", "escalate", "resolved"]),
            "hours": st.integers(1, 24 * 12),  # time to close: in or past the limit
            # Deadline extension: none, while first worked, or after the first reopening.
            "extend": st.sampled_from([None, None, "first", "reopened"]),
            "extend_days": st.integers(1, 4),
            # Dissatisfied surveys that reopen: (hours after the closure, hours to close it
            # again; 0 leaves it open).
            "reopens": st.lists(st.tuples(st.integers(1, 60), st.integers(0, 80)), max_size=3),
            "survey": st.sampled_from([None, *OUTCOMES]),
            "survey_hours": st.integers(1, 40),
        }
    ),
    min_size=1,
    max_size=20,
)


@dataclass(frozen=True)
class Step:
    """One step as the test took it (the test's own log, not the store's)."""

    at: datetime
    action: str
    actor: str
    role: Role
    outcome: str | None
    deadline_before: datetime
    deadline_after: datetime
    open_after: bool


@dataclass
class Worked:
    id: int
    kind: str
    category: str
    channel: str
    is_repeat: bool
    registered_at: datetime
    registered_by: str
    steps: list[Step]


@pytest.fixture
def store(databases: Any) -> Any:
    engine = make_engine(databases("figures"))
    create_schema(engine)
    open_store(engine, "620100")
    yield make_context(engine, "620100", tz_name="Asia/Shanghai")
    engine.dispose()


def _clean(ctx: Any) -> None:
    with write_connection(ctx.engine) as conn, conn.begin():  # a clean store per example
        conn.execute(delete(HistoryRow))
        conn.execute(delete(Escalation))
        conn.execute(delete(Report))
        conn.execute(delete(TicketRow))


class _Log:
    """Works one ticket through the services, logging each step with what it found."""

    def __init__(self, ctx: Any, ticket: Any) -> None:
        self.ctx = ctx
        self.ticket = ticket
        self.steps = [
            Step(
                h.at, h.action.value, h.actor, h.role, None, ticket.deadline, ticket.deadline, True
            )
            for h in ticket.history
        ]
        self.steps[-1] = Step(
            self.steps[-1].at,
            self.steps[-1].action,
            self.steps[-1].actor,
            self.steps[-1].role,
            None,
            ticket.deadline,
            ticket.deadline,
            ticket.status in OPEN,
        )
        self.last = ticket.history[-1].at

    def act(self, who: Actor, action: str, after: timedelta, **params: Any) -> None:
        at = self.last + after
        before = self.ticket
        t = ticket_steps.act(self.ctx, who, before.id, action, at=at, **params)
        outcome = params.get("outcome") if action == "survey" else None
        self.steps.append(
            Step(
                at, action, who.id, who.role, outcome, before.deadline, t.deadline, t.status in OPEN
            )
        )
        self.ticket, self.last = t, at

    @property
    def closed(self) -> bool:
        return self.ticket.status in (Status.ANSWERED, Status.CLOSED)


def _extend(log: _Log, worker: Actor, days: int) -> None:
    log.act(worker, "request_extension", timedelta(minutes=5), days=days, reason="works")
    log.act(LEADER, "approve_extension", timedelta(minutes=30))


def _work(ctx: Any, specs: list[dict[str, Any]]) -> list[Worked]:
    """Register in time order (repeats depend on it), then work each ticket along its path."""
    specs = sorted(specs, key=lambda s: s["minute"])
    out = []
    for s in specs:
        at = START + timedelta(minutes=s["minute"])
        junior = OPS[s["op"]]
        new = tickets.NewTicket(
            s["kind"], s["category"], s["channel"], s["phone"], "n", s["tier"], "content"
        )
        first = Action.HAND_TO_SENIOR if s["tier"] == "vip" else None
        log = _Log(ctx, tickets.register(ctx, junior, new, at=at, then=first))
        worker = SENIOR if s["tier"] == "vip" else junior
        done = timedelta(hours=s["hours"])
        path = s["path"]
        if path == "answer":
            log.act(worker, "answer", done)
        elif path == "close":
            log.act(worker, "dispatch", timedelta(minutes=5), branch="B")
            if s["extend"] == "first":
                _extend(log, worker, s["extend_days"])
            log.act(worker, "branch_return", done)
            log.act(worker, "close", timedelta(minutes=1))
        elif path in ("escalate", "resolved"):
            log.act(worker, "escalate_manager", timedelta(minutes=3), note="r")
            log.act(MANAGER, "escalate_province", done, note="r")
            if path == "resolved":
                log.act(PROVINCE, "province_resolved", timedelta(hours=20), note="done")
                log.act(MANAGER, "close", timedelta(hours=1))
        else:  # open: dispatched and never returned
            log.act(worker, "dispatch", timedelta(minutes=5), branch="B")
        for n, (survey_hours, reclose_hours) in enumerate(s["reopens"]):
            if not log.closed:
                break
            reopen = {"outcome": "dissatisfied", "reopen": True}
            log.act(SURVEYOR, "survey", timedelta(hours=survey_hours), **reopen)
            if n == 0 and s["extend"] == "reopened":
                _extend(log, worker, s["extend_days"])
            if reclose_hours == 0:
                break
            log.act(worker, "branch_return", timedelta(hours=reclose_hours))
            log.act(worker, "close", timedelta(minutes=30))
        if s["survey"] and log.closed:
            log.act(SURVEYOR, "survey", timedelta(hours=s["survey_hours"]), outcome=s["survey"])
        record = tickets.stored(ctx, log.ticket.id)
        t = record.ticket
        # The store holds the same steps the test logged, in order.
        assert [h.action.value for h in t.history] == [x.action for x in log.steps]
        out.append(
            Worked(
                t.id,
                t.kind.value,
                t.category,
                t.channel.value,
                record.is_repeat,
                t.registered_at,
                record.registered_by,
                log.steps,
            )
        )
    return out


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time(0), tzinfo=ZONE), datetime.combine(
        end, time(0), tzinfo=ZONE
    )


def _overdue_open(w: Worked, as_of: datetime) -> bool:
    """Open at ``as_of`` and past the deadline in force then: replay the steps before it."""
    state: tuple[bool, datetime] | None = None
    for step in w.steps:
        if step.at >= as_of:
            break
        state = (step.open_after, step.deadline_after)
    return state is not None and state[0] and state[1] < as_of


def _expected(worked: list[Worked], start: date, end: date, as_of: datetime) -> dict[str, Any]:
    lo, hi = _bounds(start, end)

    def within(moment: datetime) -> bool:
        return lo <= moment < hi

    field = {"complaint": "complaints", "suggestion": "suggestions", "enquiry": "enquiries"}
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    by_channel: dict[str, Counter[str]] = defaultdict(Counter)
    workload: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    figures: Counter[str] = Counter()
    surveys: Counter[str] = Counter()
    handled = set()
    for w in worked:
        slices = (by_category[w.category], by_channel[w.channel])
        if within(w.registered_at):
            workload[w.registered_by][0] += 1
            if w.kind in field:
                figures[f"{field[w.kind]}_received"] += 1
                for sl in slices:
                    sl[field[w.kind]] += 1
                if w.kind == "complaint" and w.is_repeat:
                    figures["repeat_complaints"] += 1
                    for sl in slices:
                        sl["repeat_complaints"] += 1
        for step in w.steps:
            if not within(step.at):
                continue
            if step.role in OPERATOR_ROLES:
                handled.add(w.id)
            if step.action in ("answer", "close"):
                in_time = step.at <= step.deadline_before
                figures["closed"] += 1
                figures["closed_in_time"] += in_time
                figures["complaints_closed"] += w.kind == "complaint"
                workload[step.actor][1] += 1
                for sl in slices:
                    sl["closed"] += 1
                    sl["closed_in_time"] += in_time
            elif step.action == "escalate_province":
                figures["escalations_raised"] += 1
            elif step.action == "survey":
                assert step.outcome is not None
                surveys[step.outcome] += 1
                if w.kind == "complaint" and step.outcome != "unreachable":
                    surveys["complaints_surveyed"] += 1
    answered = sum(surveys[k] for k in OUTCOMES if k != "unreachable")

    def nonzero(groups: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
        return {k: {f: n for f, n in v.items() if n} for k, v in groups.items() if any(v.values())}

    return {
        **{
            k: figures[k]
            for k in (
                "complaints_received",
                "suggestions_received",
                "enquiries_received",
                "repeat_complaints",
                "closed",
                "closed_in_time",
                "complaints_closed",
                "escalations_raised",
            )
        },
        "handled": len(handled),
        "overtime_open": sum(1 for w in worked if _overdue_open(w, as_of)),
        "satisfaction": {
            **{k: surveys[k] for k in OUTCOMES},
            "surveyed": answered,
            "complaints_surveyed": surveys["complaints_surveyed"],
        },
        "by_category": nonzero(by_category),
        "by_channel": nonzero(by_channel),
        "operators": {k: tuple(v) for k, v in workload.items()},
    }


SLICE_FIELDS = (
    "complaints",
    "suggestions",
    "enquiries",
    "closed",
    "closed_in_time",
    "repeat_complaints",
)


def _actual(r: Any) -> dict[str, Any]:
    s = r.satisfaction

    def slices(items: Any) -> dict[str, dict[str, int]]:
        return {c.key: {f: getattr(c, f) for f in SLICE_FIELDS if getattr(c, f)} for c in items}

    return {
        "complaints_received": r.complaints_received,
        "suggestions_received": r.suggestions_received,
        "enquiries_received": r.enquiries_received,
        "repeat_complaints": r.repeat_complaints,
        "closed": r.closed,
        "closed_in_time": r.closed_in_time,
        "complaints_closed": r.complaints_closed,
        "escalations_raised": r.escalations_raised,
        "handled": r.handled,
        "overtime_open": r.overtime_open,
        "satisfaction": {k: getattr(s, k) for k in (*OUTCOMES, "surveyed", "complaints_surveyed")},
        "by_category": slices(r.by_category),
        "by_channel": slices(r.by_channel),
        "operators": {o.operator_id: (o.registered, o.closed) for o in r.operators},
    }


#: Every day from the first registration until a month later (closures, surveys and
#: reopenings fall on either side of each boundary), every week and the longer periods.
PERIODS = (
    [("day", date(2026, 3, 1) + timedelta(days=i)) for i in range(45)]
    + [("week", date(2026, 3, 2) + timedelta(weeks=i)) for i in range(6)]
    + [
        ("month", date(2026, 3, 1)),
        ("month", date(2026, 4, 1)),
        ("quarter", date(2026, 1, 1)),
        ("quarter", date(2026, 4, 1)),
        ("year", date(2026, 1, 1)),
    ]
)

EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@EXAMPLES
@given(specs=ticket_specs)
def test_every_figure_equals_a_count_over_the_history(
    store: Any, specs: list[dict[str, Any]]
) -> None:
    _clean(store)
    worked = _work(store, specs)
    for kind, start in PERIODS:
        p = reports.period(store, kind, start)
        report = reports.build_statistics(store, kind, start, now=LATER)
        expected = _expected(worked, p.start, p.end, min(p.end_at, LATER))
        assert _actual(report) == expected, f"{kind} {start}"
    # Reports still running: "as of" is now, not the period's end.
    for days in (3, 10, 17, 25):
        mid = START + timedelta(days=days, hours=5)
        report = reports.build_statistics(store, "month", date(2026, 3, 1), now=mid)
        expected = _expected(worked, date(2026, 3, 1), date(2026, 4, 1), mid.astimezone(UTC))
        assert report.overtime_open == expected["overtime_open"], f"as of {mid}"


#: Figures that count events, so a period's equals the sum of its parts' (handled counts
#: distinct tickets and overtime open is a state: neither adds up).
ADDITIVE = (
    "complaints_received",
    "suggestions_received",
    "enquiries_received",
    "repeat_complaints",
    "closed",
    "closed_in_time",
    "complaints_closed",
    "escalations_raised",
)


def _additive(r: Any) -> Counter[str]:
    out: Counter[str] = Counter({k: getattr(r, k) for k in ADDITIVE})
    for k in (*OUTCOMES, "surveyed", "complaints_surveyed"):
        out[f"satisfaction.{k}"] = getattr(r.satisfaction, k)
    for name, items in (("category", r.by_category), ("channel", r.by_channel)):
        for c in items:
            for f in SLICE_FIELDS:
                out[f"{name}.{c.key}.{f}"] = getattr(c, f)
    for o in r.operators:
        out[f"operator.{o.operator_id}.registered"] = o.registered
        out[f"operator.{o.operator_id}.closed"] = o.closed
    return +out  # zero entries dropped: absent and 0 are the same figure


@EXAMPLES
@given(specs=ticket_specs)
def test_a_week_and_a_month_are_the_sums_of_their_days(
    store: Any, specs: list[dict[str, Any]]
) -> None:
    _clean(store)
    _work(store, specs)
    days = {}
    for offset in range(31):
        day = date(2026, 3, 1) + timedelta(days=offset)
        days[day] = _additive(reports.build_statistics(store, "day", day, now=LATER))
    for monday in (date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16), date(2026, 3, 23)):
        week = _additive(reports.build_statistics(store, "week", monday, now=LATER))
        summed = sum((days[monday + timedelta(days=i)] for i in range(7)), Counter[str]())
        assert week == summed, f"week of {monday}"
    month = _additive(reports.build_statistics(store, "month", date(2026, 3, 1), now=LATER))
    assert month == sum(days.values(), Counter[str]()), "March"


def test_a_reopened_ticket_keeps_each_survey_and_closure_in_its_own_day(store: Any) -> None:
    """The issue's ticket 158: closed, surveyed dissatisfied (reopened), closed again and
    surveyed satisfied, one step a day. Every day's report says what happened that day,
    and re-drafting a day later (or months later) gives the same figures."""
    op = OPS[0]
    day = datetime(2026, 11, 16, tzinfo=ZONE)
    new = tickets.NewTicket("complaint", "BILL", "phone", "13800000009", "n", "ordinary", "c")
    ctx = store
    t = tickets.register(
        ctx, op, new, at=day + timedelta(hours=9), then=Action.DISPATCH, branch="B"
    )
    ticket_steps.act(ctx, op, t.id, "branch_return", at=day + timedelta(hours=20))
    ticket_steps.act(ctx, op, t.id, "close", at=day + timedelta(hours=20, minutes=27))

    def figures(d: int, now: datetime) -> tuple[int, int, int, int]:
        r = reports.build_statistics(ctx, "day", date(2026, 11, d), now=now)
        return r.closed, r.satisfaction.dissatisfied, r.satisfaction.satisfied, r.overtime_open

    day16_before = figures(16, day + timedelta(days=1, hours=8))
    assert day16_before == (1, 0, 0, 0)
    ticket_steps.act(
        ctx,
        SURVEYOR,
        t.id,
        "survey",
        outcome="dissatisfied",
        reopen=True,
        at=day + timedelta(days=1, hours=8, minutes=49),
    )
    ticket_steps.act(ctx, op, t.id, "branch_return", at=day + timedelta(days=1, hours=16))
    ticket_steps.act(ctx, op, t.id, "close", at=day + timedelta(days=1, hours=16, minutes=23))
    ticket_steps.act(
        ctx, SURVEYOR, t.id, "survey", outcome="satisfied", at=day + timedelta(days=2, minutes=7)
    )
    drafted = reports.draft(
        ctx, "statistics", "day", "2026-11-17", by="stat-1", now=day + timedelta(days=2, hours=9)
    )
    assert drafted.figures["satisfaction"]["dissatisfied"] == 1
    assert drafted.figures["satisfaction"]["surveyed"] == 1
    assert drafted.figures["closed"] == 1
    for now in (day + timedelta(days=2, hours=9), datetime(2027, 3, 1, tzinfo=ZONE)):
        assert figures(16, now) == day16_before  # the reopening did not undo the closure
        assert figures(17, now) == (1, 1, 0, 0)
        assert figures(18, now) == (0, 0, 1, 0)
    week = reports.build_statistics(ctx, "week", date(2026, 11, 16), now=LATER.replace(year=2027))
    assert (week.closed, week.satisfaction.dissatisfied, week.satisfaction.surveyed) == (2, 1, 2)


def test_overtime_open_is_judged_by_the_deadline_in_force_then(store: Any) -> None:
    """Overdue at a day's end, extended the next day: that day still counts it; a ticket
    answered at once and reopened days later is not counted back, only from then on."""
    ctx, op = store, OPS[0]
    monday = datetime(2026, 10, 5, 9, 0, tzinfo=ZONE)  # NET.BROADBAND: due Wednesday 09:00
    new = tickets.NewTicket(
        "complaint", "NET.BROADBAND", "phone", "13800000007", "n", "ordinary", "c"
    )
    late = tickets.register(ctx, op, new, at=monday, then=Action.DISPATCH, branch="B")
    closed = tickets.register(ctx, op, new, at=monday, then=Action.ANSWER)
    thursday = date(2026, 10, 8)

    def overtime(d: date, now: datetime) -> int:
        return reports.build_statistics(ctx, "day", d, now=now).overtime_open

    assert overtime(thursday, monday + timedelta(days=10)) == 1
    ticket_steps.act(
        ctx, op, late.id, "request_extension", days=5, reason="r", at=monday + timedelta(days=4)
    )
    ticket_steps.act(
        ctx, LEADER, late.id, "approve_extension", at=monday + timedelta(days=4, hours=1)
    )
    ticket_steps.act(
        ctx,
        SURVEYOR,
        closed.id,
        "survey",
        outcome="dissatisfied",
        reopen=True,
        at=monday + timedelta(days=4, hours=2),
    )
    later = monday + timedelta(days=30)
    assert overtime(thursday, later) == 1  # the extension came after Thursday
    # Friday's end: the extended one is in time again; the reopened one is open and late.
    assert overtime(date(2026, 10, 9), later) == 1
    cases = reports.build_overtime(ctx, "day", thursday, now=later).cases
    assert [c.ticket_id for c in cases] == [str(late.id)]  # the wire's text
    assert cases[0].limit_hours == 48 and cases[0].overdue_hours == 39  # Wed 09:00 → Fri 00:00
    cases = reports.build_overtime(ctx, "day", date(2026, 10, 9), now=later).cases
    assert [c.ticket_id for c in cases] == [str(closed.id)]
