"""Report correctness: for random ticket histories, every figure of every period's report
(built by SQL) equals an independent count over the tickets in Python.

The tickets are worked through the real services on a real store (SQLite, and PostgreSQL
where available); the expected figures are counted from the domain tickets those services
return, with the KPI definitions of mission.md written out again here — not by calling the
report code.
"""

from __future__ import annotations

from collections import Counter, defaultdict
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
from city_node.store import Escalation, HistoryRow, TicketRow, create_schema
from sync.db import make_engine, write_connection

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 0, 0, tzinfo=ZONE)  # a Monday
LATER = datetime(2026, 6, 1, tzinfo=ZONE)  # every period below has ended by then
OPS = [Actor("op-j1", Role.OPERATOR_JUNIOR), Actor("op-j2", Role.OPERATOR_JUNIOR)]
SENIOR = Actor("op-s1", Role.OPERATOR_SENIOR)
MANAGER = Actor("mgr-1", Role.MANAGER_HOTLINE)
SURVEYOR = Actor("sv-1", Role.SURVEYOR)
OPEN = {
    Status.REGISTERED,
    Status.DISPATCHED,
    Status.WITH_SENIOR,
    Status.IN_PROGRESS,
    Status.RETURNED,
    Status.ESCALATED_MANAGER,
    Status.ESCALATED_PROVINCE,
}

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
            "path": st.sampled_from(["answer", "close", "open", "escalate", "reopen"]),
            "hours": st.integers(1, 24 * 12),  # time to close: in or past the limit
            "survey": st.sampled_from(
                [None, "very_satisfied", "satisfied", "neutral", "dissatisfied", "unreachable"]
            ),
        }
    ),
    min_size=1,
    max_size=25,
)


@pytest.fixture
def store(databases: Any) -> Any:
    engine = make_engine(databases("figures"))
    create_schema(engine)
    open_store(engine, "620100")
    yield make_context(engine, "620100", tz_name="Asia/Shanghai")
    engine.dispose()


def _work(ctx: Any, specs: list[dict[str, Any]]) -> list[Any]:
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
        t = tickets.register(ctx, junior, new, at=at, then=first)
        worker = SENIOR if s["tier"] == "vip" else junior
        done = at + timedelta(hours=s["hours"])
        path = s["path"]
        if path == "answer":
            t = tickets.act(ctx, worker, t.id, "answer", at=done)
        elif path in ("close", "reopen"):
            tickets.act(ctx, worker, t.id, "dispatch", branch="B", at=at + timedelta(minutes=5))
            tickets.act(ctx, worker, t.id, "branch_return", at=done)
            t = tickets.act(ctx, worker, t.id, "close", at=done + timedelta(minutes=1))
        elif path == "escalate":
            tickets.act(
                ctx, worker, t.id, "escalate_manager", note="r", at=at + timedelta(minutes=3)
            )
            t = tickets.act(ctx, MANAGER, t.id, "escalate_province", note="r", at=done)
        else:  # open: dispatched and never returned
            t = tickets.act(ctx, worker, t.id, "dispatch", branch="B", at=at + timedelta(minutes=5))
        if s["survey"] and t.status in (Status.ANSWERED, Status.CLOSED):
            reopen = path == "reopen" and s["survey"] == "dissatisfied"
            survey_at = t.closed_at + timedelta(hours=2)
            t = tickets.act(
                ctx, SURVEYOR, t.id, "survey", outcome=s["survey"], reopen=reopen, at=survey_at
            )
            if reopen:
                tickets.act(ctx, worker, t.id, "branch_return", at=survey_at + timedelta(days=1))
                tickets.act(ctx, worker, t.id, "close", at=survey_at + timedelta(days=1, hours=1))
        out.append(tickets.get(ctx, t.id))
    return out


