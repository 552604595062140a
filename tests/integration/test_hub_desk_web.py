"""The province's desks in the supervisor web over a real uvicorn, on SQLite and PostgreSQL:
the escalation desk (queue ages in working days, overdue, filters and sorts, take, note,
contact, resolve → an ESCALATION_RESOLUTION notice to that city only), masking of customer
data for every role but the GM hotline, ticket traces, the audit page; the role matrix of
every new page and endpoint, CSRF refusals, bad input refused naming the field with nothing
changed; and every state-changing route of the hub web writing its audit row.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select, update
from starlette.routing import Route

from province_hub import audit, desk_views, notices, services
from province_hub.audit import Action
from province_hub.staff import HubRole
from province_hub.store import AuditEntry, DeskCase, DeskEntry, Notice, NoticeDelivery
from province_hub.web.access import AREAS
from sync.calendar import WorkCalendar
from sync.db import make_engine
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.web.throttle import LoginThrottle
from tests.conftest import serving
from tests.hub_web_support import BATCH_SEQ, CODES, NOW, PASSWORD, TZ, HubStore, fill, web_app

ROLES = [r.value for r in HubRole]
#: NOW of the web (tests/hub_web_support.py) is Saturday 2026-12-05 10:00 in Shanghai.
OLD, FRESH = CODES[2], CODES[3]
NAME, PHONE = "张三丰", "13812345678"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def escalate(
    store: HubStore,
    city: str,
    ticket: str,
    *,
    escalated: str,
    registered: str,
    category: str = "BILL.DISPUTE",
) -> int:
    """An escalation as a city sends it, through the hub's real ingest; its seq."""
    body = pb.Escalation(
        ticket_id=ticket,
        kind=pb.COMPLAINT,
        category=category,
        channel="phone",
        tier=pb.VIP,
        reason="客户不接受地市处理",
        # What an operator types: the customer's name and numbers inside free text.
        content=f"{NAME}来电，话费争议，另留固话 0931-8456789",
        customer_name=NAME,
        customer_phone=PHONE,
        history=[pb.HistoryEntry(actor="op-1", action="registered", note=f"受理，回拨 {PHONE}")],
    )
    body.registered_at.FromDatetime(_at(registered))
    store.seq[city] = store.seq.get(city, 0) + 1
    envelope = build_envelope(
        city_code=city, epoch="e" * 32, seq=store.seq[city], body=body, created_at=_at(escalated)
    )
    services.ingest_batch(  # received as sent, on the test's calendar (not today's)
        store.engine,
        city_code=city,
        envelopes=[envelope],
        tz_name=TZ,
        max_batch=10,
        now=_at(escalated),
    )
    return store.seq[city]


