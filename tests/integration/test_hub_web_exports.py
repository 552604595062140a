"""The supervisor web's exports against their views, over a real uvicorn on SQLite and
PostgreSQL: an export takes its view's query (the trend's ``last``, the warnings' week) with
the same defaults and refusals; its period line and file name are the period shown; the
suggestion batches of one date come newest (highest number) first everywhere; the report
browser's export links work without a city chosen; the desk export names the customer tier
as the pages do; and the notices API documents its 429 like the rest of ``/api/v1``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from province_hub import services
from sync.db import make_engine
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import serving
from tests.hub_web_support import CODES, PASSWORD, ROSTER, TZ, HubStore, fill, web_app


@dataclass
class Live:
    url: str
    engine: Engine
    store: HubStore

    def api(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(who, PASSWORD), timeout=30)

    @contextmanager
    def browser(self, who: str) -> Iterator[httpx.Client]:
        """A client signed in through the login form (session cookie), like a browser."""
        with httpx.Client(base_url=self.url, timeout=30) as c:
            token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
            assert token
            form = {"csrf_token": token.group(1), "staff_id": who, "password": PASSWORD}
            assert c.post("/login", data=form).status_code == 303
            yield c


@pytest.fixture
def live(databases: Any) -> Iterator[Live]:
    url = databases("hubexports")
    engine = make_engine(url)
    store = fill(engine)
    with serving(web_app(engine)) as u:
        yield Live(u, engine, store)
    engine.dispose()


def _preamble(body: bytes) -> dict[str, str]:
    """The lines above a CSV export's header row, as label -> value."""
    out = {}
    for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))):
        if not row:
            break
        out[row[0]] = row[1]
    return out


def _rows(body: bytes) -> list[dict[str, str]]:
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    blank = lines.index([])
    header = lines[blank + 1]
    return [dict(zip(header, r, strict=True)) for r in lines[blank + 2 :]]


def _file_name(response: httpx.Response) -> str:
    found = re.search(r'filename="([^"]+)"', response.headers["content-disposition"])
    assert found, response.headers
    return found.group(1)


# --- one check of a period's start ----------------------------------------------------------------


def test_the_timeliness_export_refuses_a_start_inside_its_period_as_every_view(live: Live) -> None:
    bad = {"format": "csv", "period": "month", "start": "2026-11-03"}
    with live.api("admin") as c:
        timely = c.get("/api/v1/export/timeliness", params=bad)
        # The figures take no format (an unknown parameter is refused on its own).
        figures = c.get("/api/v1/figures", params={k: v for k, v in bad.items() if k != "format"})
        good = c.get("/api/v1/export/timeliness", params={**bad, "start": "2026-11-01"})
    assert timely.status_code == figures.status_code == 422, timely.text
    assert timely.json()["detail"] == figures.json()["detail"]
    assert "start 2026-11-03" in timely.json()["detail"]
    assert good.status_code == 200


# --- the trend export takes the trend's query -----------------------------------------------------


def test_the_trend_export_ends_at_last_as_the_trend_does(live: Live) -> None:
    query = {"kpi": "satisfaction_rate", "period": "day", "last": "2026-11-10"}
    with live.api("supervisor") as c:
        trend = c.get("/api/v1/trend", params=query).json()
        exported = c.get("/api/v1/export/trend", params={**query, "format": "csv"})
        too_old = c.get("/api/v1/export/trend", params={**query, "last": "0001-01-01"})
        mid_week = c.get(
            "/api/v1/export/trend", params={**query, "period": "week", "last": "2026-11-04"}
        )
        api_mid_week = c.get(
            "/api/v1/trend", params={**query, "period": "week", "last": "2026-11-04"}
        )
    assert exported.status_code == 200, exported.text
    assert [r["周期"] for r in _rows(exported.content)] == trend["periods"]
    assert trend["periods"][-1] == "2026-11-10" and len(trend["periods"]) == 30
    assert too_old.status_code == 422 and "last" in too_old.json()["detail"]
    assert mid_week.status_code == 422
    assert mid_week.json()["detail"] == api_mid_week.json()["detail"]
    assert "last 2026-11-04" in mid_week.json()["detail"]


# --- the warnings export takes the warnings' defaults ---------------------------------------------


def test_the_warnings_export_defaults_to_the_week_the_api_shows(live: Live) -> None:
    with live.api("supervisor") as c:
        shown = c.get("/api/v1/warnings").json()["period"]
        exported = c.get("/api/v1/export/warnings")
        monday = c.get("/api/v1/export/warnings", params={"start": "2026-11-23"})
        api_monday = c.get("/api/v1/warnings", params={"start": "2026-11-23"})
    assert shown["kind"] == "week"
    last_day = date.fromisoformat(shown["end"]) - timedelta(days=1)
    assert _preamble(exported.content)["统计周期"] == f"周 {shown['start']} 至 {last_day}"
    assert api_monday.status_code == 200
    assert monday.status_code == 200, monday.text
    assert _preamble(monday.content)["统计周期"] == "周 2026-11-23 至 2026-11-29"


