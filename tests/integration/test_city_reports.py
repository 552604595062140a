"""Overtime and compensation reports, report drafts and approval rules, on both databases."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from city_node import reports, tickets
from city_node.context import Actor, CityError, make_context
from city_node.domain import Action, PermissionDenied, Role
from city_node.services import open_store
from city_node.store import create_schema
from sync.db import make_engine
from sync.outbox import OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests import ticket_steps

ZONE = ZoneInfo("Asia/Shanghai")
OP = Actor("op-1", Role.OPERATOR_JUNIOR)
MANAGER = Actor("mgr-1", Role.MANAGER_HOTLINE)
LEADER = Actor("leader-1", Role.LEADER)
MONDAY = datetime(2026, 10, 5, 9, 0, tzinfo=ZONE)


@pytest.fixture
def ctx(databases: Any) -> Any:
    engine = make_engine(databases("city-reports"))
    create_schema(engine)
    open_store(engine, "620100")
    yield make_context(engine, "620100")
    engine.dispose()


def _complaint(category: str = "NET.BROADBAND") -> tickets.NewTicket:
    return tickets.NewTicket("complaint", category, "phone", "13800000000", "n", "ordinary", "c")


def test_overtime_report_lists_late_complaints_with_compensation(ctx: Any) -> None:
    # NET.BROADBAND has a 2-working-day limit: registered Monday 09:00, due Wednesday 09:00.
    late = tickets.register(ctx, OP, _complaint(), at=MONDAY, then=Action.DISPATCH, branch="B7")
    ticket_steps.act(ctx, OP, late.id, "branch_return", at=MONDAY + timedelta(days=3))
    ticket_steps.act(ctx, OP, late.id, "close", at=MONDAY + timedelta(days=3, hours=2))
    tickets.record_compensation(
        ctx, MANAGER, late.id, fen=5000, note="one month fee waived", at=MONDAY + timedelta(days=4)
    )
    on_time = tickets.register(ctx, OP, _complaint(), at=MONDAY, then=Action.ANSWER)
    still_open = tickets.register(
        ctx, OP, _complaint(), at=MONDAY + timedelta(days=20), then=Action.DISPATCH, branch="B2"
    )
    with pytest.raises(PermissionDenied):
        tickets.record_compensation(ctx, OP, late.id, fen=1, note="x")
    with pytest.raises(CityError, match="compensation"):
        tickets.record_compensation(ctx, MANAGER, late.id, fen=-5, note="x")

    report = reports.build_overtime(
        ctx, "month", date(2026, 10, 1), now=datetime(2026, 11, 2, tzinfo=ZONE)
    )
    cases = {int(c.ticket_id): c for c in report.cases}  # the wire carries ids as text
    assert set(cases) == {late.id, still_open.id}
    assert on_time.id not in cases
    assert cases[late.id].branch == "B7" and cases[late.id].compensation_fen == 5000
    assert cases[late.id].limit_hours == 48 and cases[late.id].overdue_hours == 26
    assert report.total_compensation_fen == 5000
    steps = [h.action for h in tickets.history(ctx, late.id)]
    assert steps[-1] == Action.COMPENSATE


def test_compensation_is_paid_for_overtime_complaints_only(ctx: Any) -> None:
    """docs/domain.md: the manager hotline records compensation paid for overtime. A complaint
    answered in time, or open within its limit, is refused (it became an overtime case of 0
    hours on the province's page); open past the limit, or closed late, is paid."""
    on_time = tickets.register(ctx, OP, _complaint(), at=MONDAY, then=Action.ANSWER)
    within = tickets.register(ctx, OP, _complaint(), at=MONDAY, then=Action.DISPATCH, branch="B")
    for ticket in (on_time, within):
        with pytest.raises(CityError, match="has not run past its time limit"):
            tickets.record_compensation(
                ctx, MANAGER, ticket.id, fen=500, note="x", at=MONDAY + timedelta(days=1)
            )
        assert Action.COMPENSATE not in [h.action for h in tickets.history(ctx, ticket.id)]
    # Due Wednesday 09:00: on Thursday the open one is overtime.
    tickets.record_compensation(
        ctx, MANAGER, within.id, fen=500, note="x", at=MONDAY + timedelta(days=3)
    )
    # Closed late, then paid after the closure.
    late = tickets.register(ctx, OP, _complaint(), at=MONDAY, then=Action.DISPATCH, branch="B")
    ticket_steps.act(ctx, OP, late.id, "branch_return", at=MONDAY + timedelta(days=3))
    ticket_steps.act(ctx, OP, late.id, "close", at=MONDAY + timedelta(days=3, hours=1))
    tickets.record_compensation(
        ctx, MANAGER, late.id, fen=700, note="x", at=MONDAY + timedelta(days=5)
    )
    report = reports.build_overtime(
        ctx, "month", date(2026, 10, 1), now=datetime(2026, 11, 2, tzinfo=ZONE)
    )
    assert {int(c.ticket_id) for c in report.cases} == {within.id, late.id}
    assert report.total_compensation_fen == 1200
    # As the review page and the API show the draft: money in fen as numbers, as every
    # other count is (protobuf's JSON writes 64-bit integers as strings).
    view = reports.draft(ctx, "overtime", "month", "2026-10-01", by="stat-1")
    assert view.figures["total_compensation_fen"] == 1200
    assert sorted(c["compensation_fen"] for c in view.figures["cases"]) == [500, 700]
    assert all(isinstance(c["limit_hours"], int) for c in view.figures["cases"])


def test_compensation_is_the_sum_of_the_payments_counted_in_the_month_paid(ctx: Any) -> None:
    # Closed late in October; paid 30.00 yuan in October and 20.00 more in November.
    late = tickets.register(ctx, OP, _complaint(), at=MONDAY, then=Action.DISPATCH, branch="B7")
    ticket_steps.act(ctx, OP, late.id, "branch_return", at=MONDAY + timedelta(days=3))
    ticket_steps.act(ctx, OP, late.id, "close", at=MONDAY + timedelta(days=3, hours=2))
    october_paid = MONDAY + timedelta(days=4)
    tickets.record_compensation(ctx, MANAGER, late.id, fen=3000, note="part", at=october_paid)
    november_paid = datetime(2026, 11, 3, 10, 0, tzinfo=ZONE)
    tickets.record_compensation(ctx, MANAGER, late.id, fen=2000, note="rest", at=november_paid)
    assert tickets.stored(ctx, late.id).compensation_fen == 5000
    # Compensation is paid on complaints: an enquiry's is refused and stores nothing.
    enquiry = tickets.register(
        ctx,
        OP,
        tickets.NewTicket("enquiry", "NET.BROADBAND", "phone", "13800000009", "", "ordinary", "q"),
        at=MONDAY,
        then=Action.ANSWER,
    )
    with pytest.raises(CityError, match="complaint"):
        tickets.record_compensation(ctx, MANAGER, enquiry.id, fen=100, note="x", at=october_paid)
    assert [h.action for h in tickets.history(ctx, enquiry.id)][-1] == Action.ANSWER

    now = datetime(2026, 12, 2, tzinfo=ZONE)
    october = reports.build_overtime(ctx, "month", date(2026, 10, 1), now=now)
    november = reports.build_overtime(ctx, "month", date(2026, 11, 1), now=now)
    assert [(int(c.ticket_id), c.compensation_fen) for c in october.cases] == [(late.id, 3000)]
    assert october.total_compensation_fen == 3000
    # Paid in November for a complaint late in October: November's report lists it.
    assert [(int(c.ticket_id), c.compensation_fen) for c in november.cases] == [(late.id, 2000)]
    assert november.cases[0].overdue_hours == 26 and november.cases[0].branch == "B7"
    assert november.total_compensation_fen == 2000


def test_only_the_leader_approves_and_only_drafts(ctx: Any) -> None:
    tickets.register(ctx, OP, _complaint(), at=MONDAY, then=Action.ANSWER)
    first = reports.draft(ctx, "statistics", "week", "2026-10-05", by="stat-1")
    second = reports.draft(ctx, "statistics", "week", "2026-10-05", by="stat-1")
    assert reports.get(ctx, first.id).status == "superseded"
    with pytest.raises(CityError, match="superseded"):
        reports.approve(ctx, LEADER, first.id)
    with pytest.raises(PermissionDenied, match="leader"):
        reports.approve(ctx, Actor("stat-1", Role.STATISTICIAN), second.id)
    with pytest.raises(CityError, match="reason"):
        reports.reject(ctx, LEADER, second.id, note=" ")
    rejected = reports.reject(ctx, LEADER, second.id, note="operator figures look wrong")
    assert rejected.status == "rejected"
    third = reports.draft(ctx, "statistics", "week", "2026-10-05", by="stat-1")
    assert third.revision == 3
    approved = reports.approve(ctx, LEADER, third.id)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(OutboxRow).where(OutboxRow.seq == approved.outbox_seq)).one()
    envelope = pb.Envelope.FromString(row.envelope)
    assert envelope.statistics_report.revision == 3
    assert envelope.statistics_report.approved_by == "leader-1"
    assert envelope.statistics_report.complaints_received == 1
    # The city's own view of the report is what it sent: who approved it, and when.
    assert approved.figures["approved_by"] == "leader-1" and approved.figures["approved_at"]
    with pytest.raises(CityError, match="approved"):
        reports.approve(ctx, LEADER, third.id)
    with pytest.raises(CityError, match="report kind"):
        reports.draft(ctx, "gossip", "week", "2026-10-05", by="stat-1")
    with pytest.raises(CityError, match="first day"):
        reports.draft(ctx, "statistics", "week", "2026-10-06", by="stat-1")
