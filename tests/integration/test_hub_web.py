"""The supervisor web's API and pages over a real uvicorn, on SQLite and PostgreSQL, with
figures pushed through the hub's real ingest service (tests/hub_web_support.py): every
``/api/v1`` endpoint with every role and anonymously, bad query values refused naming the
parameter (store unchanged), session + CSRF, throttled logins, exports read back, the report
browser's diff, suggestions "new" until a materials manager has seen them, both languages.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select
from starlette.routing import Route

import sync.web
from province_hub.staff import HubRole, set_active
from province_hub.store import AuditEntry, HubStaff, Record, SuggestionSeen, create_schema
from province_hub.web import tables, views
from province_hub.web.access import AREAS
from province_hub.web.api import router as api_router
from province_hub.web.context import HubWeb
from province_hub.web.i18n import LABELS
from province_hub.web.views import EXPORT_AREAS
from sync.db import make_engine
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.web.throttle import LoginThrottle
from tests.conftest import serving
from tests.hub_web_support import (
    CODES,
    CORRECTED,
    NOVEMBER,
    NOW,
    OCTOBER,
    PASSWORD,
    ROSTER,
    SILENT,
    TZ,
    HubStore,
    expected_complaints,
    fill,
    stats,
    web_app,
)

TEMPLATES = [
    *(Path(__file__).parents[2] / "province_hub" / "web" / "templates").glob("*.html"),
    *(Path(sync.web.__file__).parent / "templates").glob("*.html"),
]
ROLES = [r.value for r in HubRole]


@dataclass
class Live:
    url: str
    db_url: str
    engine: Engine

    def api(self, who: str | None) -> httpx.Client:
        auth = None if who is None else (who, PASSWORD)
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    @contextmanager
    def browser(self, who: str) -> Iterator[httpx.Client]:
        """A client signed in through the login form (session cookie), like a browser."""
        with httpx.Client(base_url=self.url, timeout=30) as c:
            token = csrf_of(c.get("/login").text)
            form = {"csrf_token": token, "staff_id": who, "password": PASSWORD, "next": "/"}
            r = c.post("/login", data=form)
            assert r.status_code == 303, r.text
            yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def live(databases: Any) -> Iterator[Live]:
    url = databases("hubweb")
    engine = make_engine(url)
    fill(engine)
    with serving(web_app(engine, throttle=LoginThrottle(account_limit=3, address_limit=6))) as u:
        yield Live(u, url, engine)
    engine.dispose()


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Record)).scalar_one(),
            conn.execute(select(func.count()).select_from(SuggestionSeen)).scalar_one(),
            conn.execute(select(func.count()).select_from(HubStaff)).scalar_one(),
        )


# --- figures ------------------------------------------------------------------------------------


def test_figures_api_is_the_cli_json_and_counts_latest_revisions(live: Live) -> None:
    # The CLI judges report timeliness at the real "now": so does this server.
    with (
        serving(web_app(live.engine, real_clock=True)) as url,
        httpx.Client(base_url=url, auth=("statistics_manager", PASSWORD)) as c,
    ):
        r = c.get("/api/v1/figures", params={"period": "month", "start": "2026-11-01"})
    assert r.status_code == 200, r.text
    data = r.json()
    cli = subprocess.run(
        [
            *(sys.executable, "-m", "sync.cli", "hub", "figures", "--period", "month"),
            *("--start", "2026-11-01", "--json", "--database-url", live.db_url),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert data == json.loads(cli.stdout)
    by_city = {c["city_code"]: c for c in data["cities"]}
    # Ingested at 02:00 UTC: 10:00 in the federation's zone, on the CLI as on the API.
    assert by_city[CORRECTED]["received_at"] == "2026-12-05T10:00:00+08:00"
    assert list(by_city) == CODES
    assert by_city[SILENT]["missing"] is True and "complaints_received" not in by_city[SILENT]
    assert by_city[CORRECTED]["revision"] == 2
    for code in CODES:
        if code != SILENT:
            assert by_city[code]["complaints_received"] == expected_complaints(code, NOVEMBER)
    total = sum(expected_complaints(c, NOVEMBER) for c in CODES if c != SILENT)
    assert data["province"]["complaints_received"] == total
    assert data["province"]["cities_missing"] == [SILENT]
    # KPIs from the summed counts, never averaged.
    k = data["province"]["kpis"]["in_time_closure_rate"]
    assert k["numerator"] == sum(by_city[c]["closed_in_time"] for c in CODES if c != SILENT)
    assert k["rate"] == pytest.approx(k["numerator"] / k["denominator"])


def test_comparison_ranks_and_trend_series(live: Live) -> None:
    with live.api("supervisor") as c:
        comp = c.get("/api/v1/comparison", params={"period": "month", "start": "2026-11-01"})
        trend = c.get(
            "/api/v1/trend",
            params={
                "kpi": "satisfaction_rate",
                "period": "month",
                "last": "2026-11-01",
                "cities": [CODES[1]],
            },
        )
    assert comp.status_code == 200 and trend.status_code == 200, (comp.text, trend.text)
    rows = {r["city_code"]: r for r in comp.json()["rows"]}
    ranked = sorted(
        (r["kpis"]["satisfaction_rate"]["rate"], code)
        for code, r in rows.items()
        if not r["missing"]
    )
    best = ranked[-1][1]
    assert rows[best]["ranks"]["satisfaction_rate"] == 1
    assert "satisfaction_rate" not in rows[SILENT]["ranks"]
    t = trend.json()
    assert len(t["periods"]) == 12 and t["periods"][-1] == "2026-11-01"
    assert [p["cities_reporting"] for p in t["province"][-2:]] == [14, 13]
    assert t["province"][0]["rate"] is None  # no reports a year ago: null, not 0
    assert t["cities"][CODES[1]][-1]["rate"] == pytest.approx(
        rows[CODES[1]]["kpis"]["satisfaction_rate"]["rate"]
    )
    # The open overtime count: missing where nobody reported, on the API and in the chart.
    november = sum(expected_complaints(c, NOVEMBER) % 3 for c in CODES if c != SILENT)
    with live.api("supervisor") as c:
        counts = c.get(
            "/api/v1/trend",
            params={"kpi": "overtime_open", "period": "month", "last": "2026-11-01"},
        ).json()["province"]
    assert counts[0]["numerator"] is None
    assert counts[-1]["numerator"] == november
    # The cities repeated or comma-separated: the same lines.
    with live.api("supervisor") as c:
        ask = {"kpi": "overtime_open", "period": "month", "last": "2026-11-01"}
        repeated = c.get("/api/v1/trend", params={**ask, "cities": CODES[:2]}).json()
        joined = c.get("/api/v1/trend", params={**ask, "cities": ",".join(CODES[:2])})
    assert joined.status_code == 200, joined.text
    assert joined.json()["cities"] == repeated["cities"] and set(repeated["cities"]) == set(
        CODES[:2]
    )
    # Report timeliness: a trend and a ranked KPI, judged on the hub's deadlines. Every report
    # arrived on 5 December, after October's and November's deadlines: late (0 on time); the
    # city that sent no November report owed it, and is ranked with the others.
    with live.api("supervisor") as c:
        timely = c.get(
            "/api/v1/trend",
            params={"kpi": "report_timeliness", "period": "month", "last": "2026-11-01"},
        )
        figures = c.get("/api/v1/figures", params={"period": "month", "start": "2026-11-01"})
    assert timely.status_code == 200, timely.text
    last = timely.json()["province"][-1]
    owed = figures.json()["province"]["kpis"]["report_timeliness"]
    assert (last["numerator"], last["denominator"]) == (owed["numerator"], owed["denominator"])
    assert last["numerator"] == 0 and last["denominator"] >= len(CODES)
    assert last["cities_reporting"] == len(CODES)
    assert rows[SILENT]["kpis"]["report_timeliness"]["rate"] == 0.0
    assert {r["ranks"].get("report_timeliness") for r in rows.values()} == {1}  # all tied
    with live.browser("supervisor") as b:
        page = b.get("/trends", params={"period": "month", "last": "2026-11-01"}).text
    charts = json.loads(page.split('id="trend-data"')[1].split(">", 1)[1].split("</script>")[0])
    overtime = next(chart for chart in charts if chart["kpi"] == "overtime_open")
    assert overtime["series"][0]["data"][0] is None
    assert overtime["series"][0]["data"][-1] == november


def test_report_browser_lists_revisions_and_diffs_them(live: Live) -> None:
    with live.api("supervisor") as c:
        r = c.get("/api/v1/reports", params={"city": CORRECTED, "start": "2026-11-01"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert [x["revision"] for x in data["revisions"]] == [1, 2]
    assert [x["latest"] for x in data["revisions"]] == [False, True]
    changes = {d["field"]: d for d in data["diffs"][0]["changes"]}
    assert changes["complaints_received"]["change"] == 5
    assert changes["complaints_received"]["new"] == expected_complaints(CORRECTED, NOVEMBER)
    # Slices are diffed too: 12 -> 17 complaints moved BILL 6 -> 8 and NET 6 -> 9.
    assert changes["category:NET.complaints"] == {
        "field": "category:NET.complaints",
        "old": 6,
        "new": 9,
        "change": 3,
    }
    with live.browser("supervisor") as b:
        page = b.get("/reports", params={"city": CORRECTED, "start": "2026-11-01"}).text
        assert 'id="tbl-report_diff"' in page and "category:NET.complaints" in page


def test_report_browser_names_the_city_and_says_when_two_revisions_are_the_same(
    live: Live,
) -> None:
    """The heading names the city in the page's language (the export in Chinese); a diff
    of two revisions with the same figures says so instead of "no data"."""
    silent = next(c for c in ROSTER if c.code == SILENT)
    corrected = next(c for c in ROSTER if c.code == CORRECTED)
    # The silent city sends its October report again, the same figures as revision 2.
    store = HubStore(live.engine, seq={SILENT: 1})
    store.send(SILENT, stats(OCTOBER, expected_complaints(SILENT, OCTOBER), revision=2))
    with live.browser("supervisor") as b:
        same = {
            lang: b.get("/reports", params={"city": SILENT, "start": "2026-10-01", "lang": lang})
            for lang in ("zh", "en")
        }
        changed = b.get(
            "/reports", params={"city": CORRECTED, "start": "2026-11-01", "lang": "zh"}
        ).text
        export = b.get("/api/v1/export/reports", params={"city": SILENT, "start": "2026-10-01"})
    with live.api("supervisor") as c:
        api = c.get("/api/v1/reports", params={"city": SILENT, "start": "2026-10-01"}).json()
    assert [d["changes"] for d in api["diffs"]] == [[]] and api["city_code"] == SILENT
    zh, en = same["zh"].text, same["en"].text
    assert f"<h2>报表版次 {silent.name_zh} <small" in zh and f"报表版次 {SILENT}" not in zh
    assert f"<h2>Report revisions {silent.name_en} <small" in en
    assert f"Report revisions {SILENT}" not in en
    diff = zh.split("<h2>版次差异")[1].split("</div>")[0]
    assert "两个版次的数字相同" in diff and "没有数据" not in diff
    diff = en.split("<h2>Changes between revisions")[1].split("</div>")[0]
    assert "The two revisions have the same figures" in diff and "No data" not in diff
    # Revisions that differ list the changes.
    assert f"<h2>报表版次 {corrected.name_zh} <small" in changed
    assert 'id="tbl-report_diff"' in changed and "两个版次的数字相同" not in changed
    assert export.status_code == 200
    assert f"报表,报表版次 {silent.name_zh}\r\n" in export.content.decode("utf-8-sig")


# --- roles ----------------------------------------------------------------------------------------

#: Every GET endpoint of /api/v1 and the area it needs (None: any signed-in account).
GETS: list[tuple[str, dict[str, Any], str | None]] = [
    ("/api/v1/me", {}, None),
    ("/api/v1/figures", {"period": "month", "start": "2026-11-01"}, "figures"),
    ("/api/v1/comparison", {"period": "month", "start": "2026-11-01"}, "figures"),
    ("/api/v1/trend", {"kpi": "qa_pass_rate", "period": "month"}, "figures"),
    ("/api/v1/warnings", {"period": "week"}, "figures"),
    ("/api/v1/reports", {"city": CODES[0]}, "reports"),
    ("/api/v1/qa", {}, "qa"),
    ("/api/v1/overtime", {}, "overtime"),
    ("/api/v1/hotspots", {}, "hotspots"),
    ("/api/v1/suggestions", {}, "suggestions"),
    ("/api/v1/quarantine", {}, "quarantine"),
    ("/api/v1/links", {}, "links"),
    *(
        (f"/api/v1/export/{view}", {"format": "csv", "city": CODES[0]}, area)
        for view, area in EXPORT_AREAS.items()
    ),
]


def test_every_endpoint_with_every_role_and_anonymous(live: Live) -> None:
    # Every GET route of the API is in the table (a new endpoint must be added to it).
    routes = {
        r.path for r in api_router.routes if isinstance(r, Route) and "GET" in (r.methods or ())
    }
    assert {p for p, _, _ in GETS} >= routes - {"/api/v1/export/{view}"}
    for who in [None, *ROLES]:
        with live.api(who) as c:
            for path, params, area in GETS:
                r = c.get(path, params=params)
                if who is None:
                    expected = 401
                elif area is None or HubRole(who) in AREAS[area]:
                    expected = 200
                else:
                    expected = 403
                assert r.status_code == expected, (who, path, r.status_code, r.text[:200])
                if expected == 403:
                    assert who in r.json()["detail"]  # names the role refused
            seen = c.post(
                "/api/v1/suggestions/seen", json={"batches": [{"city_code": CODES[0], "seq": 6}]}
            )
            wanted = 401 if who is None else (200 if who == "materials_manager" else 403)
            assert seen.status_code == wanted, (who, seen.text)


def test_personal_data_area_is_the_gm_hotline_only() -> None:
    assert AREAS["personal_data"] == frozenset({HubRole.GM_HOTLINE})


# --- refusals ------------------------------------------------------------------------------------

BAD: list[tuple[str, dict[str, str | list[str]], str]] = [
    ("/api/v1/figures", {"period": "fortnight"}, "period"),
    ("/api/v1/figures", {"period": "month", "start": "2026-11-05"}, "start"),
    ("/api/v1/figures", {"period": "month", "start": "yesterday"}, "start"),
    ("/api/v1/figures", {"period": "week", "start": "2026-11-04"}, "start"),
    ("/api/v1/figures", {"period": "month", "start": "1900-01-01"}, "start"),
    ("/api/v1/comparison", {"period": "year", "start": "2026-02-01"}, "start"),
    ("/api/v1/trend", {"kpi": "happiness"}, "kpi"),
    ("/api/v1/trend", {"cities": ["999999"]}, "cities"),
    ("/api/v1/trend", {"cities": ["abc"]}, "cities"),
    ("/api/v1/trend", {"cities": ["620100,"]}, "cities"),
    ("/api/v1/trend", {"cities": [",".join(["620100"] * 51)]}, "cities"),
    ("/api/v1/trend", {"last": "2026-13-01"}, "last"),
    ("/api/v1/trend", {"period": "month", "last": "2026-11-04"}, "last 2026-11-04"),
    ("/api/v1/trend", {"period": "quarter", "last": "2026-11-01"}, "last 2026-11-01"),
    ("/api/v1/export/trend", {"period": "week", "last": "2026-11-04"}, "last 2026-11-04"),
    ("/api/v1/export/trend", {"last": "0001-01-01"}, "last"),
    ("/api/v1/export/timeliness", {"period": "month", "start": "2026-11-03"}, "start 2026-11-03"),
    ("/api/v1/reports", {}, "city"),
    ("/api/v1/reports", {"city": "123456"}, "city"),
    ("/api/v1/suggestions", {"from": "2026-12-01", "to": "2026-11-01"}, "from"),
    ("/api/v1/suggestions", {"city": "x"}, "city"),
    # Only YYYY-MM-DD text is a date: not a date-time at midnight, not digits.
    ("/api/v1/suggestions", {"from": "20261101"}, "from"),
    ("/api/v1/suggestions", {"to": "2026-11-01T00:00"}, "to"),
    ("/api/v1/figures", {"period": "month", "start": "2026-11-01T00:00"}, "start"),
    ("/api/v1/trend", {"period": "month", "last": "2026-11-01T00:00:00"}, "last"),
    ("/api/v1/quarantine", {"city": "999999"}, "city"),
    ("/api/v1/export/comparison", {"sort": "shoe_size"}, "sort"),
    ("/api/v1/export/comparison", {"format": "pdf"}, "format"),
    ("/api/v1/export/figures", {"sort": "shoe_size"}, "sort"),
    ("/api/v1/export/nothing", {}, "view"),
    ("/api/v1/figures", {"lang": "fr"}, "lang"),
    ("/api/v1/export/figures", {"city": "999999"}, "city"),
    ("/api/v1/export/qa", {"cities": ["999999"]}, "cities"),
]


def test_bad_query_values_are_refused_naming_the_parameter(live: Live) -> None:
    before = _counts(live.engine)
    with live.api("admin") as c:
        for path, params, name in BAD:
            r = c.get(path, params=params)
            assert r.status_code == 422, (path, params, r.status_code, r.text)
            assert name in r.json()["detail"], (path, params, r.json())
    with live.api("materials_manager") as c:
        bad_body = c.post("/api/v1/suggestions/seen", json={"batches": []})
        assert bad_body.status_code == 422 and "batches" in bad_body.json()["detail"]
    # One who may not open the route hears so first, not what is wrong with the query.
    refused: list[tuple[str, str, dict[str, Any]]] = [
        ("announcer", "/api/v1/figures", {"period": "fortnight"}),
        ("announcer", "/api/v1/trend", {"cities": ["999999"]}),
        ("supervisor", "/api/v1/audit", {"from": "2026-13-01"}),
        ("announcer", "/api/v1/export/figures", {"sort": "shoe_size"}),
    ]
    for who, path, params in refused:
        with live.api(who) as c:
            r = c.get(path, params=params)
            assert r.status_code == 403, (who, path, r.status_code, r.text)
    with live.api("admin") as c:
        assert c.post("/api/v1/suggestions/seen", json={"batches": []}).status_code == 403
    with live.api("announcer") as c:  # a view that does not exist is no area: 422 names it
        r = c.get("/api/v1/export/nothing")
        assert r.status_code == 422 and "view" in r.json()["detail"], r.text
    with live.browser("announcer") as b:
        assert b.get("/overview", params={"period": "bogus"}).status_code == 403
        assert b.get("/trends", params={"cities": "999999"}).status_code == 403
    with live.browser("supervisor") as b:
        page = b.get("/comparison", params={"sort": "shoe_size"})
        assert page.status_code == 422 and "sort" in page.text
        page = b.get("/comparison", params={"order": "sideways"})
        assert page.status_code == 422 and "order" in page.text
        for lang in ("fr", "", "de-DE", "zhx"):
            page = b.get("/overview", params={"lang": lang})
            assert page.status_code == 422 and "lang" in page.text, lang
        # A language tag names its language by its first part, in any case.
        for lang, html_lang in (("zh-CN", "zh-CN"), ("EN", "en"), ("en_GB", "en"), ("zh", "zh-CN")):
            page = b.get("/overview", params={"lang": lang})
            assert page.status_code == 200 and f'<html lang="{html_lang}"' in page.text, lang
        page = b.get("/trends", params={"period": "year", "last": "2026-11-01"})
        # The page names the parameter in its language (Chinese by default).
        assert page.status_code == 422 and "截至周期 2026-11-01" in page.text
    assert _counts(live.engine) == before


# --- session, CSRF, throttling -------------------------------------------------------------------


def test_session_cookie_csrf_and_logout(live: Live) -> None:
    with live.browser("materials_manager") as b:
        me = b.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["role"] == "materials_manager"
        body = {"batches": [{"city_code": CODES[0], "seq": 6}]}
        no_token = b.post("/api/v1/suggestions/seen", json=body)
        assert no_token.status_code == 403 and "X-CSRF-Token" in no_token.json()["detail"]
        page = b.get("/suggestions")
        token = csrf_of(page.text)
        form_without = b.post("/suggestions/seen", data={"batch": f"{CODES[0]}:6"})
        assert form_without.status_code == 403
        assert _counts(live.engine)[1] == 0
        ok = b.post("/api/v1/suggestions/seen", json=body, headers={"X-CSRF-Token": token})
        assert ok.status_code == 200 and ok.json() == {"marked": 1}
        out = b.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303
        assert b.get("/api/v1/me").status_code == 401
        assert b.get("/overview").headers["location"].startswith("/login")
    # A tampered cookie is no session.
    with httpx.Client(base_url=live.url, cookies={"fedsync_session": "x.y"}) as c:
        assert c.get("/api/v1/me").status_code == 401


def test_a_disabled_account_is_signed_out_at_its_next_click(live: Live) -> None:
    with live.browser("supervisor") as b:
        assert b.get("/overview").status_code == 200
        set_active(live.engine, staff_id="supervisor", active=False)
        assert b.get("/overview").status_code == 303
    with live.api("supervisor") as c:
        assert c.get("/api/v1/me").status_code == 401


def test_failed_logins_are_throttled_per_account_and_per_address(live: Live) -> None:
    # The fixture's throttle: 3 failures per account, 6 per address, in 5 minutes.
    with httpx.Client(base_url=live.url) as c:
        token = csrf_of(c.get("/login").text)

        def attempt(who: str, password: str, forwarded: str = "") -> httpx.Response:
            headers = {"X-Forwarded-For": forwarded} if forwarded else {}
            form = {"csrf_token": token, "staff_id": who, "password": password}
            r = c.post("/login", data=form, headers=headers)
            assert r.status_code != 403, r.text  # a CSRF refusal would not count as a try
            return r

        for _ in range(3):
            assert attempt("supervisor", "wrong-password").status_code == 401
        locked = attempt("supervisor", PASSWORD)  # even the right password, now
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
        assert LABELS["login_throttled"][0] in locked.text
        # Basic auth on the API counts against the same account.
        with live.api("supervisor") as api:
            assert api.get("/api/v1/me").status_code == 429
        # ...and is audited like a throttled form login (it left no row).
        with live.engine.connect() as conn:
            details = (
                conn.execute(select(AuditEntry.detail).where(AuditEntry.actor == "supervisor"))
                .scalars()
                .all()
            )
        assert "HTTP Basic: throttled" in details and "throttled" in details
        assert attempt("admin", PASSWORD).status_code == 303  # another account is fine
        token = csrf_of(c.get("/login").text)  # signing in issued a new token
        # A header naming another address per attempt does not make them count elsewhere:
        # the peer is the address (a proxy in front counts as one address).
        for n, who in enumerate(("qa", "nobody", "x-1")):
            attempt(who, "wrong-password", forwarded=f"198.51.100.{n + 1}")
        # 6 failures from this address: every account is refused from here.
        assert attempt("announcer", PASSWORD).status_code == 429
        assert attempt("announcer", PASSWORD, forwarded="10.9.8.7").status_code == 429


# --- suggestions ---------------------------------------------------------------------------------


def test_suggestions_are_new_until_a_materials_manager_has_seen_them(live: Live) -> None:
    with live.api("supervisor") as c:
        batches = c.get("/api/v1/suggestions").json()
    assert [(b["city_code"], b["new"]) for b in batches] == [(CODES[0], True)]
    with live.browser("supervisor") as b:
        assert 'id="mark-seen"' not in b.get("/suggestions").text  # not theirs to mark
    with live.browser("materials_manager") as b:
        page = b.get("/suggestions")
        assert 'id="new-count">1<' in page.text and 'class="new"' in page.text
        form = {"csrf_token": csrf_of(page.text), "batch": f"{CODES[0]}:{batches[0]['seq']}"}
        assert b.post("/suggestions/seen", data=form).status_code == 303
        assert 'id="mark-seen"' not in b.get("/suggestions").text
    with live.api("supervisor") as c:
        assert [b["new"] for b in c.get("/api/v1/suggestions").json()] == [False]
        # Paged: the one batch is the first page; the next page is empty.
        assert len(c.get("/api/v1/suggestions", params={"limit": 1}).json()) == 1
        assert c.get("/api/v1/suggestions", params={"limit": 1, "offset": 1}).json() == []
        for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"offset": "x"}):
            r = c.get("/api/v1/suggestions", params=bad)
            (name,) = bad
            assert r.status_code == 422 and name in r.json()["detail"], (bad, r.text)


def test_categories_are_named_beside_their_codes_on_pages_and_in_exports(live: Live) -> None:
    """The suggestion's category NET: its name from the hub's category tree (the packaged
    telecom tree by default), in the page's language and in the Chinese export."""
    with live.browser("materials_manager") as b:
        for lang, name in (("zh", "网络质量"), ("en", "Network quality")):
            page = b.get("/suggestions", params={"lang": lang}).text
            assert 'data-key="category">NET</td>' in page
            assert f'data-key="category_name">{name}</td>' in page
    with live.api("materials_manager") as c:
        exported = c.get("/api/v1/export/suggestions", params={"format": "csv"})
    assert exported.status_code == 200, exported.text[:300]
    _, rows = _csv_table(exported.content)
    assert [(r["分类"], r["分类名称"]) for r in rows] == [("NET", "网络质量")]


