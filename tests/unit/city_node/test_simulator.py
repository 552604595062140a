"""The traffic simulator on real stores: a plausible, deterministic history and live traffic."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Row, func, select

from city_node import simulator, simulator_live, staff
from city_node.context import CityContext, make_context
from city_node.domain import PRIORITY_TIERS, CustomerTier, Role, TicketKind
from city_node.services import open_store
from city_node.store import Escalation, HistoryRow, TicketRow, create_schema
from sync.db import make_engine
from sync.outbox import OutboxRow

SMALL_CITY = "620200"  # Jiayuguan, the smallest of the Gansu roster
# A Thursday afternoon: a fixed "now" makes the replay independent of when the test runs.
NOW = datetime(2025, 3, 13, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def make_store(url: str, code: str = SMALL_CITY) -> CityContext:
    engine = make_engine(url)
    create_schema(engine)
    open_store(engine, code)
    return make_context(engine, code)


@pytest.fixture
def ctx(tmp_path: Path):
    context = make_store(f"sqlite:///{tmp_path / 'city.sqlite'}")
    yield context
    context.engine.dispose()


def rows(ctx: CityContext) -> list[Row[Any]]:
    with ctx.engine.connect() as conn:
        return list(conn.execute(select(TicketRow).order_by(TicketRow.id)))


def histories(ctx: CityContext) -> dict[int, list[Row[Any]]]:
    with ctx.engine.connect() as conn:
        steps = conn.execute(select(HistoryRow).order_by(HistoryRow.ticket_id, HistoryRow.id))
        by_ticket: dict[int, list[Row[Any]]] = defaultdict(list)
        for step in steps:
            by_ticket[step.ticket_id].append(step)
    return by_ticket


def fingerprint(ctx: CityContext) -> list[tuple[object, ...]]:
    """What a seed decides: every ticket and every step, ids and times included."""
    hist = histories(ctx)
    return [
        (
            r.id,
            r.kind,
            r.category,
            r.customer_phone,
            r.status,
            r.satisfaction,
            tuple((h.at, h.actor, h.action) for h in hist[r.id]),
        )
        for r in rows(ctx)
    ]


def test_backfill_of_a_small_city_shows_every_scenario(ctx: CityContext):
    counts = simulator.backfill(ctx, days=10, seed=1, scale=3, now=NOW)
    tickets = rows(ctx)
    assert counts["tickets"] == len(tickets) > 100

    assert {t.kind for t in tickets} == {k.value for k in TicketKind}
    assert sum(t.is_repeat for t in tickets) >= 1
    satisfaction = Counter(t.satisfaction for t in tickets)
    assert satisfaction["unreachable"] >= 1
    assert satisfaction["very_satisfied"] + satisfaction["satisfied"] > satisfaction["neutral"]
    assert sum(t.reopen_count for t in tickets) >= 1, "a dissatisfied customer's reopen"
    assert any(t.closed_at is not None and t.closed_at > t.deadline for t in tickets), "overtime"
    assert any(t.compensation_fen > 0 for t in tickets)
    assert any(t.chase_count > 0 for t in tickets)
    assert any(t.status in ("dispatched", "in_progress", "returned") for t in tickets), "open"

    with ctx.engine.connect() as conn:
        escalations = conn.execute(select(func.count()).select_from(Escalation)).scalar_one()
        queued = conn.execute(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.kind == "escalation")
        ).scalar_one()
    assert escalations == queued >= 1
    actions = Counter(h.action for steps in histories(ctx).values() for h in steps)
    assert actions["escalate_manager"] > actions["escalate_province"] >= 1
    assert actions["rework"] >= 1 and actions["approve_extension"] >= 1

    # Priority customers: a junior takes them in and hands them over; seniors do the rest.
    hist = histories(ctx)
    priority = [t for t in tickets if CustomerTier(t.tier) in PRIORITY_TIERS]
    assert priority
    for t in priority:
        first, *rest = hist[t.id]
        assert first.role == Role.OPERATOR_JUNIOR and first.action == "register"
        assert rest[0].action == "hand_to_senior" and rest[0].role == Role.OPERATOR_JUNIOR
        assert all(h.role != Role.OPERATOR_JUNIOR for h in rest[1:])

    # The back office worked too: suggestions classified and batched, QA scored, reports
    # drafted and (demo) approved into the outbox.
    assert counts["suggestion_batch"] >= 5 and counts["qa_scored"] >= 5
    assert counts["report_approved"] >= 9 and "report_refused" not in counts
    with ctx.engine.connect() as conn:
        sent = Counter(conn.execute(select(OutboxRow.kind)).scalars())
    assert sent["suggestion_batch"] == counts["suggestion_batch"]
    assert sent["statistics_report"] >= 9 and sent["qa_report"] >= 1

    # The simulator's accounts exist and can sign in with the documented demo password.
    assert staff.authenticate(ctx.engine, "leader-1", simulator.DEMO_PASSWORD) is not None


def test_every_ticket_history_is_in_time_order_and_in_the_past(ctx: CityContext):
    simulator.backfill(ctx, days=4, seed=2, scale=2, now=NOW)
    start = NOW.timestamp() - 4 * 86_400
    for ticket_id, steps in histories(ctx).items():
        times = [h.at for h in steps]
        assert all(t.tzinfo is not None for t in times), ticket_id
        assert times == sorted(times), f"ticket {ticket_id} history goes back in time"
        assert start <= times[0].timestamp() and times[-1] <= NOW, ticket_id


def test_backfill_is_deterministic_for_a_seed(tmp_path: Path):
    stores = [make_store(f"sqlite:///{tmp_path / f'{n}.sqlite'}") for n in ("a", "b", "c")]
    try:
        first = simulator.backfill(stores[0], days=3, seed=42, now=NOW)
        second = simulator.backfill(stores[1], days=3, seed=42, now=NOW)
        other = simulator.backfill(stores[2], days=3, seed=43, now=NOW)
        assert first == second
        assert fingerprint(stores[0]) == fingerprint(stores[1])
        assert fingerprint(stores[0]) != fingerprint(stores[2]) and other["tickets"] > 0
    finally:
        for store in stores:
            store.engine.dispose()


def test_volume_follows_population():
    assert simulator.population_of("620100") > 4_000_000
    lanzhou = simulator.daily_volume(simulator.population_of("620100"))
    jiayuguan = simulator.daily_volume(simulator.population_of("620200"))
    assert lanzhou > 10 * jiayuguan >= 10 * simulator.MIN_PER_DAY
    assert simulator.daily_volume(10) == simulator.MIN_PER_DAY


def test_the_demo_prints_the_simulator_password():
    from sync import demo

    assert demo.DEMO_PASSWORD == simulator.DEMO_PASSWORD


def test_backfill_on_each_engine(databases):
    """The same seed gives the same history on SQLite and on PostgreSQL."""
    ctx = make_store(databases("sim"))
    try:
        counts = simulator.backfill(ctx, days=3, seed=5, scale=2, now=NOW)
        assert counts["tickets"] == len(rows(ctx)) > 0
        for steps in histories(ctx).values():
            assert [h.at for h in steps] == sorted(h.at for h in steps)
        # Replaying on top of an existing store adds to it and reuses the accounts.
        again = simulator.backfill(ctx, days=1, seed=6, now=NOW)
        assert len(rows(ctx)) == counts["tickets"] + again["tickets"]
    finally:
        ctx.engine.dispose()


async def test_live_traffic_registers_new_tickets_and_works_old_ones(ctx: CityContext):
    simulator.backfill(ctx, days=2, seed=3, now=NOW)
    stop = asyncio.Event()
    wakes = 0

    def wake() -> None:
        nonlocal wakes
        wakes += 1

    task = asyncio.create_task(
        simulator_live.run(ctx, stop, wake, rate_scale=20, seed=3, interval=(0.05, 0.1))
    )

    def worked() -> bool:
        tickets = rows(ctx)
        hist = histories(ctx)
        return (
            wakes >= 3
            and any(t.registered_at > NOW for t in tickets)
            and any(t.registered_at <= NOW and hist[t.id][-1].at > NOW for t in tickets)
        )

    # At least 3 s of traffic, and on a loaded machine until it has done its work (bounded).
    await asyncio.sleep(3)
    for _ in range(135):
        if worked():
            break
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert wakes >= 3
    tickets = rows(ctx)
    assert any(t.registered_at > NOW for t in tickets), "live arrivals"
    hist = histories(ctx)
    # The backfill's open tickets are long overdue by today: the live loop works them.
    assert any(t.registered_at <= NOW and hist[t.id][-1].at > NOW for t in tickets)
    for steps in hist.values():
        assert [h.at for h in steps] == sorted(h.at for h in steps)


def test_the_simulator_refuses_a_store_with_real_work(ctx) -> None:
    """It publishes a demo password and sends made-up reports: never into a real store."""
    from city_node.context import CityError

    staff.add(ctx.engine, staff_id="real-leader", name="Real", role="leader", password="x" * 12)
    with pytest.raises(CityError, match="not a demo store"):
        simulator.backfill(ctx, days=1, seed=1)
    assert [m.id for m in staff.all_staff(ctx.engine)] == ["real-leader"]


def test_the_demo_wires_its_own_extras_into_a_node() -> None:
    """The composition root knows no demo: ``fedsync city run`` hands ``demo_extras`` to it,
    which adds live traffic and automatic receipts only when the demo's settings ask."""
    import ast
    import inspect

    from city_node import app
    from city_node.settings import CitySettings

    assert simulator_live.demo_extras(CitySettings(code="620100")) == app.Extras()
    extras = simulator_live.demo_extras(
        CitySettings(code="620100", demo_traffic=True, demo_receipts=True)
    )
    assert [name for name, _ in extras.companions] == ["demo-traffic"]
    assert extras.after_notice == (simulator_live.auto_receipts,)
    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(app))):
        if isinstance(node, ast.ImportFrom | ast.Import):
            module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            imported |= {f"{module}.{alias.name}".lstrip(".") for alias in node.names}
    assert not [name for name in imported if "simulator" in name], imported