def _expected(worked: list[Any], start: date, end: date, as_of: datetime) -> dict[str, Any]:
    lo = datetime.combine(start, time(0), tzinfo=ZONE)
    hi = datetime.combine(end, time(0), tzinfo=ZONE)

    def within(moment: datetime | None) -> bool:
        return moment is not None and lo <= moment < hi

    received = [(t, x) for t, x in worked if within(t.registered_at)]
    closed = [t for t, _ in worked if within(t.closed_at)]
    kinds = Counter(t.kind.value for t, _ in received)
    surveys = Counter(t.satisfaction.value for t, _ in worked if within(t.surveyed_at))
    handled = {
        t.id
        for t, _ in worked
        for h in t.history
        if within(h.at)
        and h.role in (Role.OPERATOR_JUNIOR, Role.OPERATOR_SENIOR, Role.MANAGER_HOTLINE)
    }
    overtime_open = sum(
        1
        for t, _ in worked
        if t.registered_at < as_of
        and t.deadline < as_of
        and (t.closed_at is None or t.closed_at >= as_of)
    )
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    for t, x in received:
        field = {"complaint": "complaints", "suggestion": "suggestions", "enquiry": "enquiries"}
        if t.kind.value in field:
            by_category[t.category][field[t.kind.value]] += 1
            if t.kind.value == "complaint" and x["is_repeat"]:
                by_category[t.category]["repeat_complaints"] += 1
    for t in closed:
        by_category[t.category]["closed"] += 1
        if t.closed_at <= t.deadline:
            by_category[t.category]["closed_in_time"] += 1
    workload: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _t, x in received:
        workload[x["registered_by"]][0] += 1
    for t, x in worked:
        if within(t.closed_at):
            workload[x["closed_by"]][1] += 1
    answered = sum(surveys[k] for k in ("very_satisfied", "satisfied", "neutral", "dissatisfied"))
    return {
        "complaints_received": kinds["complaint"],
        "suggestions_received": kinds["suggestion"],
        "enquiries_received": kinds["enquiry"],
        "repeat_complaints": sum(
            1 for t, x in received if t.kind.value == "complaint" and x["is_repeat"]
        ),
        "closed": len(closed),
        "closed_in_time": sum(1 for t in closed if t.closed_at <= t.deadline),
        "complaints_closed": sum(1 for t in closed if t.kind.value == "complaint"),
        "handled": len(handled),
        "overtime_open": overtime_open,
        "escalations_raised": sum(1 for _t, x in worked if within(x["escalated_at"])),
        "satisfaction": {
            **{
                k: surveys[k]
                for k in ("very_satisfied", "satisfied", "neutral", "dissatisfied", "unreachable")
            },
            "surveyed": answered,
        },
        "by_category": {
            k: {f: n for f, n in v.items() if n} for k, v in by_category.items() if any(v.values())
        },
        "operators": {k: tuple(v) for k, v in workload.items()},
    }


def _actual(r: Any) -> dict[str, Any]:
    s = r.satisfaction
    return {
        "complaints_received": r.complaints_received,
        "suggestions_received": r.suggestions_received,
        "enquiries_received": r.enquiries_received,
        "repeat_complaints": r.repeat_complaints,
        "closed": r.closed,
        "closed_in_time": r.closed_in_time,
        "complaints_closed": r.complaints_closed,
        "handled": r.handled,
        "overtime_open": r.overtime_open,
        "escalations_raised": r.escalations_raised,
        "satisfaction": {
            "very_satisfied": s.very_satisfied,
            "satisfied": s.satisfied,
            "neutral": s.neutral,
            "dissatisfied": s.dissatisfied,
            "unreachable": s.unreachable,
            "surveyed": s.surveyed,
        },
        "by_category": {
            c.key: {
                f: n
                for f, n in (
                    ("complaints", c.complaints),
                    ("suggestions", c.suggestions),
                    ("enquiries", c.enquiries),
                    ("closed", c.closed),
                    ("closed_in_time", c.closed_in_time),
                    ("repeat_complaints", c.repeat_complaints),
                )
                if n
            }
            for c in r.by_category
        },
        "operators": {o.operator_id: (o.registered, o.closed) for o in r.operators},
    }


PERIODS = [("day", date(2026, 3, d)) for d in (2, 5, 9, 13, 20)] + [
    ("week", date(2026, 3, 2)),
    ("week", date(2026, 3, 9)),
    ("week", date(2026, 3, 16)),
    ("month", date(2026, 3, 1)),
    ("month", date(2026, 4, 1)),
    ("quarter", date(2026, 1, 1)),
    ("year", date(2026, 1, 1)),
]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=ticket_specs)
def test_every_figure_equals_a_direct_count(store: Any, specs: list[dict[str, Any]]) -> None:
    with write_connection(store.engine) as conn, conn.begin():  # a clean store for each example
        conn.execute(delete(HistoryRow))
        conn.execute(delete(Escalation))
        conn.execute(delete(TicketRow))
    worked = _work(store, specs)
    for kind, start in PERIODS:
        p = reports.period(store, kind, start)
        report = reports.build_statistics(store, kind, start, now=LATER)
        as_of = min(p.end_at, LATER)
        expected = _expected(worked, p.start, p.end, as_of)
        assert _actual(report) == expected, f"{kind} {start}"
    # and a report still running: "as of" is now, not the period's end
    mid = START + timedelta(days=10)
    report = reports.build_statistics(store, "month", date(2026, 3, 1), now=mid)
    assert (
        report.overtime_open
        == _expected(worked, date(2026, 3, 1), date(2026, 4, 1), mid.astimezone(UTC))[
            "overtime_open"
        ]
    )