def test_a_hub_tree_of_its_own_names_the_categories(tmp_path: Path) -> None:
    """--categories: the hub's own tree; a code it lacks shows by its code alone."""
    from sync.categories import CategoryTree

    tree = tmp_path / "tree.csv"
    tree.write_text(
        "code,parent,name_zh,name_en,complaint_limit_workdays\nNET,,网络,Network,5\n", "utf-8"
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    fill(engine)
    hub = HubWeb(
        engine=engine,
        roster=ROSTER,
        zone=ZoneInfo(TZ),
        now=lambda zone: NOW.astimezone(zone),
        categories=CategoryTree.load(tree),
    )
    table = tables.suggestions_table(
        views.suggestions(hub, None, None, None, None), hub.names("en"), "en",
        hub.category_names("en"),
    )  # fmt: skip
    assert [(r["category"], r["category_name"]) for r in table.rows] == [("NET", "Network")]
    assert hub.category_names("zh").get("BILL") is None


_HEADER = b"code,parent,name_zh,name_en,complaint_limit_workdays\n"


@pytest.mark.parametrize("web", [True, False], ids=["with the web", "without the web"])
@pytest.mark.parametrize(
    ("content", "named"),
    [
        (_HEADER + b"X,Y,x,x,5\n", "line 2: category X has unknown parent Y"),
        (_HEADER + b"N,,\xcd\xf8\xc2\xe7,Network,5\n", "line 2: not UTF-8 text"),  # GBK
        (None, "cannot read categories"),
    ],
    ids=["unknown parent", "not UTF-8", "no such file"],
)
def test_a_bad_category_file_refuses_the_hubs_start(
    tmp_path: Path, content: bytes | None, named: str, web: bool
) -> None:
    tree = tmp_path / "tree.csv"
    if content is not None:
        tree.write_bytes(content)
    done = subprocess.run(
        [
            sys.executable, "-m", "sync.cli", "hub", *(["--http-port", "8099"] if web else []),
            "--categories", str(tree),
            "--database-url", f"sqlite:///{tmp_path / 'hub.sqlite'}",
            "--pki-dir", str(tmp_path / "no-pki"),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and str(tree) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "hub.sqlite").exists()  # refused before the store was opened


def test_marking_unknown_suggestion_batches_seen_is_refused(live: Live) -> None:
    before = _counts(live.engine)
    with live.browser("materials_manager") as b:
        token = csrf_of(b.get("/suggestions").text)
        header = {"X-CSRF-Token": token}
        known = {"city_code": CODES[0], "seq": 6}
        for batches in (
            [{"city_code": CODES[0], "seq": 999}],  # no such record
            [{"city_code": CODES[1], "seq": 1}],  # a statistics report, not a batch
            [known, {"city_code": CODES[2], "seq": 77}],  # one good, one unknown: neither
            [{"city_code": CODES[0], "seq": 2**63}],  # beyond any seq the store can hold
            [{"city_code": CODES[0], "seq": "6"}],  # a seq is a JSON integer, not text
            [{"city_code": CODES[0], "seq": 6.0}],
        ):
            r = b.post("/api/v1/suggestions/seen", json={"batches": batches}, headers=header)
            assert r.status_code == 422, (batches, r.text)
            assert r.json()["detail"].startswith("batches"), r.json()
        for value in (f"{CODES[0]}:999", "abc", f"{CODES[0]}:x", "", f"{CODES[0]}:{2**63}"):
            page = b.post("/suggestions/seen", data={"csrf_token": token, "batch": value})
            assert page.status_code == 422 and "批次" in page.text, (value, page.status_code)
        empty = b.post("/suggestions/seen", data={"csrf_token": token})
        assert empty.status_code == 422 and "建议批次：请至少选择一个建议批次" in empty.text
    assert _counts(live.engine) == before
    with live.api("supervisor") as c:
        assert [x["new"] for x in c.get("/api/v1/suggestions").json()] == [True]


def test_the_category_filter_takes_a_path_label_and_looks_past_the_newest_batches(
    live: Live,
) -> None:
    # The silent city (one record so far) sends an old batch of its own category, then 105
    # newer ones of another: more than one page of batches stands in front of the old one.
    store = HubStore(live.engine, seq={SILENT: 1})

    def batch(day: str, number: int, category: str) -> pb.SuggestionBatch:
        return pb.SuggestionBatch(
            batch_date=day,
            batch_number=number,
            classified_by="clerk-9",
            suggestions=[pb.Suggestion(ticket_id=f"Q{number}", category=category, content="x")],
        )

    store.send(SILENT, batch("2026-10-15", 1, "SVC.STORE"))
    store.send(SILENT, *(batch("2026-11-20", n, "BILL.PLAN") for n in range(2, 107)))
    with live.api("materials_manager") as c:
        for asked in ("SVC", "SVC.STORE", "营业服务 / 营业厅 / SVC.STORE", "营业厅 / SVC "):
            found = c.get("/api/v1/suggestions", params={"category": asked}).json()
            assert [(b["city_code"], b["batch_number"]) for b in found] == [(SILENT, 1)], asked
        plan = c.get("/api/v1/suggestions", params={"category": "资费 / 套餐变更 / BILL.PLAN"})
        assert len(plan.json()) == 100  # the page still shows at most 100 batches
        assert c.get("/api/v1/suggestions", params={"category": "SVC.ST"}).json() == []
    with live.browser("materials_manager") as b:
        page = b.get("/suggestions", params={"category": "营业服务 / 营业厅 / SVC.STORE"}).text
        assert "SVC.STORE" in page and "BILL.PLAN" not in page


def test_times_are_in_the_federations_zone_on_the_api_pages_and_exports(live: Live) -> None:
    # Every record of the fixture was received at 2026-12-05 02:00 UTC: 10:00 in Shanghai.
    local = "2026-12-05T10:00:00+08:00"
    with live.api("admin") as c:
        figures = c.get("/api/v1/figures").json()
        assert {x["received_at"] for x in figures["cities"] if not x["missing"]} == {local}
        reports = c.get("/api/v1/reports", params={"city": CORRECTED}).json()
        assert {r["received_at"] for r in reports["revisions"]} == {local}
        assert {q["received_at"] for q in c.get("/api/v1/quarantine").json()} == {local}
        links = c.get("/api/v1/links").json()
        assert {x["last_contact"] for x in links if x["last_contact"]} == {local}
        batch = c.get("/api/v1/suggestions").json()[0]
        assert batch["received_at"] == local
        audit = c.get("/api/v1/audit").json()
        assert audit and all(e["at"].endswith("+08:00") for e in audit)
        for view, column in (
            ("quarantine", "接收时间"),
            ("links", "最近联系"),
            ("reports", "接收时间"),
        ):
            params = {"city": CORRECTED} if view == "reports" else {}
            body = c.get(f"/api/v1/export/{view}", params=params).content
            rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
            header = next(i for i, r in enumerate(rows) if column in r)
            at = rows[header].index(column)
            shown = {r[at] for r in rows[header + 1 :] if r and r[at]}
            assert shown == {"2026-12-05 10:00"}, (view, shown)
    with live.browser("admin") as b:
        for path in ("/quarantine", "/links", f"/reports?city={CORRECTED}"):
            page = b.get(path).text
            assert "2026-12-05 10:00" in page and "02:00" not in page, path


def test_a_filter_form_sent_with_its_dates_empty_filters_on_no_date(live: Live) -> None:
    # A browser sends every field of a GET form: a date left empty is no date, not an error.
    with live.browser("admin") as b:
        blank = {
            "/suggestions": {"city": "", "category": "", "from": "", "to": ""},
            "/audit": {"actor": "", "action": "", "from": "", "to": ""},
            "/overview": {"period": "month", "start": ""},
            "/comparison": {"period": "month", "start": ""},
            "/trends": {"period": "month", "last": ""},
        }
        for path, query in blank.items():
            page = b.get(path, params=query)
            assert page.status_code == 200, (path, page.text[:300])
        assert "增加夜间营业厅" in b.get("/suggestions", params=blank["/suggestions"]).text
        assert (
            'id="period-label">月 2026-11-01' in b.get("/overview", params=blank["/overview"]).text
        )
        # A date that is there must still be a date.
        for path, name in (("/suggestions", "from"), ("/audit", "to"), ("/overview", "start")):
            page = b.get(path, params={name: "2026-11"})
            assert page.status_code == 422 and name in page.text, path


def test_the_suggestions_export_is_the_page_as_filtered(live: Live) -> None:
    store = HubStore(live.engine, seq={SILENT: 1})
    store.send(
        SILENT,
        pb.SuggestionBatch(
            batch_date="2026-10-15",
            batch_number=1,
            classified_by="clerk-9",
            suggestions=[pb.Suggestion(ticket_id="Q1", category="SVC.STORE", content="延长营业")],
        ),
    )

    def contents(body: bytes) -> list[str]:
        return [r["建议内容"] for r in _csv_table(body)[1]]

    with live.browser("materials_manager") as b:
        for query, shown in (
            ({"category": "SVC"}, ["延长营业"]),
            ({"from": "2026-11-01", "to": "2026-11-30"}, ["增加夜间营业厅"]),
            ({"city": SILENT}, ["延长营业"]),
            # The filter form sent with nothing filled in: every batch, newest first.
            ({"city": "", "category": "", "from": "", "to": ""}, ["增加夜间营业厅", "延长营业"]),
        ):
            page = b.get("/suggestions", params=query).text
            link = re.search(r'id="export-suggestions-csv" href="([^"]+)"', page)
            assert link, "no CSV link on the suggestions page"
            r = b.get(link.group(1).replace("&amp;", "&"))
            assert r.status_code == 200, (query, r.text)
            assert contents(r.content) == shown, query


# --- exports --------------------------------------------------------------------------------------


def _csv_table(body: bytes) -> tuple[list[list[str]], list[dict[str, str]]]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    start = next(i for i, r in enumerate(rows) if r and r[0] == "地市代码")
    header = rows[start]
    return rows[:start], [dict(zip(header, r, strict=True)) for r in rows[start + 1 :]]


def test_exports_carry_period_time_chinese_headers_and_the_same_numbers(live: Live) -> None:
    params = {"period": "month", "start": "2026-11-01"}
    with live.api("statistics_manager") as c:
        comp = c.get("/api/v1/comparison", params=params).json()
        as_csv = c.get("/api/v1/export/comparison", params={**params, "format": "csv"})
        as_xlsx = c.get("/api/v1/export/comparison", params={**params, "format": "xlsx"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    preamble, rows = _csv_table(as_csv.content)
    flat = [cell for r in preamble for cell in r]
    assert "统计周期" in flat and "月 2026-11-01 至 2026-11-30" in flat
    assert "生成时间" in flat and "2026-12-05 10:00:00 北京时间 UTC+8" in flat
    expected = {r["city_code"]: r for r in comp["rows"]}
    assert [r["地市代码"] for r in rows] == CODES
    for r in rows:
        api_row = expected[r["地市代码"]]
        if api_row["missing"]:
            assert r["投诉量"] == ""
            continue
        assert int(r["投诉量"]) == api_row["complaints_received"]
        assert float(r["满意率"]) == pytest.approx(
            api_row["kpis"]["satisfaction_rate"]["rate"], abs=5e-5
        )
    book = load_workbook(io.BytesIO(as_xlsx.content))
    sheet = book.active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    head = next(i for i, r in enumerate(values) if r and r[0] == "地市代码")
    assert values[head - 2][0] == "生成时间" and "2026-11-01" in str(values[head - 3][1])
    xlsx_header = values[head]
    for line in values[head + 1 :]:
        cells = dict(zip(xlsx_header, line, strict=True))
        api_row = expected[cells["地市代码"]]
        if not api_row["missing"]:
            assert cells["投诉量"] == api_row["complaints_received"]


def test_city_text_that_looks_like_a_formula_stays_text_in_exports(live: Live) -> None:
    formula = '=HYPERLINK("http://evil.example/","点击")'
    store = HubStore(live.engine, seq={SILENT: 1})
    store.send(
        SILENT,
        pb.SuggestionBatch(
            batch_date="2026-11-29",
            batch_number=1,
            classified_by="@clerk",
            suggestions=[pb.Suggestion(ticket_id="Q1", category="SVC", content=formula)],
        ),
    )
    with live.api("materials_manager") as c:
        csv_body = c.get("/api/v1/export/suggestions", params={"city": SILENT}).content
        xlsx_body = c.get(
            "/api/v1/export/suggestions", params={"city": SILENT, "format": "xlsx"}
        ).content
    (row,) = _csv_table(csv_body)[1]
    assert row["建议内容"] == "'" + formula and row["资料员"] == "'@clerk"
    sheet = load_workbook(io.BytesIO(xlsx_body)).active
    assert sheet is not None
    cells = [cell for line in sheet.iter_rows() for cell in line if cell.value == formula]
    assert len(cells) == 1 and cells[0].data_type == "s"


def test_every_export_opens_in_both_formats(live: Live) -> None:
    with live.api("admin") as c:
        for view in EXPORT_AREAS:
            for fmt in ("csv", "xlsx"):
                r = c.get(
                    f"/api/v1/export/{view}",
                    params={
                        "format": fmt,
                        "city": CORRECTED,
                        "period": "month",
                        "start": "2026-11-01",
                        "last": "2026-11-01",
                    },
                )
                assert r.status_code == 200, (view, fmt, r.text[:200])
                if fmt == "xlsx":
                    sheet = load_workbook(io.BytesIO(r.content)).active
                    assert sheet is not None and sheet["A1"].value == "报表"
                else:
                    assert r.content.decode("utf-8-sig").startswith("报表,")
    with live.api("admin") as c:
        qa = c.get("/api/v1/export/qa", params={"format": "csv"})
        _, rows = _csv_table(qa.content)
        lanzhou = next(r for r in rows if r["地市代码"] == CODES[0])
        assert lanzhou["抽检量"] == "20" and lanzhou["合格率"] == "0.85"
        # A city without a QA report is marked missing, not a row of blanks.
        statuses = {r["地市代码"]: r["状态"] for r in rows}
        assert statuses[CODES[0]] == "已报" and statuses[CODES[1]] == "缺报"
        reporting = sum(1 for code in CODES if statuses[code] == "已报")
        assert statuses[""] == f"{reporting}/{len(CODES)}"
        overtime = c.get("/api/v1/export/overtime", params={"format": "csv"})
        _, rows = _csv_table(overtime.content)
        assert [r["赔偿金额(元)"] for r in rows if r["承办单位"] == "小计"] == ["170.0"]


def test_qa_defects_are_named_in_the_pages_language_and_in_chinese_in_the_exports(
    live: Live,
) -> None:
    """The defect kinds a city's QA report counts (LATE 2, ATTITUDE 1), by their names."""
    with live.browser("supervisor") as b:
        zh = b.get("/qa", params={"start": "2026-11-01"}).text
        en = b.get("/qa", params={"start": "2026-11-01", "lang": "en"}).text
    assert zh.count('data-key="defects">服务态度: 1, 超时处理: 2<') == 2  # the city and total
    assert "attitude" not in zh and "late:" not in zh
    assert en.count('data-key="defects">attitude: 1, late: 2<') == 2
    with live.api("supervisor") as c:
        _, rows = _csv_table(c.get("/api/v1/export/qa", params={"lang": "en"}).content)
        sheet = load_workbook(
            io.BytesIO(c.get("/api/v1/export/qa", params={"format": "xlsx"}).content)
        ).active
        api = c.get("/api/v1/qa").json()
    assert [r["差错(类型:数量)"] for r in rows if r["地市代码"] == CODES[0]] == [
        "服务态度: 1, 超时处理: 2"
    ]
    assert sheet is not None
    assert "服务态度: 1, 超时处理: 2" in [c.value for row in sheet.iter_rows() for c in row]
    # The API keeps the kinds' identifiers.
    assert api["province"]["defects"] == {"attitude": 1, "late": 2}
    # Every kind has its name, in the cities' consoles' words.
    every = {"no_callback": 1, "other_defect": 1, "wrong_answer": 1, "wrong_category": 1}
    assert tables.defects_text(every, "zh") == "未回访: 1, 其他差错: 1, 答复错误: 1, 分类错误: 1"
    assert tables.defects_text({**every, "incomplete_record": 1}, "en") == (
        "no callback: 1, other defect: 1, wrong answer: 1, wrong category: 1, incomplete record: 1"
    )


def test_overtime_marks_a_city_without_a_report_in_its_status_not_as_a_branch(
    live: Live,
) -> None:
    """Only the first city sends an overtime report: the others are missing, in the status
    column, so filtering the export on the branch finds branches only."""
    with live.api("gm_hotline") as c:
        _, rows = _csv_table(c.get("/api/v1/export/overtime").content)
        sheet = load_workbook(
            io.BytesIO(c.get("/api/v1/export/overtime", params={"format": "xlsx"}).content)
        ).active
    assert {r["承办单位"] for r in rows} == {"城关分公司", "七里河分公司", "小计", ""}
    assert {r["地市代码"] for r in rows if r["状态"] == "缺报"} == set(CODES[1:])
    assert {r["承办单位"] for r in rows if r["状态"] == "缺报"} == {""}
    assert [r["状态"] for r in rows if r["地市代码"] == CODES[0]] == ["已报"] * 3
    assert rows[-1]["地市"] == "全省合计" and rows[-1]["状态"] == f"1/{len(CODES)}"
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    start = next(i for i, r in enumerate(cells) if r[0] == "地市代码")
    branch, status = cells[start].index("承办单位"), cells[start].index("状态")
    assert "缺报" not in {r[branch] for r in cells[start + 1 :]}
    assert [r[status] for r in cells[start + 1 :]].count("缺报") == len(CODES) - 1
    with live.browser("gm_hotline") as b:
        zh = b.get("/overtime", params={"start": "2026-11-01"}).text
        en = b.get("/overtime", params={"start": "2026-11-01", "lang": "en"}).text
    silent = zh.split(f'data-key="city_code">{CODES[1]}<')[1].split("</tr>")[0]
    assert 'data-key="status">缺报<' in silent and 'data-key="branch">-<' in silent
    silent = en.split(f'data-key="city_code">{CODES[1]}<')[1].split("</tr>")[0]
    assert 'data-key="status">missing<' in silent and 'data-key="branch">-<' in silent


# --- pages and languages -------------------------------------------------------------------------

PAGES = [
    ("/overview", "figures"),
    ("/comparison", "figures"),
    ("/trends", "figures"),
    ("/reports", "reports"),
    ("/hotspots", "hotspots"),
    ("/overtime", "overtime"),
    ("/qa", "qa"),
    ("/suggestions", "suggestions"),
    ("/quarantine", "quarantine"),
    ("/links", "links"),
]


def test_pages_follow_the_role_and_speak_both_languages(live: Live) -> None:
    for who in ROLES:
        with live.browser(who) as b:
            for path, area in PAGES:
                zh = b.get(path, params={"lang": "zh"})
                if HubRole(who) not in AREAS[area]:
                    assert zh.status_code == 403, (who, path)
                    continue
                assert zh.status_code == 200, (who, path, zh.text[:300])
                assert 'lang="zh-CN"' in zh.text and "链路状态" in zh.text
                en = b.get(path, params={"lang": "en"})
                assert 'lang="en"' in en.text and "Link health" in en.text, (who, path)
                assert "链路状态" not in en.text
            menu = b.get("/links").text
            for path, area in PAGES:
                assert (f'href="{path}"' in menu) == (HubRole(who) in AREAS[area]), (who, path)


def test_a_first_visit_speaks_the_browsers_language_until_one_is_chosen(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        # No choice yet: Chinese, unless the browser ranks English above Chinese.
        assert '<html lang="zh-CN"' in c.get("/login").text
        english = {"Accept-Language": "en-US,en;q=0.9,zh-CN;q=0.8"}
        assert '<html lang="en"' in c.get("/login", headers=english).text
        chinese = {"Accept-Language": "fr-FR, zh;q=0.5, en;q=0.4"}
        assert '<html lang="zh-CN"' in c.get("/login", headers=chinese).text
        refused = {"Accept-Language": "en;q=0, zh;q=0.1"}
        assert '<html lang="zh-CN"' in c.get("/login", headers=refused).text
        # A choice (?lang=, then its cookie) wins over the header.
        assert '<html lang="zh-CN"' in c.get("/login", params={"lang": "zh-CN"}).text
        assert '<html lang="zh-CN"' in c.get("/login", headers=english).text


def test_overview_shows_every_city_the_missing_one_and_the_quarantine(live: Live) -> None:
    with live.browser("supervisor") as b:
        page = b.get("/overview", params={"period": "month", "start": "2026-11-01"}).text
        for code in CODES:
            assert f'data-city="{code}"' in page
        assert "嘉峪关" in page and "甘南" in page  # names from the roster
        assert (
            'id="missing-reports"' in page and "甘南" in page.split('id="missing-reports"')[1][:400]
        )
        total = sum(expected_complaints(c, NOVEMBER) for c in CODES if c != SILENT)
        assert f'data-key="complaints_received">{total}<' in page
        # November's monthly reports were due by the 3rd working day of December and came
        # on the 5th: late; the silent city's is missing.
        late = page.split('id="tbl-timeliness"')[1].split("</table>")[0]
        assert f'data-city="{SILENT}"' in late and "缺报" in late and "迟报" in late
        quarantine = b.get("/quarantine").text
        assert "surveyed = " in quarantine and CODES[1] in quarantine
        october = b.get("/overview", params={"start": OCTOBER.isoformat()}).text
        assert "全部地市已报" in october
        # Every table of the overview links its export, and each link gives its file.
        for view in ("figures", "timeliness", "warnings", "links"):
            for fmt in ("csv", "xlsx"):
                found = re.search(f'id="export-{view}-{fmt}" href="([^"]+)"', page)
                assert found, (view, fmt)
                r = b.get(html.unescape(found.group(1)))
                assert r.status_code == 200 and f".{fmt}" in r.headers["content-disposition"]
        timeliness = b.get("/api/v1/export/timeliness?period=month&start=2026-11-01").content
        assert "缺报" in timeliness.decode("utf-8-sig")
    # A role that may not see the link-health page gets no link to its export.
    with live.browser("statistics_manager") as b:
        page = b.get("/overview", params={"period": "month", "start": "2026-11-01"}).text
        assert 'id="export-timeliness-csv"' in page
        assert ('id="export-links-csv"' in page) == (HubRole.STATISTICS_MANAGER in AREAS["links"])


def test_overview_kpi_changes_are_points_and_the_open_overtime_change_tickets(
    live: Live,
) -> None:
    """Rates change in percentage points (one decimal); overtime_open, a count, in tickets."""
    november = sum(expected_complaints(c, NOVEMBER) % 3 for c in CODES if c != SILENT)
    october = sum(expected_complaints(c, OCTOBER) % 3 for c in CODES)
    with live.browser("supervisor") as b:
        page = b.get("/overview", params={"period": "month", "start": "2026-11-01"}).text
        table = page.split('data-kpi="overtime_open"')[0].rsplit("<table", 1)[1]
        assert "变化(百分点;超时未结:件)" in table
        row = page.split('data-kpi="overtime_open"')[1].split("</tr>")[0]
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
        assert cells[-3:] == [str(november), str(october), f"{november - october:+d}"]
        rate_row = page.split('data-kpi="in_time_closure_rate"')[1].split("</tr>")[0]
        change = re.findall(r"<td[^>]*>([^<]*)</td>", rate_row)[-1]
        assert re.fullmatch(r"[+-]\d+\.\d", change), change
        en = b.get("/overview", params={"start": "2026-11-01", "lang": "en"}).text
        assert "Change (points; overtime open: tickets)" in en


def test_every_template_label_has_both_languages() -> None:
    keys: set[str] = set()
    for template in TEMPLATES:
        keys |= set(re.findall(r"""\bt\('([a-z_]+)'\)""", template.read_text("utf-8")))
    assert keys
    assert not sorted(keys - set(LABELS))
    assert all(zh and en for zh, en in LABELS.values())


def test_hub_staff_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    base = [sys.executable, "-m", "sync.cli", "hub", "staff"]
    added = subprocess.run(
        [
            *base,
            "add",
            "--id",
            "sup",
            "--name",
            "督查",
            "--role",
            "supervisor",
            "--password-stdin",
            "--database-url",
            db,
        ],
        input="long-enough-1\n",
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    refused = subprocess.run(
        [
            *base,
            "add",
            "--id",
            "xx",
            "--name",
            "督查二",
            "--role",
            "supervisor",
            "--password-stdin",
            "--database-url",
            db,
        ],
        capture_output=True,
        text=True,
        input="short\n",
    )
    assert refused.returncode == 2 and "at least 12" in refused.stderr
    secret = ["--password-stdin", "--database-url", db]
    for name in ("  ", "督\x07查"):
        unnamed = subprocess.run(
            [*base, "add", "--id", "yy", "--name", name, "--role", "supervisor", *secret],
            capture_output=True,
            text=True,
            input="long-enough-2\n",
        )
        assert unnamed.returncode == 2 and "name: " in unnamed.stderr, unnamed.stderr
        assert "Traceback" not in unnamed.stderr
    disabled = subprocess.run(
        [*base, "disable", "--id", "sup", "--database-url", db], capture_output=True, text=True
    )
    assert disabled.returncode == 0, disabled.stderr
    listed = subprocess.run(
        [*base, "list", "--json", "--database-url", db], capture_output=True, text=True, check=True
    )
    assert json.loads(listed.stdout) == [
        {"id": "sup", "name": "督查", "role": "supervisor", "active": False}
    ]
    from province_hub.staff import authenticate

    assert authenticate(make_engine(db), "sup", "long-enough-1") is None


def test_failed_logins_are_counted_in_the_store_across_replicas(databases: Any) -> None:
    """Two hub replicas on one store share the failed-login limits, per account and
    address, per account, per address; a success clears that address's; old failures
    leave the window; a made-up account name of any length is counted, not a 500."""
    from province_hub.store import LoginFailure
    from province_hub.web.login_failures import StoreLoginThrottle
    from sync.web.auth import TooManyAttempts

    engine = make_engine(databases("throttle"))
    create_schema(engine)
    clock = [1_000_000.0]
    one, two = (
        StoreLoginThrottle(
            engine,
            account_limit=3,
            account_total_limit=5,
            address_limit=4,
            window=300,
            clock=lambda: clock[0],
            secret=b"s" * 32,
        )
        for _ in range(2)
    )
    one.failed("li", "10.0.0.1")
    two.failed("li", "10.0.0.1")
    one.check("li", "10.0.0.1")  # two failures: still allowed
    two.failed("li", "10.0.0.1")
    for replica in (one, two):
        with pytest.raises(TooManyAttempts) as exc:
            replica.check("li", "10.0.0.1")
        assert "this account from this address" in str(exc.value) and exc.value.retry_after > 0
    one.check("li", "10.0.0.9")  # the owner elsewhere is not locked out by that address
    one.failed("li", "10.0.0.2")
    two.failed("li", "10.0.0.3")  # five failures of the account in all, from three places
    for replica in (one, two):
        with pytest.raises(TooManyAttempts, match="for this account;"):
            replica.check("li", "10.0.0.9")
    one.check("wang", "10.0.0.9")  # another account, another address
    one.failed("wang", "10.0.0.1")
    with pytest.raises(TooManyAttempts, match="address"):
        one.check("sun", "10.0.0.1")  # 4 failures from this address, two accounts
    # A success clears that address's failures only: the guesses from elsewhere still
    # lock the account (the owner's success must not give a guesser a fresh count).
    two.succeeded("li", "10.0.0.1")
    with pytest.raises(TooManyAttempts, match="for this account;"):
        one.check("li", "10.0.0.1")
    two.failed("z" * 5000, "2001:db8::1")  # stored under a bounded key
    # What was typed as the account (at times a password) is not kept, only a keyed hash.
    one.failed("MySecretPassw0rd!", "10.0.0.7")
    with engine.connect() as conn:
        kept = conn.execute(select(LoginFailure.key)).scalars().all()
    assert not any("MySecretPassw0rd" in key or "10.0.0" in key for key in kept), kept
    assert {key[:2] for key in kept} == {"p:", "a:", "i:"}
    clock[0] += 301
    one.check("sun", "10.0.0.1")  # the window moved past every failure
    engine.dispose()


def test_pages_say_periods_and_link_states_in_their_language(live: Live) -> None:
    """An English page named its period in Chinese (月 … 至 …); a Chinese page showed link
    states as the store keeps them (connected, never)."""
    with live.browser("supervisor") as b:
        zh = b.get("/overview", params={"lang": "zh"}).text
        links_zh = b.get("/links", params={"lang": "zh"}).text
        en = b.get("/overview", params={"lang": "en"}).text
    assert " 至 " in zh and " 至 " not in en
    assert re.search(r"month \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}", en)
    assert "从未连接" in links_zh or "已连接" in links_zh or "失联" in links_zh
    assert not re.search(r'data-key="state">(connected|never|silent)<', links_zh)
    assert re.search(r'data-key="state">(从未连接|已连接|失联)<', links_zh)


def test_the_overview_kpi_block_has_report_timeliness(live: Live) -> None:
    """The province's KPI block listed every KPI but report timeliness (it stood only in
    the timeliness table's total)."""
    with live.browser("supervisor") as b:
        page = b.get("/overview", params={"lang": "zh"}).text
    block = page.split('id="tbl-province_kpis"', 1)[1].split("</table>", 1)[0]
    assert "报表及时率" in block
    with live.api("supervisor") as c:
        figures = c.get("/api/v1/figures", params={"period": "month"}).json()
    timeliness = figures["province"]["kpis"]["report_timeliness"]
    assert f">{timeliness['numerator']}<" in block.split("报表及时率", 1)[1]


def test_a_report_not_owed_for_the_period_reads_so_not_missing(live: Live) -> None:
    """QA is owed monthly (the default `due_reports`): a week's QA picture has nobody
    missing; a month's has the cities without a report missing, as owed."""
    with live.api("supervisor") as c:
        week = c.get("/api/v1/qa", params={"period": "week", "start": "2026-11-16"}).json()
        month = c.get("/api/v1/qa", params={"period": "month", "start": "2026-10-01"}).json()
    assert {city["report_status"] for city in week["cities"]} == {"not_owed"}
    assert "missing" in {city.get("report_status") for city in month["cities"]}
    with live.browser("supervisor") as b:
        page = b.get("/qa", params={"period": "week", "start": "2026-11-16"}).text
    assert "无需上报" in page and "缺报" not in page
