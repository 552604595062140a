"""Migration c0003 gives the steps of a store made before it what the report figures need:
the survey outcomes, the deadline each step was taken under, since when the ticket had
been open or closed — so the reports count an older store's reopened tickets right too.
Migration c0007 turns the English text the code wrote into codes and parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import insert, inspect, select

from city_node import reports, tickets
from city_node.context import make_context
from city_node.history_text import entry_text, wire_text
from city_node.store import METADATA, MIGRATIONS, HistoryRow, TicketRow, create_schema
from sync.db import make_engine, write_connection
from sync.migrate import config

ZONE = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 16, tzinfo=ZONE)


def _at(hours: float) -> datetime:
    return (DAY + timedelta(hours=hours)).astimezone(UTC)


# A complaint as a c0002 store holds it: closed, reopened by a dissatisfied survey, extended
# by two working days (the leader's approval note names the old and new deadline), closed
# again and surveyed satisfied. (action, hours after DAY, from, to, note)
FIRST_DEADLINE = _at(24 + 9)
SECOND_DEADLINE = _at(72 + 9)
STEPS = [
    ("register", 9, None, "registered", ""),
    ("dispatch", 9, "registered", "dispatched", "to B"),
    ("branch_return", 20, "dispatched", "returned", ""),
    ("close", 20.5, "returned", "closed", ""),
    ("survey", 32, "closed", "in_progress", "dissatisfied; reopened"),
    ("request_extension", 33, "in_progress", "in_progress", "+2 workdays: parts"),
    (
        "approve_extension",
        34,
        "in_progress",
        "in_progress",
        f"deadline {FIRST_DEADLINE.isoformat()} -> {SECOND_DEADLINE.isoformat()}",
    ),
    ("branch_return", 40, "in_progress", "returned", ""),
    ("close", 41, "returned", "closed", ""),
    ("survey", 49, "closed", "surveyed", "satisfied"),
]


def test_c0003_backfills_outcomes_deadlines_and_stretches(databases: Any) -> None:
    engine = make_engine(databases("c0002-store"))
    with write_connection(engine) as conn, conn.begin():
        command.upgrade(config(MIGRATIONS, METADATA, conn), "c0002")
        conn.execute(
            insert(TicketRow.__table__).values(  # type: ignore[arg-type]
                id=1,
                kind="complaint",
                category="BILL",
                channel="phone",
                customer_phone="13800000001",
                customer_name="n",
                tier="ordinary",
                content="c",
                registered_at=_at(9),
                registered_by="op-1",
                deadline=SECOND_DEADLINE,
                status="surveyed",
                operator="op-1",
                branch="B",
                closed_at=_at(41),
                closed_by="op-1",
                satisfaction="satisfied",
                surveyed_at=_at(49),
                surveyed_by="sv-1",
                reopen_count=1,
                chase_count=0,
                is_repeat=False,
                compensation_fen=0,
                row_version=len(STEPS),
            )
        )
        for i, (action, hours, before, after, note) in enumerate(STEPS, start=1):
            conn.execute(
                insert(HistoryRow.__table__).values(  # type: ignore[arg-type]
                    id=i,
                    ticket_id=1,
                    at=_at(hours),
                    actor="sv-1" if action == "survey" else "op-1",
                    role="surveyor" if action == "survey" else "operator_junior",
                    action=action,
                    note=note,
                    from_status=before,
                    to_status=after,
                )
            )
    create_schema(engine)  # c0003 and later
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                HistoryRow.action, HistoryRow.deadline, HistoryRow.state_since, HistoryRow.outcome
            ).order_by(HistoryRow.id)
        ).all()
        ticket_since = conn.execute(select(TicketRow.state_since)).scalar_one()
    assert [r.outcome for r in rows if r.action == "survey"] == ["dissatisfied", "satisfied"]
    assert all(r.outcome is None for r in rows if r.action != "survey")
    # Up to and including the approval the old deadline was in force, then the new one.
    assert [r.deadline for r in rows] == [FIRST_DEADLINE] * 7 + [SECOND_DEADLINE] * 3
    # Open since registration, closed at 20:30, reopened at 32 h, extended at 34 h,
    # closed at 41 h.
    since = [_at(h) for h in (9, 9, 9, 9, 20.5, 32, 32, 34, 34, 41)]
    assert [r.state_since for r in rows] == since
    assert ticket_since == _at(41)

    # c0007: the English text the code wrote became a code and its parameters.
    with engine.connect() as conn:
        coded = conn.execute(
            select(HistoryRow.code, HistoryRow.params, HistoryRow.note).order_by(HistoryRow.id)
        ).all()
    assert [tuple(c) for c in coded] == [
        ("note", None, ""),
        ("dispatched_to", {"branch": "B"}, ""),
        ("note", None, ""),
        ("note", None, ""),
        ("surveyed", {"outcome": "dissatisfied", "reopened": True}, ""),
        ("extension_requested", {"days": 2}, "parts"),
        (
            "deadline_moved",
            {"from": FIRST_DEADLINE.isoformat(), "to": SECOND_DEADLINE.isoformat()},
            "",
        ),
        ("note", None, ""),
        ("note", None, ""),
        ("surveyed", {"outcome": "satisfied", "reopened": False}, ""),
    ]
    ticket = tickets.get(make_context(engine, "620100", tz_name="Asia/Shanghai"), 1)
    assert [entry_text(h, "zh") for h in ticket.history][4:6] == [
        "不满意；已重新打开",
        "申请延期 2 个工作日：parts",
    ]
    # The province still receives the English line it always did.
    assert [wire_text(h) for h in ticket.history] == [note for *_, note in STEPS]

    ctx = make_context(engine, "620100", tz_name="Asia/Shanghai")
    later = datetime(2027, 1, 1, tzinfo=ZONE)
    day16 = reports.build_statistics(ctx, "day", date(2026, 11, 16), now=later)
    day17 = reports.build_statistics(ctx, "day", date(2026, 11, 17), now=later)
    day18 = reports.build_statistics(ctx, "day", date(2026, 11, 18), now=later)
    assert (day16.closed, day16.closed_in_time) == (1, 1)
    assert (day17.closed, day17.satisfaction.dissatisfied, day17.satisfaction.surveyed) == (
        1,
        1,
        1,
    )
    # Re-closed on the 17th at 17:00, past the first deadline (09:00) but within the one
    # the extension set at 10:00.
    assert day17.closed_in_time == 1
    assert (day18.satisfaction.satisfied, day18.satisfaction.surveyed) == (1, 1)
    engine.dispose()


def test_migrated_indexes_are_the_models_to_the_partial_where(databases: Any) -> None:
    """Alembic's comparison skips a partial index's WHERE; the report queries repeat it word
    for word (SQLite uses the index only then), so the migrated one must be the model's."""
    migrated = make_engine(databases("c0003-migrated"))
    created = make_engine(databases("c0003-created"))
    create_schema(migrated)
    for metadata in METADATA:
        metadata.create_all(created)

    def indexes(engine: Any) -> dict[str, Any]:
        with engine.connect() as conn:
            found = {}
            for table in ("tickets", "ticket_history"):
                for ix in inspect(conn).get_indexes(table):
                    options = ix.get("dialect_options", {}).items()
                    where = {k: str(v) for k, v in options if "where" in k}
                    found[ix["name"]] = (ix["column_names"], where)
            return found

    expected = indexes(created)
    assert indexes(migrated) == expected
    assert expected["ix_history_figures"][1] and expected["ix_history_late_ends"][1]
    migrated.dispose()
    created.dispose()