@dataclass
class Live:
    url: str
    engine: Engine
    old: int
    fresh: int

    def api(self, who: str | None) -> httpx.Client:
        auth = None if who is None else (who, PASSWORD)
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    @contextmanager
    def browser(self, who: str) -> Iterator[tuple[httpx.Client, str]]:
        """Signed in through the login form; the session's CSRF token."""
        with httpx.Client(base_url=self.url, timeout=30) as c:
            form = {"csrf_token": csrf_of(c.get("/login").text), "staff_id": who}
            r = c.post("/login", data={**form, "password": PASSWORD, "next": "/"})
            assert r.status_code == 303, r.text
            yield c, csrf_of(c.get("/links").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def live(databases: Any) -> Iterator[Live]:
    engine = make_engine(databases("deskweb"))
    store = fill(engine)
    old = escalate(
        store,
        OLD,
        "101",
        escalated="2026-11-23T10:00:00+08:00",
        registered="2026-11-20T09:00+08:00",
    )
    fresh = escalate(
        store,
        FRESH,
        "202",
        escalated="2026-12-03T15:00:00+08:00",
        registered="2026-12-02T09:00+08:00",
        category="NET.BROADBAND",
    )
    with serving(web_app(engine, throttle=LoginThrottle(account_limit=50, address_limit=100))) as u:
        yield Live(u, engine, old, fresh)
    engine.dispose()


def _state(engine: Engine) -> tuple[Any, ...]:
    """Everything a desk action could change (audit rows apart)."""
    with engine.connect() as conn:
        cases = conn.execute(
            select(DeskCase.assignee, DeskCase.resolved_at, DeskCase.outcome).order_by(
                DeskCase.city_code, DeskCase.seq
            )
        ).all()
        return (
            tuple(cases),
            conn.execute(select(func.count()).select_from(DeskEntry)).scalar_one(),
            conn.execute(select(func.count()).select_from(Notice)).scalar_one(),
        )


def _audit(engine: Engine) -> list[audit.Entry]:
    return list(audit.entries(engine, limit=10_000))


# --- the queue --------------------------------------------------------------------------------


def test_queue_ages_in_working_days_overdue_filters_and_sorts(live: Live) -> None:
    with live.api("supervisor") as c:
        rows = c.get("/api/v1/desk").json()
        assert [(r["city_code"], r["ticket_id"]) for r in rows] == [(OLD, "101"), (FRESH, "202")]
        old, fresh = rows
        # Escalated Monday 23 Nov; now Saturday 5 Dec: 4 + 5 working days since.
        assert (old["age_escalated"], old["age_registered"]) == (9, 10)
        assert old["overdue"] is True and old["state"] == "new"
        assert (fresh["age_escalated"], fresh["age_registered"]) == (1, 2)
        assert fresh["overdue"] is False
        # No personal data in the queue.
        assert PHONE not in c.get("/api/v1/desk").text and NAME not in c.get("/api/v1/desk").text
        asc = c.get("/api/v1/desk", params={"order": "asc"}).json()
        assert [r["ticket_id"] for r in asc] == ["202", "101"]
        by_city = c.get("/api/v1/desk", params={"sort": "city", "order": "asc"}).json()
        assert [r["city_code"] for r in by_city] == sorted([OLD, FRESH])
        by_cat = c.get("/api/v1/desk", params={"sort": "category", "order": "asc"}).json()
        assert [r["category"] for r in by_cat] == ["BILL.DISPUTE", "NET.BROADBAND"]
        only = c.get("/api/v1/desk", params={"city": FRESH}).json()
        assert [r["ticket_id"] for r in only] == ["202"]
        assert [
            r["ticket_id"] for r in c.get("/api/v1/desk", params={"category": "NET"}).json()
        ] == ["202"]
        # Sub-categories, whatever the case typed; a code's first letters alone are no match.
        for typed, found in (("net.broadband", ["202"]), ("Net", ["202"]), ("NET.BROAD", [])):
            listed = c.get("/api/v1/desk", params={"category": typed}).json()
            assert [r["ticket_id"] for r in listed] == found, typed
        labelled = c.get("/api/v1/desk", params={"category": "网络 / 宽带 / NET.BROADBAND"})
        assert [r["ticket_id"] for r in labelled.json()] == ["202"]
        assert c.get("/api/v1/desk", params={"state": "resolved"}).json() == []
    with live.browser("supervisor") as (b, _):
        page = b.get("/desk").text
        assert f'data-case="{OLD}/{live.old}"' in page and 'class="overdue bad"' in page
        assert 'id="overdue-count">1<' in page
        en = b.get("/desk", params={"lang": "en"}).text
        assert "Escalation desk" in en and "Overdue" in en


def test_a_limited_queue_keeps_the_first_cases_of_the_order_asked_for(live: Live) -> None:
    ages = desk_views.Ages(
        calendar=WorkCalendar(tz_name=TZ), now=NOW.astimezone(ZoneInfo(TZ)), limit_days=5
    )

    def first(sort: str, descending: bool) -> list[str]:
        rows = desk_views.queue(live.engine, ages, sort=sort, descending=descending, limit=1)
        return [r["ticket_id"] for r in rows]

    # OLD's case (101) was escalated and registered first, and OLD's code sorts first.
    assert first("age", True) == ["101"] and first("age", False) == ["202"]
    assert first("registered", True) == ["101"] and first("registered", False) == ["202"]
    assert first("city", False) == ["101"] and first("city", True) == ["202"]
    assert first("category", False) == ["101"] and first("category", True) == ["202"]


def test_customer_data_is_masked_for_everyone_but_the_gm_hotline(live: Live) -> None:
    for who in ROLES:
        if HubRole(who) not in AREAS["desk"]:
            continue
        with live.api(who) as c:
            case = c.get(f"/api/v1/desk/{OLD}/{live.old}").json()
        if who == "gm_hotline":
            assert (case["customer_name"], case["customer_phone"]) == (NAME, PHONE)
            assert case["content"] == f"{NAME}来电，话费争议，另留固话 0931-8456789"
            assert case["history"][0]["note"] == f"受理，回拨 {PHONE}"
        else:
            assert (case["customer_name"], case["customer_phone"]) == ("张**", "138****5678")
            # The same data inside free text is masked too.
            assert case["content"] == "张**来电，话费争议，另留固话 093****6789"
            assert case["history"][0]["note"] == "受理，回拨 138****5678"
        assert case["history"][0]["action"] == "registered" and case["reason"]
    with live.browser("supervisor") as (b, _):
        page = b.get(f"/desk/{OLD}/{live.old}").text
        assert "138****5678" in page and PHONE not in page and NAME not in page
        assert 'id="take-form"' not in page  # the supervisor only watches
        # The history's steps in the page's words (they showed the wire's codes).
        zh = b.get(f"/desk/{OLD}/{live.old}", params={"lang": "zh"}).text
        assert "<td>已登记</td>" in zh and "<td>registered</td>" not in zh
    with live.browser("gm_hotline") as (b, _):
        page = b.get(f"/desk/{OLD}/{live.old}").text
        assert PHONE in page and NAME in page and 'id="take-form"' in page
    # The GM hotline's own contact log names the number it called: only it reads it whole.
    case = f"/api/v1/desk/{OLD}/{live.old}"
    with live.api("gm_hotline") as c:
        assert c.post(f"{case}/take", json={"assignee": "gm_hotline"}).status_code == 200
        r = c.post(f"{case}/contacts", json={"channel": "phone", "text": f"已致电 {PHONE}"})
        assert r.status_code == 200, r.text
        assert c.get(case).json()["entries"][0]["text"] == f"已致电 {PHONE}"
    with live.api("supervisor") as c:
        assert c.get(case).json()["entries"][0]["text"] == "已致电 138****5678"
    # So does the resolution it writes (naming the customer), in the case, in the queue and
    # in the resolution notice the notice pages show (to roles that may not see it whole).
    written, masked = f"已回复{NAME} {PHONE}", "已回复张** 138****5678"
    with live.api("gm_hotline") as c:
        r = c.post(f"{case}/resolve", json={"outcome": "upheld", "resolution": written})
        assert r.status_code == 200, r.text
        notice = f"/api/v1/notices/{r.json()['notice_seq']}"
        assert c.get(case).json()["resolution"] == written
    for who in ("supervisor", "statistics_manager", "materials_manager", "announcer", "admin"):
        with live.api(who) as c:
            if who == "supervisor":
                assert c.get(case).json()["resolution"] == masked
                listed = c.get("/api/v1/desk", params={"state": "all"})
                assert PHONE not in listed.text and NAME not in listed.text
                assert masked in listed.text
            assert c.get(notice).json()["body"] == masked, who
        with live.browser(who) as (b, _):
            page = html.unescape(b.get(notice.removeprefix("/api/v1")).text)
        assert masked in page and NAME not in page and PHONE not in page, who


def test_the_gm_hotline_takes_notes_contacts_and_resolves(live: Live) -> None:
    case = f"/api/v1/desk/{OLD}/{live.old}"
    with live.api("gm_hotline") as c:
        assert c.post(f"{case}/take", json={"assignee": "gm_hotline"}).status_code == 200
        taken_at = c.get(case).json()["taken_at"]
        # Taken again by the same person: no change, no second audit row.
        assert c.post(f"{case}/take", json={"assignee": "gm_hotline"}).status_code == 200
        assert c.get(case).json()["taken_at"] == taken_at
        assert [e.action for e in _audit(live.engine)].count(Action.ESCALATION_TAKEN) == 1
        assert c.post(f"{case}/notes", json={"text": "客户情绪激动"}).status_code == 200
        r = c.post(f"{case}/contacts", json={"channel": "phone", "text": "已致电客户说明"})
        assert r.status_code == 200
        r = c.post(f"{case}/resolve", json={"outcome": "upheld", "resolution": "退还一个月月租"})
        assert r.status_code == 200, r.text
        notice_seq = r.json()["notice_seq"]
        shown = c.get(case).json()
    assert shown["state"] == "resolved" and shown["outcome"] == "upheld"
    assert shown["assignee"] == "gm_hotline" and shown["resolution_notice_seq"] == notice_seq
    assert [(e["kind"], e["channel"]) for e in shown["entries"]] == [
        ("note", ""),
        ("contact", "phone"),
    ]
    assert shown["overdue"] is False  # resolved: no longer overdue
    # The resolution goes to the city that raised it, and to no other.
    sent = [
        pb.Notice.FromString(n)
        for n in services.notices_after(live.engine, city_code=OLD, after_seq=0)
    ]
    assert [n.seq for n in sent] == [notice_seq]
    assert sent[0].escalation_resolution.ticket_id == "101"
    assert sent[0].escalation_resolution.escalation_seq == live.old
    assert services.notices_after(live.engine, city_code=FRESH, after_seq=0) == []
    rows = [(e.actor, e.role, e.action, e.target) for e in _audit(live.engine)]
    target = f"escalation:{OLD}/{live.old}"
    for action in (
        Action.ESCALATION_TAKEN,
        Action.ESCALATION_NOTED,
        Action.ESCALATION_CONTACTED,
        Action.ESCALATION_RESOLVED,
    ):
        assert ("gm_hotline", "gm_hotline", action, target) in rows
    # Nothing the desk wrote goes into the audit details.
    assert not any("退还" in e.detail or "客户" in e.detail for e in _audit(live.engine))
    with live.api("gm_hotline") as c:
        again = c.post(f"{case}/resolve", json={"outcome": "upheld", "resolution": "再次"})
        assert again.status_code == 409
        assert c.post(f"{case}/take", json={"assignee": "gm_hotline"}).status_code == 409
    with live.api("supervisor") as c:
        done = c.get("/api/v1/desk", params={"state": "resolved"}).json()
        assert [r["ticket_id"] for r in done] == ["101"]


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(live: Live) -> None:
    case = f"/api/v1/desk/{OLD}/{live.old}"
    before, audited = _state(live.engine), len(_audit(live.engine))
    with live.api("gm_hotline") as c:
        refusals = [
            (c.post(f"{case}/take", json={"assignee": "supervisor"}), 422, "assignee"),
            (c.post(f"{case}/take", json={}), 422, "assignee"),
            (c.post(f"{case}/notes", json={"text": ""}), 422, "text"),
            (c.post(f"{case}/notes", json={"text": "x" * 4001}), 422, "text"),
            # A misspelt or unknown field is named, not ignored (as the notice answers do).
            (c.post(f"{case}/notes", json={"text": "ok", "extra": 1}), 422, "extra"),
            (c.post(f"{case}/take", json={"asignee": "gm"}), 422, "asignee"),
            (c.post(f"{case}/contacts", json={"channel": "fax", "text": "x"}), 422, "channel"),
            (
                c.post(f"{case}/resolve", json={"outcome": "great", "resolution": "x"}),
                422,
                "outcome",
            ),
            (
                c.post(f"{case}/resolve", json={"outcome": "upheld", "resolution": ""}),
                422,
                "resolution",
            ),
            (c.post(f"/api/v1/desk/{OLD}/999/notes", json={"text": "x"}), 404, "999"),
            (c.post(f"/api/v1/desk/12345/{live.old}/notes", json={"text": "x"}), 422, "city"),
            (
                c.post("/api/v1/traces", json={"city_code": "999999", "ticket_id": "1"}),
                422,
                "city_code",
            ),
            (c.post("/api/v1/traces", json={"city_code": OLD, "ticket_id": ""}), 422, "ticket_id"),
            (
                c.post("/api/v1/traces", json={"city_code": OLD, "ticket_id": "T1\nX"}),
                422,
                "ticket_id",
            ),
            (
                c.post("/api/v1/traces", json={"city_code": OLD, "ticket_id": "T1\tX"}),
                422,
                "ticket_id",
            ),
            (c.get("/api/v1/desk", params={"sort": "mood"}), 422, "sort"),
        ]
    with live.api("admin") as c:
        refusals.append((c.get("/api/v1/audit", params={"action": "dance"}), 422, "action"))
        refusals.append(
            (c.get("/api/v1/audit", params={"from": "2026-12-05", "to": "2026-12-01"}), 422, "to")
        )
    for r, status, field in refusals:
        assert r.status_code == status, (r.request.url, r.text)
        assert field in r.json()["detail"], (r.request.url, r.text)
    with live.browser("gm_hotline") as (b, token):
        page = b.post(
            f"/desk/{OLD}/{live.old}/resolve",
            data={"csrf_token": token, "outcome": "great", "resolution": "x"},
        )
        # The page names the field in its language (Chinese by default).
        assert page.status_code == 422 and "处理结果 'great' 无效" in html.unescape(page.text)
        page = b.post(f"/desk/{OLD}/{live.old}/note", data={"csrf_token": token, "text": " "})
        assert page.status_code == 422 and "内容为必填项" in page.text
        page = b.post("/traces", data={"csrf_token": token, "city": "999999", "ticket": "1"})
        assert page.status_code == 422 and "地市：地市 '999999' 不是名册中的地市" in html.unescape(
            page.text
        )
        page = b.post("/traces", data={"csrf_token": token, "city": OLD, "ticket": "1\r\n2"})
        assert page.status_code == 422 and "工单号：含有控制字符(U+000D)" in page.text
    assert _state(live.engine) == before
    # Only the sign-ins of this test were recorded.
    assert {e.action for e in _audit(live.engine)[: len(_audit(live.engine)) - audited]} <= {
        Action.LOGIN
    }


def test_a_city_not_on_the_roster_is_refused_by_the_queue_filter(live: Live) -> None:
    before, audited = _state(live.engine), len(_audit(live.engine))
    with live.api("gm_hotline") as c:
        r = c.get("/api/v1/desk", params={"city": "999999", "state": "all"})
        assert r.status_code == 422 and r.json()["detail"].startswith("city"), r.text
    with live.browser("supervisor") as (b, _):
        page = b.get("/desk", params={"city": "999999"})
        assert page.status_code == 422 and "999999" in page.text and "city" in page.text
    assert _state(live.engine) == before
    # No export was recorded: only the sign-in.
    assert [e.action for e in _audit(live.engine)[: len(_audit(live.engine)) - audited]] == [
        Action.LOGIN
    ]


def test_csrf_is_required_for_every_change(live: Live) -> None:
    before = _state(live.engine)
    with live.browser("gm_hotline") as (b, token):
        for path, data in [
            (f"/desk/{OLD}/{live.old}/take", {"assignee": "gm_hotline"}),
            (f"/desk/{OLD}/{live.old}/note", {"text": "x"}),
            (f"/desk/{OLD}/{live.old}/contact", {"channel": "phone", "text": "x"}),
            (f"/desk/{OLD}/{live.old}/resolve", {"outcome": "upheld", "resolution": "x"}),
            ("/traces", {"city": OLD, "ticket": "1"}),
        ]:
            assert b.post(path, data=data).status_code == 403, path
            assert b.post(path, data={**data, "csrf_token": "forged"}).status_code == 403, path
        # The API with the session cookie needs the header.
        api = f"/api/v1/desk/{OLD}/{live.old}/notes"
        assert b.post(api, json={"text": "x"}).status_code == 403
        assert b.post(api, json={"text": "x"}, headers={"X-CSRF-Token": "no"}).status_code == 403
        assert _state(live.engine) == before
        ok = b.post(api, json={"text": "x"}, headers={"X-CSRF-Token": token})
        assert ok.status_code == 200


# --- role matrix ------------------------------------------------------------------------------


def test_every_new_page_and_endpoint_with_every_role_and_anonymous(live: Live) -> None:
    case = f"{OLD}/{live.old}"
    gets = [
        ("/api/v1/desk", "desk"),
        (f"/api/v1/desk/{case}", "desk"),
        ("/api/v1/desk/export", "desk"),
        ("/api/v1/traces", "traces"),
        ("/api/v1/traces/export", "traces"),
        ("/api/v1/audit", "audit"),
        ("/api/v1/audit/export", "audit"),
    ]
    pages = [
        ("/desk", "desk"),
        (f"/desk/{case}", "desk"),
        ("/traces", "traces"),
        ("/audit", "audit"),
    ]
    posts = [
        (f"/api/v1/desk/{case}/take", {"assignee": "gm_hotline"}, "desk.work"),
        (f"/api/v1/desk/{case}/notes", {"text": "x"}, "desk.work"),
        (f"/api/v1/desk/{case}/contacts", {"channel": "sms", "text": "x"}, "desk.work"),
        ("/api/v1/traces", {"city_code": OLD, "ticket_id": "7"}, "traces.request"),
    ]
    for who in [None, *ROLES]:
        with live.api(who) as c:
            for path, area in gets:
                r = c.get(path)
                want = 401 if who is None else (200 if HubRole(who) in AREAS[area] else 403)
                assert r.status_code == want, (who, path, r.text[:200])
            for path, body, area in posts:
                before = _state(live.engine)
                r = c.post(path, json=body)
                want = 401 if who is None else (200 if HubRole(who) in AREAS[area] else 403)
                assert r.status_code == want, (who, path, r.text[:200])
                if want != 200:
                    assert _state(live.engine) == before
                    if who is not None:
                        assert who in r.json()["detail"]
        if who is None:
            with httpx.Client(base_url=live.url) as anonymous:
                for path, _ in pages:
                    r = anonymous.get(path)
                    assert r.status_code == 303 and "/login" in r.headers["location"]
            continue
        with live.browser(who) as (b, token):
            for path, area in pages:
                r = b.get(path)
                assert r.status_code == (200 if HubRole(who) in AREAS[area] else 403), (who, path)
            menu = b.get("/links").text
            for path, area in pages[:1] + pages[2:]:
                assert (f'href="{path}"' in menu) == (HubRole(who) in AREAS[area]), (who, path)
            r = b.post(f"/desk/{case}/note", data={"csrf_token": token, "text": "y"})
            assert r.status_code == (303 if who == "gm_hotline" else 403), who
    # The resolve route, last: it closes the case.
    for who in ROLES:
        with live.api(who) as c:
            r = c.post(
                f"/api/v1/desk/{case}/resolve", json={"outcome": "withdrawn", "resolution": "x"}
            )
            assert r.status_code == (200 if who == "gm_hotline" else 403), who


def test_the_desk_areas() -> None:
    assert AREAS["desk.work"] == {HubRole.GM_HOTLINE}
    assert AREAS["personal_data"] == {HubRole.GM_HOTLINE}
    assert AREAS["audit"] == {HubRole.ADMIN}
    assert AREAS["traces.request"] == {HubRole.SUPERVISOR, HubRole.GM_HOTLINE}


# --- exports with personal data, traces, the audit page -------------------------------------


def test_a_queue_export_with_personal_data_is_audited(live: Live) -> None:
    with live.api("supervisor") as c:
        masked = c.get("/api/v1/desk/export").text
    assert "138****5678" in masked and PHONE not in masked
    assert not [e for e in _audit(live.engine) if e.action is Action.PERSONAL_DATA_EXPORTED]
    with live.api("gm_hotline") as c:
        full = c.get("/api/v1/desk/export").text
    assert PHONE in full and NAME in full
    (entry,) = [e for e in _audit(live.engine) if e.action is Action.PERSONAL_DATA_EXPORTED]
    assert entry.actor == "gm_hotline" and "2 rows" in entry.detail and PHONE not in entry.detail


def test_the_queue_export_is_the_queue_as_filtered_on_the_page(live: Live) -> None:
    def tickets(body: str) -> list[str]:
        rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
        header = rows.index(next(r for r in rows if "工单号" in r))
        at = rows[header].index("工单号")
        return [r[at] for r in rows[header + 1 :] if r]

    with live.api("supervisor") as c:
        assert tickets(c.get("/api/v1/desk/export").text) == ["101", "202"]
        only = c.get("/api/v1/desk/export", params={"city": FRESH}).text
        assert tickets(only) == ["202"]
        assert tickets(c.get("/api/v1/desk/export", params={"category": "BILL"}).text) == ["101"]
        asc = c.get("/api/v1/desk/export", params={"order": "asc"}).text
        assert tickets(asc) == ["202", "101"]
        bad = c.get("/api/v1/desk/export", params={"sort": "mood"})
        assert bad.status_code == 422 and "sort" in bad.json()["detail"]
        unknown = c.get("/api/v1/desk/export", params={"city": "999999"})
        assert unknown.status_code == 422 and unknown.json()["detail"].startswith("city")
        # XLSX too (it answered CSV to format=xlsx), the same rows.
        xlsx = c.get("/api/v1/desk/export", params={"format": "xlsx", "order": "asc"})
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
        assert 'filename="desk-' in xlsx.headers["content-disposition"]
        assert xlsx.headers["content-disposition"].endswith('.xlsx"')
        sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet is not None
        cells = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
        header = next(i for i, row in enumerate(cells) if "工单号" in row)
        at = cells[header].index("工单号")
        assert [str(row[at]) for row in cells[header + 1 :] if row[at]] == ["202", "101"]
        bad_format = c.get("/api/v1/desk/export", params={"format": "pdf"})
        assert bad_format.status_code == 422 and "format" in bad_format.json()["detail"]
    with live.browser("supervisor") as (b, _):
        page = b.get("/desk", params={"city": FRESH, "order": "asc"}).text
        link = re.search(r'id="export-desk-csv" href="([^"]+)"', page)
        assert link, "no export link on the desk page"
        assert tickets(b.get(link.group(1).replace("&amp;", "&")).text) == ["202"]
    # The GM hotline's filtered export carries (and records) only the rows asked for.
    with live.api("gm_hotline") as c:
        c.get("/api/v1/desk/export", params={"city": FRESH})
    (entry,) = [e for e in _audit(live.engine) if e.action is Action.PERSONAL_DATA_EXPORTED]
    assert "1 rows" in entry.detail


def test_trace_requests_are_listed_with_their_state_and_answer(live: Live) -> None:
    with live.api("supervisor") as c:
        r = c.post("/api/v1/traces", json={"city_code": FRESH, "ticket_id": "202"})
        seq = r.json()["notice_seq"]
        (listed,) = c.get("/api/v1/traces").json()
    assert listed["state"] == "requested" and listed["from_gm_hotline"] is False
    (notice,) = [
        pb.Notice.FromString(n)
        for n in services.notices_after(live.engine, city_code=FRESH, after_seq=0)
    ]
    assert notice.seq == seq and notice.trace_request.ticket_id == "202"
    # The city's answer arrives (as a real city node sends it: see test_desk_e2e.py).
    trace = pb.TicketTrace(
        request_notice_seq=seq,
        ticket_id="202",
        found=True,
        status="in_progress",
        category="NET.BROADBAND",
        customer_phone="138****5678",
        history=[pb.HistoryEntry(actor="op-1", action="registered", note=f"回拨 {PHONE}")],
    )
    envelope = build_envelope(city_code=FRESH, epoch="e" * 32, seq=live.fresh + 1, body=trace)
    services.ingest_batch(
        live.engine, city_code=FRESH, envelopes=[envelope], tz_name=TZ, max_batch=5
    )
    with live.api("statistics_manager") as c:
        (listed,) = c.get("/api/v1/traces").json()
    assert listed["state"] == "answered" and listed["answer"]["status"] == "in_progress"
    assert listed["answer"]["customer_phone"] == "138****5678"
    # A number inside a history note is masked for all but the GM hotline as well.
    assert listed["answer"]["history"][0]["note"] == "回拨 138****5678"
    with live.api("gm_hotline") as c:
        (listed,) = c.get("/api/v1/traces").json()
    assert listed["answer"]["history"][0]["note"] == f"回拨 {PHONE}"
    with live.browser("supervisor") as (b, token):
        page = b.get("/traces").text
        # The city's status in the page's words, not the store's value.
        assert f'id="trace-{seq}"' in page and "处理中" in page and "in_progress" not in page
        assert "in progress" in b.get("/traces", params={"lang": "en"}).text
        r = b.post("/traces", data={"csrf_token": token, "city": OLD, "ticket": "101"})
        assert r.status_code == 303
    actions = [(e.actor, e.action) for e in _audit(live.engine)]
    assert actions.count(("supervisor", Action.TRACE_REQUESTED)) == 2


def test_the_customers_name_in_a_traces_history_is_masked_but_for_the_gm_hotline(
    live: Live,
) -> None:
    """A trace the GM hotline asked for comes back unmasked, name and all: every other
    role reads the name masked inside the history notes too, whether the trace names the
    customer (a city of schema 1.3, a ticket never escalated) or the hub knows them from
    the ticket's escalation (an older city's answer carries no name)."""
    asked = {}
    with live.api("gm_hotline") as c:
        for ticket in ("303", "202"):
            r = c.post("/api/v1/traces", json={"city_code": FRESH, "ticket_id": ticket})
            asked[ticket] = r.json()["notice_seq"]
    named = pb.TicketTrace(
        request_notice_seq=asked["303"],
        ticket_id="303",
        found=True,
        status="dispatched",
        customer_name="欧阳探针",
        customer_phone="13977665544",
        history=[
            pb.HistoryEntry(actor="op-1", action="dispatch", note="欧阳探针 urgent 13977665544")
        ],
    )
    older = pb.TicketTrace(
        request_notice_seq=asked["202"],
        ticket_id="202",
        found=True,
        status="escalated",
        customer_phone=PHONE,
        history=[pb.HistoryEntry(actor="op-1", action="register", note=f"客户{NAME}来电")],
    )
    envelopes = [
        build_envelope(city_code=FRESH, epoch="e" * 32, seq=live.fresh + i, body=body)
        for i, body in enumerate((named, older), start=1)
    ]
    services.ingest_batch(
        live.engine, city_code=FRESH, envelopes=envelopes, tz_name=TZ, max_batch=5
    )

    def notes(who: str) -> tuple[dict[str, str], dict[str, str], str]:
        with live.api(who) as c:
            listed = {t["ticket_id"]: t["answer"] for t in c.get("/api/v1/traces").json()}
        with live.browser(who) as (b, _):
            page = html.unescape(b.get("/traces").text)
        shown = {t: a["history"][0]["note"] for t, a in listed.items()}
        return shown, {t: a.get("customer_name") for t, a in listed.items()}, page

    for who in ("supervisor", "statistics_manager", "admin"):
        shown, names, page = notes(who)
        assert shown == {"303": "欧*** urgent 139****5544", "202": "客户张**来电"}, who
        assert names == {"303": "欧***", "202": ""}, who
        for secret in ("欧阳探针", "13977665544", NAME):
            assert secret not in page, (who, secret)
    shown, names, page = notes("gm_hotline")
    assert shown == {"303": "欧阳探针 urgent 13977665544", "202": f"客户{NAME}来电"}
    assert names["303"] == "欧阳探针" and "欧阳探针 urgent 13977665544" in page

    # The exports carry the page's table: names and phones masked but for the GM hotline,
    # whose export (and only it) leaves a line in the audit log.
    def exported(who: str) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
        with live.api(who) as c:
            text = c.get("/api/v1/traces/export").content.decode("utf-8-sig")
            book = load_workbook(
                io.BytesIO(c.get("/api/v1/traces/export", params={"format": "xlsx"}).content)
            )
        lines = text.splitlines()
        head = next(i for i, line in enumerate(lines) if line.startswith("请求号,"))
        rows = list(csv.DictReader(lines[head:]))
        sheet = list(book.active.iter_rows(values_only=True))  # type: ignore[union-attr]
        top = next(i for i, r in enumerate(sheet) if r and r[0] == "请求号")
        cells = [dict(zip(sheet[top], r, strict=True)) for r in sheet[top + 1 :]]
        return (
            {r["工单号"]: (r["客户姓名"], r["客户电话"]) for r in rows},
            {str(r["工单号"]): (r["客户姓名"] or "", str(r["客户电话"] or "")) for r in cells},
        )

    before = [e for e in _audit(live.engine) if e.action is Action.PERSONAL_DATA_EXPORTED]
    masked = {"303": ("欧***", "139****5544"), "202": ("", PHONE[:3] + "****" + PHONE[-4:])}
    assert exported("supervisor") == (masked, masked)
    after = [e for e in _audit(live.engine) if e.action is Action.PERSONAL_DATA_EXPORTED]
    assert after == before
    plain = {"303": ("欧阳探针", "13977665544"), "202": ("", PHONE)}
    assert exported("gm_hotline") == (plain, plain)
    recorded = [e for e in _audit(live.engine) if e.action is Action.PERSONAL_DATA_EXPORTED]
    assert [(e.actor, e.target, e.detail) for e in recorded[len(before) :]] == [
        ("gm_hotline", "traces", "2 rows with customer name and phone")
    ] * 2
    with live.browser("supervisor") as (b, _):
        page = b.get("/traces").text
    assert 'id="export-traces-csv" href="/api/v1/traces/export"' in page


def test_the_audit_page_filters_and_exports(live: Live) -> None:
    with live.api("gm_hotline") as c:
        c.post(f"/api/v1/desk/{OLD}/{live.old}/notes", json={"text": "x"})
    with live.browser("admin") as (b, _):
        page = b.get("/audit", params={"actor": "gm_hotline"}).text
        assert "升级投诉备注" in page and "登录" not in page.split('id="tbl-audit"')[1]
        assert "操作审计" in page
        # "Today" in the federation's zone, whatever the hour in UTC.
        today = datetime.now(ZoneInfo(TZ)).date().isoformat()
        export = b.get(
            "/api/v1/audit/export", params={"action": "login", "from": today, "to": today}
        )
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(export.text)))
        header = rows.index(["序号", "时间", "操作人", "岗位", "操作", "对象", "说明", "来源地址"])
        body = rows[header + 1 :]
        assert body and {r[4] for r in body} == {"登录"} and "admin" in {r[2] for r in body}
        # The same rows as XLSX (it answered CSV whatever the format asked).
        xlsx = b.get(
            "/api/v1/audit/export",
            params={"format": "xlsx", "action": "login", "from": today, "to": today},
        )
        assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.headers["content-type"]
        assert xlsx.headers["content-disposition"].endswith('.xlsx"')
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet is not None
        cells = [[c.value for c in row] for row in sheet.iter_rows()]
        found = cells.index(["序号", "时间", "操作人", "岗位", "操作", "对象", "说明", "来源地址"])
        assert [r[4] for r in cells[found + 1 :]] == [r[4] for r in body]
        assert 'id="export-audit-xlsx"' in page
        assert (
            b.get("/api/v1/audit", params={"from": "2000-01-01", "to": "2000-01-02"}).json() == []
        )