# --- suggestion batches: newest batch number first ------------------------------------------------


def test_batches_of_one_date_come_highest_number_first_in_api_page_and_export(
    live: Live,
) -> None:
    city = CODES[0]  # holds batch 2026-11-30/1 already
    live.store.send(
        city,
        *(
            pb.SuggestionBatch(
                batch_date=day,
                batch_number=n,
                classified_by="clerk-1",
                suggestions=[pb.Suggestion(ticket_id=f"S{day}-{n}", category="NET", content="x")],
            )
            for day, n in [
                *(("2026-11-30", n) for n in range(2, 20)),
                ("2026-11-29", 3),
                ("2026-11-29", 12),
            ]
        ),
    )
    expected = [("2026-11-30", n) for n in range(19, 0, -1)] + [
        ("2026-11-29", 12),
        ("2026-11-29", 3),
    ]
    with live.api("materials_manager") as c:
        found = c.get("/api/v1/suggestions", params={"city": city, "limit": 1000}).json()
        page_two = c.get(
            "/api/v1/suggestions", params={"city": city, "limit": 5, "offset": 5}
        ).json()
        exported = c.get("/api/v1/export/suggestions", params={"city": city})
    with live.browser("materials_manager") as b:
        page = b.get("/suggestions", params={"city": city})
    assert [(b["batch_date"], b["batch_number"]) for b in found] == expected
    assert [(b["batch_date"], b["batch_number"]) for b in page_two] == expected[5:10]
    assert [(r["批次日期"], int(r["批号"])) for r in _rows(exported.content)] == expected
    shown = re.findall(r'data-key="batch_number">(\d+)<', page.text)
    assert [int(n) for n in shown] == [n for _, n in expected]


def test_the_suggestions_export_holds_the_whole_selection_not_a_page(live: Live) -> None:
    city = CODES[0]  # holds batch 2026-11-30/1 already
    live.store.send(
        city,
        *(
            pb.SuggestionBatch(
                batch_date="2026-11-28",
                batch_number=n,
                classified_by="clerk-1",
                suggestions=[pb.Suggestion(ticket_id=f"S-{n}", category="NET", content="x")],
            )
            for n in range(1, 131)
        ),
    )
    with live.api("materials_manager") as c:
        page = c.get("/api/v1/suggestions", params={"city": city}).json()
        exported = c.get("/api/v1/export/suggestions", params={"city": city})
    assert len(page) == 100  # the page's default
    assert len(_rows(exported.content)) == 131


# --- the report browser's export links ------------------------------------------------------------


def test_the_report_browsers_export_links_work_without_a_city_chosen(live: Live) -> None:
    with live.browser("supervisor") as b:
        page = b.get("/reports")
        assert page.status_code == 200
        links = re.findall(r'id="export-reports-(?:csv|xlsx)" href="([^"]+)"', page.text)
        assert len(links) == 2
        got = [b.get(link.replace("&amp;", "&")) for link in links]
    assert [r.status_code for r in got] == [200, 200], got[0].text[:200]
    # The city the page shows (the roster's first when none is chosen).
    assert _preamble(got[0].content)["报表"] == f"报表版次 {ROSTER[0].name_zh}"


def test_every_export_link_on_every_page_opens(live: Live) -> None:
    pages = ["/overview", "/comparison", "/trends", "/reports", "/hotspots", "/overtime"]
    pages += ["/qa", "/suggestions", "/quarantine", "/links", "/trends?period=day"]
    with live.browser("admin") as b:
        for path in pages:
            page = b.get(path)
            assert page.status_code == 200, path
            links = re.findall(r'href="(/api/v1/export/[^"]+)"', page.text)
            assert links, path
            for link in links:
                got = b.get(link.replace("&amp;", "&"))
                assert got.status_code == 200, (path, link, got.text[:200])


# --- the export files -----------------------------------------------------------------------------


def test_every_period_line_is_chinese_and_files_are_named_by_the_period_shown(live: Live) -> None:
    with live.api("admin") as c:
        day = c.get("/api/v1/export/figures", params={"period": "day", "start": "2026-11-28"})
        month = c.get("/api/v1/export/figures")
        timely = c.get("/api/v1/export/timeliness", params={"format": "xlsx"})
        timely_csv = c.get("/api/v1/export/timeliness")
        links = c.get("/api/v1/export/links")
        trend = c.get(
            "/api/v1/export/trend",
            params={"kpi": "satisfaction_rate", "period": "day", "last": "2026-11-10"},
        )
    assert _file_name(day) == "figures-day-2026-11-28.csv"
    assert _preamble(day.content)["统计周期"] == "日 2026-11-28 至 2026-11-28"
    assert _file_name(month) == "figures-month-2026-11-01.csv"
    assert _file_name(timely) == "timeliness-month-2026-11-01.xlsx"
    assert _preamble(timely_csv.content)["统计周期"] == "月 2026-11-01 至 2026-11-30"
    assert _preamble(trend.content)["统计周期"] == "日 2026-10-12 至 2026-11-10"
    assert _file_name(trend) == "trend_satisfaction_rate-day-2026-10-12-2026-11-10.csv"
    # A table of the present moment (no period) is named by the day it was made.
    assert _file_name(links) == "links-2026-12-05.csv"


