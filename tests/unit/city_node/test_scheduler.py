"""The city's routine: what each job drafts or draws, that it does so once, and when it runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from city_node import reports, scheduler, suggestions, tickets
from city_node.context import Actor, make_context
from city_node.domain import Action, Role
from city_node.services import open_store
from city_node.store import QaSample, create_schema
from sync.db import make_engine
from sync.outbox import OutboxRow

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZONE)  # a Wednesday


def _ctx(tmp_path: Path, **options: Any) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'city.sqlite'}")
    create_schema(engine)
    open_store(engine, "620100")
    return make_context(engine, "620100", **options)


def _outbox_kinds(ctx: Any) -> list[str]:
    with ctx.engine.connect() as conn:
        return list(conn.execute(select(OutboxRow.kind).order_by(OutboxRow.seq)).scalars())


def _first_ticket(ctx: Any, at: datetime) -> None:
    op = Actor("op-1", Role.OPERATOR_JUNIOR)
    new = tickets.NewTicket("enquiry", "BILL", "phone", "13800000000", "n", "ordinary", "q")
    tickets.register(ctx, op, new, at=at, then=Action.ANSWER)


def test_a_store_without_work_drafts_nothing(tmp_path: Path) -> None:
    assert scheduler.catch_up(_ctx(tmp_path), now=NOW) == []


def test_each_report_due_is_drafted_once_and_downtime_is_caught_up(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    _first_ticket(ctx, datetime(2026, 6, 15, 9, tzinfo=ZONE))
    made = scheduler.catch_up(ctx, now=NOW)
    drafts = {(r.kind, r.period_kind, r.period_start.isoformat()) for r in reports.pending(ctx)}
    assert len(made) == len(drafts) == 24
    assert {d for d in drafts if d[1] == "day"} == {
        ("statistics", "day", f"2026-11-{d}") for d in range(18, 25)
    }
    assert {d for d in drafts if d[1] == "week"} == {
        ("statistics", "week", w) for w in ("2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16")
    }
    assert {d for d in drafts if d[1] == "month"} == {
        (k, "month", m)
        for k in ("statistics", "qa", "overtime")
        for m in ("2026-08-01", "2026-09-01", "2026-10-01")
    }
    assert {d for d in drafts if d[1] == "quarter"} == {
        (k, "quarter", q) for k in ("statistics", "overtime") for q in ("2026-04-01", "2026-07-01")
    }
    assert not {d for d in drafts if d[1] == "year"}  # 2025 ended before the first ticket
    assert scheduler.catch_up(ctx, now=NOW + timedelta(hours=3)) == []
    assert _outbox_kinds(ctx) == []  # drafts wait for the leader


def test_a_draft_made_while_the_day_ran_is_not_final(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    _first_ticket(ctx, NOW - timedelta(days=2))
    early = reports.draft(ctx, "statistics", "day", NOW.date(), by="stat-1", now=NOW)
    _first_ticket(ctx, NOW + timedelta(hours=5))  # more work later that day
    (final_id,) = scheduler.draft_due(ctx, "day", now=NOW + timedelta(days=1))
    final = reports.get(ctx, final_id)
    assert final.revision == early.revision + 1
    assert (early.figures["enquiries_received"], final.figures["enquiries_received"]) == (0, 1)
    assert reports.get(ctx, early.id).status == "superseded"


def test_auto_approval_queues_reports_for_the_province(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, auto_approve=True)
    _first_ticket(ctx, NOW - timedelta(days=3))
    scheduler.draft_due(ctx, "day", now=NOW)
    (report,) = reports.recent(ctx)
    assert report.status == "approved" and report.decided_by == "auto-approval"
    assert _outbox_kinds(ctx) == ["statistics_report"]


def test_scheduled_qa_draws_yesterdays_closures_once(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, qa_sample_rate=0.5)
    op = Actor("op-1", Role.OPERATOR_JUNIOR)
    new = tickets.NewTicket("enquiry", "BILL", "phone", "13800000000", "n", "ordinary", "q")
    yesterday = NOW - timedelta(days=1)
    for i in range(10):
        tickets.register(ctx, op, new, at=yesterday + timedelta(minutes=i), then=Action.ANSWER)
    tickets.register(ctx, op, new, at=NOW - timedelta(hours=1), then=Action.ANSWER)  # today
    ids = scheduler.sample_yesterday(ctx, now=NOW)
    assert len(ids) == 5
    assert scheduler.sample_yesterday(ctx, now=NOW + timedelta(hours=1)) == []
    with ctx.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(QaSample)).scalar() == 5


def test_the_daily_suggestion_batch_names_the_clerks(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    op = Actor("op-1", Role.OPERATOR_JUNIOR)
    new = tickets.NewTicket("suggestion", "NET", "web", "13800000000", "n", "ordinary", "idea")
    t = tickets.register(ctx, op, new, then=Action.ANSWER)
    assert scheduler.send_suggestions(ctx) is None  # nothing classified yet
    suggestions.classify(ctx, Actor("clerk-7", Role.MATERIALS_CLERK), t.id, "coverage")
    sent = scheduler.send_suggestions(ctx)
    assert sent is not None and sent[1] == 1
    assert _outbox_kinds(ctx) == ["suggestion_batch"]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("reports-day", datetime(2026, 11, 26, 0, 15, tzinfo=ZONE)),
        ("reports-week", datetime(2026, 11, 30, 0, 20, tzinfo=ZONE)),
        ("reports-month", datetime(2026, 12, 1, 0, 30, tzinfo=ZONE)),
        ("reports-quarter", datetime(2027, 1, 1, 0, 40, tzinfo=ZONE)),
        ("reports-year", datetime(2027, 1, 1, 0, 50, tzinfo=ZONE)),
        ("qa-sampling", datetime(2026, 11, 26, 1, 0, tzinfo=ZONE)),
        ("suggestions", datetime(2026, 11, 25, 23, 30, tzinfo=ZONE)),
    ],
)
def test_jobs_run_in_the_federation_zone(tmp_path: Path, job: str, expected: datetime) -> None:
    sched = scheduler.build(_ctx(tmp_path))
    trigger = sched.get_job(job).trigger
    assert trigger.get_next_fire_time(None, NOW) == expected