def _cells(table: str, key: str) -> set[str]:
    """The texts of a page table's column ``key``."""
    return set(re.findall(rf'data-key="{key}">([^<]*)<', table))


def test_the_audit_log_names_actions_and_roles_in_the_pages_language(live: Live) -> None:
    """Actions and roles in Chinese on the Chinese page and in the exports, in English on
    the English page; the filter still sends the action's identifier, and the API keeps
    the identifiers."""
    with live.api("gm_hotline") as c:
        c.post(f"/api/v1/desk/{OLD}/{live.old}/notes", json={"text": "x"})
    with live.browser("admin") as (b, _):
        zh = b.get("/audit", params={"actor": "gm_hotline"}).text
        form, table = zh.split('id="tbl-audit"')
        assert '<option value="escalation_noted" >升级投诉备注</option>' in form
        assert '<option value="personal_data_exported" >导出客户个人信息</option>' in form
        assert "升级投诉备注" in _cells(table, "action") and _cells(table, "role") == {"总经理热线"}
        en = b.get("/audit", params={"actor": "gm_hotline", "lang": "en"}).text
        form, table = en.split('id="tbl-audit"')
        assert '<option value="login_failed" >Sign-in failed</option>' in form
        assert "Escalation note added" in _cells(table, "action")
        assert _cells(table, "role") == {"GM hotline"}
        # Picking an option filters by its identifier.
        chosen = b.get("/audit", params={"action": "escalation_noted", "lang": "en"}).text
        assert '<option value="escalation_noted" selected>' in chosen
        assert "Signed in" not in chosen.split('id="tbl-audit"')[1]
        # The exports speak Chinese whatever the page's language.
        export = b.get("/api/v1/audit/export", params={"actor": "gm_hotline", "lang": "en"})
        rows = list(csv.reader(io.StringIO(export.text)))
        header = ["序号", "时间", "操作人", "岗位", "操作", "对象", "说明", "来源地址"]
        body = rows[rows.index(header) + 1 :]
        assert ("总经理热线", "升级投诉备注") in {(r[3], r[4]) for r in body}
        assert {r[3] for r in body} == {"总经理热线"}
        xlsx = b.get("/api/v1/audit/export", params={"actor": "gm_hotline", "format": "xlsx"})
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet is not None
        cells = [[c.value for c in row] for row in sheet.iter_rows()]
        assert ["总经理热线", "升级投诉备注"] in [r[3:5] for r in cells]
        api = b.get("/api/v1/audit", params={"actor": "gm_hotline"}).json()
        assert {"role": "gm_hotline", "action": "escalation_noted"}.items() <= api[0].items()