def test_the_desk_export_names_the_customer_tier_as_the_pages_do(live: Live) -> None:
    city = CODES[2]
    body = pb.Escalation(
        ticket_id="T-TIER",
        kind=pb.COMPLAINT,
        category="BILL.DISPUTE",
        channel="phone",
        tier=pb.ORDINARY,
        reason="客户不接受地市处理",
        content="话费争议",
        customer_name="张三",
        customer_phone="13812345678",
        history=[pb.HistoryEntry(actor="op-1", action="registered", note="受理")],
    )
    at = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    body.registered_at.FromDatetime(at)
    live.store.seq[city] = live.store.seq.get(city, 0) + 1
    envelope = build_envelope(
        city_code=city, epoch="e" * 32, seq=live.store.seq[city], body=body, created_at=at
    )
    services.ingest_batch(
        live.engine, city_code=city, envelopes=[envelope], tz_name=TZ, max_batch=10
    )
    with live.api("supervisor") as c:
        exported = c.get("/api/v1/desk/export")
    with live.browser("supervisor") as b:
        page = b.get("/desk")
        case = b.get(f"/desk/{city}/{live.store.seq[city]}")
    assert exported.status_code == 200, exported.text
    (row,) = [r for r in _rows(exported.content) if r["工单号"] == "T-TIER"]
    assert row["客户级别"] == "普通"
    assert 'data-key="tier_text">普通<' in page.text
    assert '<td id="case-tier">普通</td>' in case.text


# --- words and the API's documentation ------------------------------------------------------------


def test_a_kind_the_role_may_not_send_is_refused_in_plain_english(live: Live) -> None:
    with live.api("supervisor") as c:  # a supervisor sends findings only
        r = c.post(
            "/api/v1/notices",
            json={
                "kind": "announcement",
                "title": "停机维护",
                "body": "今晚",
                "targets": [CODES[0]],
            },
        )
    assert r.status_code == 403
    assert r.json()["detail"] == "announcement notices are sent by: admin, announcer"


def test_every_api_operation_documents_the_login_throttle(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        doc = c.get("/openapi.json").json()
    missing = [
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
        if "429" not in operation["responses"]
    ]
    assert missing == []


# --- control characters in a city's text ----------------------------------------------------------


def _batch(number: int, content: str) -> pb.SuggestionBatch:
    return pb.SuggestionBatch(
        batch_date="2026-11-27",
        batch_number=number,
        classified_by="clerk-1",
        suggestions=[pb.Suggestion(ticket_id=f"C-{number}", category="NET", content=content)],
    )


def test_a_city_text_with_a_control_character_is_quarantined_naming_it(live: Live) -> None:
    city = CODES[1]
    result = live.store.send(city, _batch(1, "open\x1b[2J later"))
    assert (result.accepted, result.quarantined) == (0, 1)
    with live.api("supervisor") as c:
        held = c.get("/api/v1/quarantine", params={"city": city}).json()
    reasons = [r["reason"] for r in held if r["kind"] == "suggestion_batch"]
    assert any(
        "suggestions[0].content contains a control character (U+001B)" in r for r in reasons
    ), reasons


def test_an_older_record_holding_a_control_character_still_exports_as_xlsx(live: Live) -> None:
    """A record stored before the hub refused such text: the export writes the character as
    an escape instead of failing (no worksheet cell can hold it)."""
    from openpyxl import load_workbook
    from sqlalchemy import update

    from province_hub.store import Record

    city = CODES[1]
    assert live.store.send(city, _batch(7, "placeholder")).accepted == 1
    stored = _batch(7, "bell\x07 and vertical\x0btab")
    with live.engine.begin() as conn:
        changed = conn.execute(
            update(Record)
            .where(Record.city_code == city, Record.subject == "suggestion_batch/2026-11-27/7")
            .values(body=stored.SerializeToString())
        )
        assert changed.rowcount == 1
    with live.api("materials_manager") as c:
        params = {"city": city, "from": "2026-11-27", "to": "2026-11-27"}
        as_csv = c.get("/api/v1/export/suggestions", params=params)
        as_xlsx = c.get("/api/v1/export/suggestions", params={**params, "format": "xlsx"})
    assert as_csv.status_code == 200 and as_xlsx.status_code == 200, as_xlsx.text
    assert "bell\x07 and vertical\x0btab" in as_csv.content.decode("utf-8")
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert "bell\\x07 and vertical\\x0btab" in cells, cells
