"""The leader's report review in a real browser: each report kind rendered as a report
(headline, KPIs with numerator and denominator, previous period, breakdowns) in Chinese and
English, with figures equal to the report's own; a rejected draft shows why; a print view."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from city_node import reports, services, simulator
from city_node.context import make_context
from city_node.report_figures import containing
from city_node.store import create_schema
from city_node.web.app import create_app
from sync.db import make_engine
from sync.outbox import Outbox
from tests.browser.conftest import CITY, LiveConsole
from tests.conftest import serving


@pytest.fixture
def history(tmp_path: Any) -> Iterator[LiveConsole]:
    """A console over nine days of a small city's simulated traffic (each day's report
    drafted and approved), signed in as the simulator's leader."""
    engine = make_engine(f"sqlite:///{tmp_path / 'city.sqlite'}")
    create_schema(engine)
    services.open_store(engine, CITY)
    ctx = make_context(engine, CITY)
    simulator.backfill(ctx, days=9, seed=7, population=300_000)
    app = create_app(ctx, Outbox(engine), secret_key=b"r" * 32)
    with serving(app) as url:
        yield LiveConsole(url, engine, ctx)
    engine.dispose()


def log_in(page: Any, console: LiveConsole, who: str) -> None:
    page.goto(f"{console.url}/login")
    page.fill("#staff_id", f"{who}-1")
    page.fill("#password", simulator.DEMO_PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/tickets$"))


def _cell(page: Any, report_id: int, table: str, key: str, column: str) -> str:
    text: str = page.locator(
        f"#{table}-{report_id} tr[data-{column}='{key}'] td.value"
    ).inner_text()
    return text


def _percent(num: int, den: int) -> str:
    return f"{num / den * 100:.1f}%" if den else "—"


@pytest.mark.parametrize(
    ("lang", "title", "kpi_label"),
    [("zh", "统计报表", "按时结案率"), ("en", "Statistics report", "In-time closure rate")],
)
def test_statistics_review_shows_the_reports_figures(
    page: Any, history: LiveConsole, lang: str, title: str, kpi_label: str
) -> None:
    ctx = history.ctx
    yesterday = ctx.today() - timedelta(days=1)
    draft = reports.draft(ctx, "statistics", "day", yesterday, by="stat")
    f = draft.figures
    log_in(page, history, "leader")
    page.goto(f"{history.url}/reports/{draft.id}?lang={lang}")
    assert title in page.locator("h1").inner_text()
    # No JSON dump, no snake_case keys.
    assert "complaints_received" not in page.locator("main").inner_text()
    for key in (
        "complaints_received",
        "closed",
        "closed_in_time",
        "overtime_open",
        "escalations_raised",
    ):
        shown = _cell(page, draft.id, "headline", key, "figure")
        assert shown == f"{int(f.get(key, 0)):,}", key
    kpi = page.locator(f"#kpis-{draft.id} tr[data-kpi='kpi_in_time']")
    assert kpi_label in kpi.inner_text()
    closed, in_time = int(f.get("closed", 0)), int(f.get("closed_in_time", 0))
    assert kpi.locator(".numerator").inner_text() == str(in_time)
    assert kpi.locator(".denominator").inner_text() == str(closed)
    assert kpi.locator("td.value").inner_text() == _percent(in_time, closed)
    # A day without any callback carries no satisfaction (the small simulated city makes
    # few; on 2026-11-28 it made none).
    sat = f.get("satisfaction", {})
    happy = int(sat.get("very_satisfied", 0)) + int(sat.get("satisfied", 0))
    row = page.locator(f"#kpis-{draft.id} tr[data-kpi='kpi_satisfaction']")
    assert row.locator(".numerator").inner_text() == str(happy)
    assert row.locator(".denominator").inner_text() == str(sat.get("surveyed", 0))
    # Compared with the day before (approved by the backfill): arrows and deltas.
    before = containing(ctx, "day", yesterday - timedelta(days=1)).start
    assert str(before) in page.locator(".compare-with").inner_text()
    assert re.search(r"[↑↓→]", page.locator(f"#headline-{draft.id}").inner_text())
    # Breakdowns: every category and channel of the report, and the operators.
    for item in f["by_category"]:
        assert page.locator(f"#by_category-{draft.id} tr[data-key='{item['key']}']").count() == 1
    for item in f["by_channel"]:
        assert page.locator(f"#by_channel-{draft.id} tr[data-key='{item['key']}']").count() == 1
    assert page.locator(f"#operator_workload-{draft.id} tbody tr").count() == len(f["operators"])
    # The print view drops the console's chrome and the forms.
    page.goto(f"{history.url}/reports/{draft.id}?print=1")
    assert page.locator(".print-view").count() == 1
    assert page.locator("#approve").count() == 0
    assert not page.locator("header nav").is_visible()


def test_qa_and_overtime_reviews(page: Any, history: LiveConsole) -> None:
    ctx = history.ctx
    week = reports.complete_periods(ctx, "week")[0].start
    qa_report = reports.draft(ctx, "qa", "week", week, by="qa")
    overtime = reports.draft(ctx, "overtime", "week", week, by="stat")
    log_in(page, history, "leader")
    page.goto(f"{history.url}/reports/{qa_report.id}?lang=zh")
    f = qa_report.figures
    assert (
        _cell(page, qa_report.id, "headline", "sampled", "figure")
        == f"{int(f.get('sampled', 0)):,}"
    )
    row = page.locator(f"#kpis-{qa_report.id} tr[data-kpi='kpi_qa_pass']")
    assert "质检合格率" in row.inner_text()
    assert row.locator(".numerator").inner_text() == str(f.get("passed", 0))
    assert row.locator(".denominator").inner_text() == str(f.get("sampled", 0))
    page.goto(f"{history.url}/reports/{overtime.id}?lang=en")
    cases = overtime.figures.get("cases", [])
    assert _cell(page, overtime.id, "headline", "overtime_cases", "figure") == f"{len(cases):,}"
    assert page.locator(f"#overtime_cases-{overtime.id} tbody tr[data-key]").count() == len(cases)


def test_rejected_draft_shows_why_and_queue_shows_figures(page: Any, history: LiveConsole) -> None:
    ctx = history.ctx
    yesterday = ctx.today() - timedelta(days=1)
    draft = reports.draft(ctx, "statistics", "day", yesterday, by="stat")
    log_in(page, history, "leader")
    page.goto(f"{history.url}/reports")
    card = page.locator(f"#report-{draft.id}")
    assert card.locator("pre").count() == 0
    assert card.locator(f"#kpis-{draft.id}").is_visible()
    card.locator("a.open-report").click()
    page.locator("form[action$='/reject'] input[name=note]").fill("投诉数与系统不符，请核对")
    page.click("#reject")
    page.wait_for_load_state()
    page.goto(f"{history.url}/reports/{draft.id}")
    assert page.locator("#report-status").inner_text() == "已驳回"
    assert "投诉数与系统不符" in page.locator("#rejection-reason").inner_text()
    assert reports.get(ctx, draft.id).status == "rejected"
