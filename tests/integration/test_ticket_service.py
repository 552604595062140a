"""The ticket service on a real store: extensions on the working-day calendar, chase and
rework, repeat window, optimistic locking, bulk intake all-or-nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from city_node import commands, tickets
from city_node.context import Actor, CityError, Conflict, make_context
from city_node.domain import Action, InvalidTicket, PermissionDenied, Role, Status
from city_node.services import open_store
from city_node.store import create_schema
from sync.db import make_engine
from tests import ticket_steps

ZONE = ZoneInfo("Asia/Shanghai")
OP = Actor("op-1", Role.OPERATOR_JUNIOR)
LEADER = Actor("leader-1", Role.LEADER)
FRIDAY = datetime(2026, 9, 25, 16, 0, tzinfo=ZONE)  # before the October holidays


@pytest.fixture
def ctx(databases: Any) -> Any:
    engine = make_engine(databases("tickets"))
    create_schema(engine)
    open_store(engine, "620100")
    holidays = frozenset(date(2026, 10, d) for d in range(1, 8))
    yield make_context(engine, "620100", holidays=holidays, repeat_window_days=7)
    engine.dispose()


def _new(phone: str = "13800000000", category: str = "NET.BROADBAND") -> tickets.NewTicket:
    return tickets.NewTicket("complaint", category, "phone", phone, "n", "ordinary", "c")


def test_extension_moves_the_deadline_over_holidays_only_with_the_leader(ctx: Any) -> None:
    t = tickets.register(ctx, OP, _new(), at=FRIDAY, then=Action.DISPATCH, branch="B")
    # 2 working days from Friday 16:00: Monday, Tuesday.
    assert t.deadline == datetime(2026, 9, 29, 16, 0, tzinfo=ZONE)
    ticket_steps.act(
        ctx,
        OP,
        t.id,
        "request_extension",
        days=2,
        reason="parts on order",
        at=FRIDAY + timedelta(days=3),
    )
    with pytest.raises(PermissionDenied):
        ticket_steps.act(ctx, OP, t.id, "approve_extension", at=FRIDAY + timedelta(days=3, hours=1))
    done = ticket_steps.act(
        ctx, LEADER, t.id, "approve_extension", at=FRIDAY + timedelta(days=3, hours=2)
    )
    # Wednesday 30 September, then the 1-7 October holidays are skipped: Thursday 8 October.
    assert done.deadline == datetime(2026, 10, 8, 16, 0, tzinfo=ZONE)
    assert tickets.get(ctx, t.id).deadline == done.deadline
    with pytest.raises(CityError, match="days"):
        ticket_steps.act(ctx, OP, t.id, "request_extension", days="two", reason="x")


def test_chase_rework_and_the_history(ctx: Any) -> None:
    t = tickets.register(ctx, OP, _new(), at=FRIDAY, then=Action.DISPATCH, branch="B")
    ticket_steps.act(
        ctx, OP, t.id, "chase", note="customer called again", at=FRIDAY + timedelta(hours=1)
    )
    ticket_steps.act(ctx, OP, t.id, "branch_return", note="fixed", at=FRIDAY + timedelta(hours=2))
    reworked = ticket_steps.act(
        ctx, OP, t.id, "rework", note="not fixed", at=FRIDAY + timedelta(hours=3)
    )
    assert reworked.status is Status.IN_PROGRESS and reworked.chase_count == 1
    history = tickets.history(ctx, t.id)
    assert [(h.action.value, h.actor) for h in history] == [
        ("register", "op-1"),
        ("dispatch", "op-1"),
        ("chase", "op-1"),
        ("branch_return", "op-1"),
        ("rework", "op-1"),
    ]
    with pytest.raises(InvalidTicket, match="before the last"):
        ticket_steps.act(ctx, OP, t.id, "branch_return", at=FRIDAY)  # time going backwards


def test_repeat_window_is_configurable(ctx: Any) -> None:
    first = tickets.register(ctx, OP, _new(), at=FRIDAY)
    inside = tickets.register(ctx, OP, _new(), at=FRIDAY + timedelta(days=7))
    outside = tickets.register(ctx, OP, _new(), at=FRIDAY + timedelta(days=15))
    other_category = tickets.register(ctx, OP, _new(category="BILL"), at=FRIDAY + timedelta(days=1))
    flags = [tickets.stored(ctx, t.id).is_repeat for t in (first, inside, outside, other_category)]
    assert flags == [False, True, False, False]


def test_a_stale_write_is_refused(ctx: Any) -> None:
    t = tickets.register(ctx, OP, _new(), at=FRIDAY, then=Action.DISPATCH, branch="B")
    # Two people load the same ticket; the second save must not overwrite the first.
    from city_node.commands import Step
    from city_node.ticket_store import load_ticket, save_ticket
    from city_node.tickets import _run
    from sync.db import UnitOfWork

    with UnitOfWork(ctx.engine) as a:
        row, before = load_ticket(a.conn, t.id, full_history=False)
        after = _run(before, OP, Step(Action.CHASE), FRIDAY + timedelta(hours=1), ctx)
        save_ticket(a.conn, row, before, after, OP, Action.CHASE)
        a.commit()
    with UnitOfWork(ctx.engine) as b, pytest.raises(Conflict):
        save_ticket(b.conn, row, before, after, OP, Action.CHASE)  # same stale row version
    assert [h.action.value for h in tickets.history(ctx, t.id)].count("chase") == 1


def test_bulk_intake_is_all_or_nothing(ctx: Any) -> None:
    good = tickets.Intake(_new(), at=FRIDAY, then=Action.DISPATCH, branch="B")
    bad = tickets.Intake(_new(phone="not a phone"), at=FRIDAY)
    before = tickets.count(ctx)
    with pytest.raises(CityError, match="customer_phone"):
        tickets.register_many(ctx, OP, [good, good, bad])
    assert tickets.count(ctx) == before
    later = tickets.Intake(_new(), at=FRIDAY + timedelta(hours=1), then=Action.DISPATCH, branch="B")
    stored = tickets.register_many(ctx, OP, [good, later])
    assert [t.status for t in stored] == [Status.DISPATCHED, Status.DISPATCHED]
    assert tickets.stored(ctx, stored[1].id).is_repeat is True  # repeat of the first


def test_concurrent_operators_each_get_their_ticket(ctx: Any) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(10):
                tickets.register(
                    ctx,
                    Actor(f"op-{i}", Role.OPERATOR_JUNIOR),
                    _new(phone=f"1380000{i}{j:03d}"),
                    then=Action.ANSWER,
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert tickets.count(ctx) == 40


def test_the_list_total_counts_what_the_list_shows(ctx: Any) -> None:
    """The list and its total share one WHERE: a phone typed with spaces and dashes finds
    and counts the same tickets (the total once compared the phone as typed)."""
    for phone in ("13800000001", "13800000001", "13900000002"):
        tickets.register(ctx, OP, _new(phone=phone), at=FRIDAY, then=Action.ANSWER)
    tickets.register(ctx, OP, _new(phone="13900000003"), at=FRIDAY)

    def both(**filters: Any) -> tuple[int, int]:
        return tickets.count(ctx, **filters), len(tickets.search(ctx, limit=500, **filters))

    assert both() == (4, 4)
    assert both(phone="138 0000-0001") == (2, 2)
    assert both(status="answered", kind="complaint") == (3, 3)
    assert both(open_only=True) == (1, 1)
    with pytest.raises(CityError, match=r"^phone: use digits"):  # the filter's own name
        tickets.count(ctx, phone="not a phone")


def test_a_command_built_directly_meets_the_same_checks(ctx: Any) -> None:
    """A typed command checks its fields however it is made: a script or a benchmark
    building ``Dispatch(branch="")`` for perform gets the same refusal as a person, and
    nothing is written."""
    t = tickets.register(ctx, OP, _new(), at=FRIDAY)
    before = tickets.get(ctx, t.id)
    refused: list[tuple[Callable[[], commands.Command], str]] = [
        (lambda: commands.Dispatch(branch=""), "branch is required"),
        (lambda: commands.Dispatch(branch="B", note="x" * 20_000), "note is 20000 characters"),
        (lambda: commands.RequestExtension(days=0, reason="parts"), "days"),
        (lambda: commands.RequestExtension(days=2, reason=" "), "reason is required"),
        (
            lambda: commands.Step(action=Action.ANSWER, note="y" * 20_000),
            "note is 20000 characters",
        ),
    ]
    for make, message in refused:
        with pytest.raises(CityError, match=message):
            tickets.perform(ctx, OP, t.id, make(), at=FRIDAY + timedelta(minutes=5))
    after = tickets.get(ctx, t.id)
    assert (after.status, len(after.history)) == (before.status, len(before.history))
    done = tickets.perform(ctx, OP, t.id, commands.Dispatch(branch="B"), at=FRIDAY)
    assert done.status is Status.DISPATCHED