def _routes(routes: Any) -> Iterator[Route]:
    """Every endpoint of the app, through included routers (FastAPI wraps those)."""
    for r in routes:
        if isinstance(r, Route):
            yield r
        elif hasattr(r, "original_router"):
            yield from _routes(r.original_router.routes)
        elif hasattr(r, "routes") and not hasattr(r, "app"):
            yield from _routes(r.routes)


# --- every state-changing route writes its audit row ------------------------------------------


def test_every_state_changing_route_writes_its_audit_row(live: Live) -> None:
    """A new POST/PUT/PATCH/DELETE route of the hub web without a recipe here fails, and
    each recipe must leave the audit row its route promises."""
    case = f"{OLD}/{live.old}"
    batch = f"{CODES[0]}:{BATCH_SEQ}"

    def page(path: str, who: str, data: dict[str, str]) -> Any:
        with live.browser(who) as (b, token):
            return b.post(path, data={"csrf_token": token, **data})

    def api(path: str, who: str, body: dict[str, Any]) -> Any:
        with live.api(who) as c:
            return c.post(path, json=body)

    def login() -> Any:
        with httpx.Client(base_url=live.url) as c:
            token = csrf_of(c.get("/login").text)
            c.post("/login", data={"csrf_token": token, "staff_id": "admin", "password": "nope"})
            return c.post(
                "/login", data={"csrf_token": token, "staff_id": "admin", "password": PASSWORD}
            )

    def logout() -> Any:
        with live.browser("announcer") as (b, token):
            return b.post("/logout", data={"csrf_token": token})

    # A task two cities objected to, for the two ways of answering an objection.
    objected = notices.send(
        live.engine,
        notices.Draft(
            kind="task",
            title="核查",
            targets=(CODES[0], CODES[1]),
            deadline=datetime.now(UTC) + timedelta(days=2),
        ),
        roster_codes=CODES,
        actor="announcer",
        role=HubRole.ANNOUNCER,
        address="test",
    ).seq
    with live.engine.begin() as conn:
        conn.execute(
            update(NoticeDelivery)
            .where(NoticeDelivery.notice_seq == objected)
            .values(objection_at=datetime.now(UTC), objection_reason="人手不足")
        )
    draft = {"kind": "announcement", "title": "t", "to": "some", "targets": CODES[0]}
    draft_json = {"kind": "announcement", "title": "t", "targets": [CODES[0]]}

    recipes: dict[str, tuple[Any, set[Action]]] = {
        # Back to the form and the previews store nothing, so they write no row.
        "/notices/new": (lambda: page("/notices/new", "announcer", draft), set()),
        "/notices/preview": (lambda: page("/notices/preview", "announcer", draft), set()),
        "/api/v1/notices/preview": (
            lambda: api("/api/v1/notices/preview", "announcer", draft_json),
            set(),
        ),
        "/notices/send": (
            lambda: page("/notices/send", "announcer", draft),
            {Action.NOTICE_SENT},
        ),
        "/api/v1/notices": (
            lambda: api("/api/v1/notices", "announcer", draft_json),
            {Action.NOTICE_SENT},
        ),
        "/notices/{seq}/answer": (
            lambda: page(
                f"/notices/{objected}/answer", "announcer", {"city_code": CODES[0], "answer": "a"}
            ),
            {Action.OBJECTION_ANSWERED},
        ),
        "/api/v1/notices/{seq}/answers": (
            lambda: api(
                f"/api/v1/notices/{objected}/answers",
                "announcer",
                {"city_code": CODES[1], "answer": "a"},
            ),
            {Action.OBJECTION_ANSWERED},
        ),
        "/login": (login, {Action.LOGIN_FAILED, Action.LOGIN}),
        "/logout": (logout, {Action.LOGOUT}),
        "/suggestions/seen": (
            lambda: page("/suggestions/seen", "materials_manager", {"batch": batch}),
            {Action.SUGGESTIONS_SEEN},
        ),
        "/api/v1/suggestions/seen": (
            lambda: api(
                "/api/v1/suggestions/seen",
                "materials_manager",
                {"batches": [{"city_code": CODES[0], "seq": BATCH_SEQ}]},
            ),
            {Action.SUGGESTIONS_SEEN},
        ),
        "/desk/{city}/{seq}/take": (
            lambda: page(f"/desk/{case}/take", "gm_hotline", {"assignee": "gm_hotline"}),
            {Action.ESCALATION_TAKEN},
        ),
        "/api/v1/desk/{city}/{seq}/take": (
            # Another case: taking one's own case again writes nothing (as it changes nothing).
            lambda: api(
                f"/api/v1/desk/{FRESH}/{live.fresh}/take", "gm_hotline", {"assignee": "gm_hotline"}
            ),
            {Action.ESCALATION_TAKEN},
        ),
        "/desk/{city}/{seq}/note": (
            lambda: page(f"/desk/{case}/note", "gm_hotline", {"text": "n"}),
            {Action.ESCALATION_NOTED},
        ),
        "/api/v1/desk/{city}/{seq}/notes": (
            lambda: api(f"/api/v1/desk/{case}/notes", "gm_hotline", {"text": "n"}),
            {Action.ESCALATION_NOTED},
        ),
        "/desk/{city}/{seq}/contact": (
            lambda: page(f"/desk/{case}/contact", "gm_hotline", {"channel": "sms", "text": "c"}),
            {Action.ESCALATION_CONTACTED},
        ),
        "/api/v1/desk/{city}/{seq}/contacts": (
            lambda: api(
                f"/api/v1/desk/{case}/contacts", "gm_hotline", {"channel": "visit", "text": "c"}
            ),
            {Action.ESCALATION_CONTACTED},
        ),
        "/desk/{city}/{seq}/resolve": (
            lambda: page(
                f"/desk/{case}/resolve", "gm_hotline", {"outcome": "upheld", "resolution": "r"}
            ),
            {Action.ESCALATION_RESOLVED},
        ),
        "/api/v1/desk/{city}/{seq}/resolve": (
            lambda: api(
                f"/api/v1/desk/{FRESH}/{live.fresh}/resolve",
                "gm_hotline",
                {"outcome": "not_upheld", "resolution": "r"},
            ),
            {Action.ESCALATION_RESOLVED},
        ),
        "/traces": (
            lambda: page("/traces", "supervisor", {"city": OLD, "ticket": "5"}),
            {Action.TRACE_REQUESTED},
        ),
        "/api/v1/traces": (
            lambda: api("/api/v1/traces", "gm_hotline", {"city_code": OLD, "ticket_id": "6"}),
            {Action.TRACE_REQUESTED},
        ),
        "/account/password": (
            lambda: page(
                "/account/password",
                "statistics_manager",
                {"current": PASSWORD, "new": "another-secret-42", "again": "another-secret-42"},
            ),
            {Action.STAFF_CHANGED},
        ),
    }
    app = web_app(live.engine)
    changing = {
        r.path
        for r in _routes(app.routes)
        if set(r.methods or ()) & {"POST", "PUT", "PATCH", "DELETE"}
    }
    assert {"/login", "/api/v1/traces"} <= changing  # the walk reaches every router
    assert changing == set(recipes), "a state-changing route needs a recipe and an audit row"
    for path in recipes:  # in order: a case is resolved after it was worked
        run, wanted = recipes[path]
        with live.engine.connect() as conn:
            last = conn.execute(select(func.coalesce(func.max(AuditEntry.id), 0))).scalar_one()
        response = run()
        assert response.status_code in (200, 201, 303), (path, response.status_code, response.text)
        with live.engine.connect() as conn:
            written = set(
                conn.execute(select(AuditEntry.action).where(AuditEntry.id > last)).scalars()
            )
        assert wanted <= written, (path, written)
        for entry in _audit(live.engine):
            assert entry.address, (path, entry)


def test_audit_dates_are_days_in_the_federations_zone(live: Live) -> None:
    for at, who in (
        (datetime(2026, 11, 30, 15, 30, tzinfo=UTC), "late-on-the-30th"),  # 23:30 in Shanghai
        (datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "early-on-the-1st"),  # 07:30 on Dec 1st
    ):
        audit.record_alone(live.engine, actor=who, role="", action=Action.LOGOUT, at=at)
    with live.api("admin") as c:
        day = c.get("/api/v1/audit", params={"from": "2026-12-01", "to": "2026-12-01"}).json()
        before = c.get("/api/v1/audit", params={"to": "2026-11-30"}).json()
    assert [e["actor"] for e in day] == ["early-on-the-1st"]
    assert "late-on-the-30th" in [e["actor"] for e in before]
    assert "early-on-the-1st" not in [e["actor"] for e in before]
