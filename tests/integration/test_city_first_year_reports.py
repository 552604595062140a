"""Reports of the first periods a report may have (2000): the leader's queue and the review
page show them, with no previous period to compare with — the period before lies outside the
years a report may have, and looking it up used to refuse the whole queue."""

from __future__ import annotations

from typing import Any

import pytest

from city_node import reports
from city_node.context import make_context
from tests.integration.test_city_notice_links import CITY, console, signed_in

__all__ = ["console"]  # the fixture, shared


@pytest.mark.parametrize(
    ("kind", "period", "start"),
    [
        ("statistics", "month", "2000-01-01"),
        ("statistics", "day", "2000-01-01"),
        ("statistics", "week", "2000-01-03"),  # the week before starts in 1999
        ("qa", "quarter", "2000-01-01"),
        ("overtime", "year", "2000-01-01"),
    ],
)
def test_a_first_year_draft_is_reviewed_without_a_previous_period(
    console: tuple[str, Any, str], kind: str, period: str, start: str
) -> None:
    base_url, engine, _ = console
    draft = reports.draft(make_context(engine, CITY), kind, period, start, by="stat-1")
    with signed_in(base_url) as client:
        queue = client.get("/reports")
        assert queue.status_code == 200, queue.text
        assert f"/reports/{draft.id}" in queue.text
        page = client.get(f"/reports/{draft.id}")
        assert page.status_code == 200, page.text
        assert start in page.text


def test_the_nodes_own_decision_notes_read_in_the_pages_language(
    console: tuple[str, Any, str],
) -> None:
    base_url, engine, _ = console
    ctx = make_context(engine, CITY)
    first = reports.draft(ctx, "statistics", "month", "2026-10-01", by="stat-1")
    reports.draft(ctx, "statistics", "month", "2026-10-01", by="stat-1")
    assert reports.get(ctx, first.id).decision_note == "revision 2 drafted"  # as stored
    with signed_in(base_url) as client:
        zh = client.get("/reports", params={"lang": "zh"}).text
        en = client.get("/reports", params={"lang": "en"}).text
        review = client.get(f"/reports/{first.id}", params={"lang": "zh"}).text
    assert "已起草第 2 版，本稿不再审批" in zh and "revision 2 drafted" not in zh
    assert "revision 2 drafted" in en
    assert "已起草第 2 版" in review
