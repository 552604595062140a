"""One definition of each rule: the SQL the store and the reports run agrees with the rule
written once in :mod:`city_node.rules`, over random tickets, on SQLite and PostgreSQL.

- repeat complaint: the flag the register path sets in SQL (``ticket_store.find_repeats``)
  equals ``rules.is_repeat`` against every earlier ticket;
- survey tally: a day report's satisfaction counts (SQL over the survey steps) equal
  ``rules.tally_surveys`` over the tickets surveyed that day (each surveyed once here);
- in time: a day report's ``closed_in_time`` (SQL over the closure steps) equals the
  tickets closed that day for which ``rules.closed_in_time`` holds (each closed once).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from city_node import reports, rules, tickets
from city_node.context import Actor, make_context
from city_node.domain import Action, Role, Satisfaction, Ticket
from city_node.services import open_store
from city_node.store import Escalation, HistoryRow, Report, TicketRow, create_schema
from city_node.tickets import Intake, NewTicket
from sync.db import make_engine, write_connection
from tests import ticket_steps

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 8, 0, tzinfo=ZONE)  # a Monday
LATER = datetime(2026, 6, 1, tzinfo=ZONE)
OPERATOR = Actor("op-s1", Role.OPERATOR_SENIOR)
SURVEYOR = Actor("sv-1", Role.SURVEYOR)
EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def store(databases: Any) -> Any:
    engine = make_engine(databases("parity"))
    create_schema(engine)
    open_store(engine, "620100")
    yield make_context(engine, "620100", tz_name="Asia/Shanghai")
    engine.dispose()


def _clean(ctx: Any) -> None:
    with write_connection(ctx.engine) as conn, conn.begin():
        conn.execute(delete(HistoryRow))
        conn.execute(delete(Escalation))
        conn.execute(delete(Report))
        conn.execute(delete(TicketRow))


def _new(kind: str, phone: str, category: str) -> NewTicket:
    return NewTicket(
        kind=kind,
        category=category,
        channel="phone",
        customer_phone=phone,
        customer_name="",
        tier="ordinary",
        content="断网",
    )


intakes = st.lists(
    st.tuples(
        st.integers(0, 70 * 24 * 60),  # minutes after START: some inside, some past 30 days
        st.sampled_from(["complaint", "complaint", "complaint", "enquiry"]),
        st.sampled_from(["13800000001", "13800000002", "13800000003"]),
        st.sampled_from(["NET.BROADBAND", "BILL.VAS"]),
        st.booleans(),  # registered in one batch with its neighbours, or alone
    ),
    min_size=1,
    max_size=14,
)


@EXAMPLES
@given(specs=intakes)
def test_the_repeat_flag_is_the_rule(store: Any, specs: list[Any]) -> None:
    _clean(store)
    specs = sorted(specs, key=lambda s: s[0])
    registered: list[Ticket] = []
    batch: list[Intake] = []

    def flush() -> None:
        registered.extend(tickets.register_many(store, OPERATOR, batch))
        batch.clear()

    for minute, kind, phone, category, batched in specs:
        intake = Intake(_new(kind, phone, category), at=START + timedelta(minutes=minute))
        batch.append(intake)
        if not batched:
            flush()
    flush()
    for i, ticket in enumerate(registered):
        expected = rules.is_repeat(ticket, registered[:i], store.repeat_window_days)
        assert tickets.stored(store, ticket.id).is_repeat is expected, (i, specs)


closures = st.lists(
    st.tuples(
        st.integers(0, 3 * 24 * 60),  # minutes after registration: in time or late
        st.sampled_from([s.value for s in Satisfaction] + [None]),  # None: never surveyed
    ),
    min_size=1,
    max_size=10,
)


@EXAMPLES
@given(specs=closures)
def test_the_survey_tally_and_in_time_are_the_rules(store: Any, specs: list[Any]) -> None:
    _clean(store)
    worked: list[Ticket] = []
    for n, (after, outcome) in enumerate(specs):
        at = START + timedelta(minutes=n)
        new = _new("enquiry", f"1390000{n:04d}", "NET.BROADBAND")  # an enquiry: one day
        ticket = tickets.register(store, OPERATOR, new, at=at)
        closed_at = START + timedelta(minutes=len(specs) + after)
        ticket = ticket_steps.act(store, OPERATOR, ticket.id, Action.ANSWER, at=closed_at)
        if outcome is not None:
            survey_at = max(closed_at, START) + timedelta(days=5)
            ticket = ticket_steps.act(
                store, SURVEYOR, ticket.id, Action.SURVEY, at=survey_at, outcome=outcome
            )
        worked.append(tickets.get(store, ticket.id))
    days = sorted({t.closed_at.astimezone(ZONE).date() for t in worked if t.closed_at})
    for day in days:
        report = reports.build_statistics(store, "day", day, now=LATER)
        closed_that_day = [t for t in worked if _local_day(t.closed_at) == day]
        in_time = sum(1 for t in closed_that_day if rules.closed_in_time(t))
        assert report.closed_in_time == in_time, day
    survey_days = sorted({t.surveyed_at.astimezone(ZONE).date() for t in worked if t.surveyed_at})
    for day in survey_days:
        report = reports.build_statistics(store, "day", day, now=LATER)
        tally = rules.tally_surveys(t for t in worked if _local_day(t.surveyed_at) == day)
        got = report.satisfaction
        assert got.surveyed == tally.surveyed, day
        assert got.unreachable == tally.unreachable, day
        for outcome in ("very_satisfied", "satisfied", "neutral", "dissatisfied"):
            assert getattr(got, outcome) == tally.counts[Satisfaction(outcome)], (day, outcome)


def _local_day(moment: datetime | None) -> date | None:
    return moment.astimezone(ZONE).date() if moment is not None else None
