"""The supervisor web's notice pages and ``/api/v1/notices`` over a real uvicorn, on SQLite
and PostgreSQL: every new page and endpoint with every role and anonymously; CSRF refusals;
bad drafts refused naming the field with nothing stored (no notice, no delivery, no audit
row); the all-city confirmation; standard-answer versions; an overdue task on the board; the
completion KPI on the notice pages and the province overview; the CLI through the same
service (its audit row says "cli")."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
from sqlalchemy import Engine, func, select

from province_hub import audit, notice_board, notices, staff
from province_hub.audit import Action
from province_hub.staff import HubRole
from province_hub.store import AuditEntry, Notice, NoticeDelivery, create_schema
from province_hub.web.access import AREAS
from sync.cli import main
from sync.db import make_engine
from sync.limits import MAX_NOTICE_TITLE_CHARS, MAX_TEXT_CHARS
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import serving
from tests.hub_web_support import CODES, NOW, PASSWORD, TZ, web_app

ROLES = [r.value for r in HubRole]
CITY, OTHER = CODES[0], CODES[1]
#: A deadline after the web's clock (tests/hub_web_support.NOW).
LATER = (NOW + timedelta(days=3)).isoformat()


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
        with httpx.Client(base_url=self.url, timeout=30) as c:
            token = csrf_of(c.get("/login").text)
            r = c.post("/login", data={"csrf_token": token, "staff_id": who, "password": PASSWORD})
            assert r.status_code == 303, r.text
            yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def live(databases: Any) -> Iterator[Live]:
    url = databases("notices")
    engine = make_engine(url)
    create_schema(engine)
    for role in HubRole:
        staff.add_staff(engine, staff_id=role.value, name=role.value, role=role, password=PASSWORD)
    with serving(web_app(engine)) as u:
        yield Live(u, url, engine)
    engine.dispose()


def _stored(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Notice)).scalar_one(),
            conn.execute(select(func.count()).select_from(NoticeDelivery)).scalar_one(),
            # The notices' own audit rows (signing in and adding staff are audited too).
            conn.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action.in_([Action.NOTICE_SENT, Action.OBJECTION_ANSWERED]))
            ).scalar_one(),
        )


def _task(targets: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "kind": "task",
        "title": "盘点积压工单",
        "body": "本周五前完成",
        "targets": targets,
        "deadline": LATER,
        **extra,
    }


def _seed(engine: Engine) -> int:
    """A task to CITY and OTHER that CITY objected to (as an ingested receipt would mark)."""
    sent = notices.send(
        engine,
        notices.Draft(
            kind="task",
            title="核查投诉",
            targets=(CITY, OTHER),
            deadline=NOW + timedelta(days=1),
        ),
        roster_codes=CODES,
        actor="announcer",
        role=HubRole.ANNOUNCER,
        address="test",
        now=NOW,
    )
    with engine.begin() as conn:
        conn.execute(
            NoticeDelivery.__table__.update()  # type: ignore[attr-defined]
            .where(NoticeDelivery.notice_seq == sent.seq, NoticeDelivery.city_code == CITY)
            .values(objection_at=NOW, objection_reason="人手不足")
        )
    return sent.seq


# --- roles ---------------------------------------------------------------------------------------


def test_every_notice_page_and_endpoint_with_every_role(live: Live) -> None:
    seq = _seed(live.engine)
    pages = ["/notices", "/notices/board", "/notices/new", f"/notices/{seq}"]
    apis = ["/api/v1/notices", "/api/v1/notices/board", f"/api/v1/notices/{seq}"]
    apis += ["/api/v1/notices/export?format=xlsx", "/api/v1/notices/board/export"]
    with httpx.Client(base_url=live.url, timeout=30) as anonymous:
        for path in pages:
            r = anonymous.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    for who in ROLES:
        with live.browser(who) as b:
            for path in pages:
                area = "notices.compose" if path.endswith("/new") else "notices"
                expected = 200 if HubRole(who) in AREAS[area] else 403
                assert b.get(path).status_code == expected, (who, path)
    for caller in [None, *ROLES]:
        role = HubRole(caller) if caller else None
        with live.api(caller) as c:
            for path in apis:
                r = c.get(path)
                expected = 401 if role is None else (200 if role in AREAS["notices"] else 403)
                assert r.status_code == expected, (caller, path, r.status_code, r.text[:200])
            for kind, body in (
                ("announcement", {"kind": "announcement", "title": "公告", "targets": [OTHER]}),
                (
                    "finding",
                    {
                        "kind": "finding",
                        "title": "通报",
                        "targets": [OTHER],
                        "about_city": CITY,
                        "source": "supervision",
                    },
                ),
            ):
                before = _stored(live.engine)
                preview = c.post("/api/v1/notices/preview", json=body)
                sent = c.post("/api/v1/notices", json=body)
                if role is None:
                    assert (preview.status_code, sent.status_code) == (401, 401)
                elif role in notices.SENDERS[kind]:
                    assert preview.status_code == 200 and sent.status_code == 201, (caller, kind)
                    continue
                else:
                    assert (preview.status_code, sent.status_code) == (403, 403), (caller, kind)
                    assert "announcer" in sent.json()["detail"]
                assert _stored(live.engine) == before
            answer = c.post(
                f"/api/v1/notices/{seq}/answers", json={"city_code": CITY, "answer": "已协调"}
            )
            wanted = 401 if role is None else (201 if role in notices.ANSWERERS else 403)
            assert answer.status_code == wanted, (caller, answer.text)
    # The menu shows the notices to whoever may open them; the compose page to senders.
    for who in ROLES:
        with live.browser(who) as b:
            home = b.get("/links").text
            assert ('href="/notices"' in home) == (HubRole(who) in AREAS["notices"]), who
            page = b.get("/notices/new")
            assert page.status_code == (200 if HubRole(who) in AREAS["notices.compose"] else 403)
            if HubRole(who) == HubRole.SUPERVISOR:
                # A supervisor is offered findings only.
                assert (
                    re.findall(r'<option value="(\w+)"', page.text.split('id="kind"')[1])[0]
                    == "finding"
                    and 'value="announcement"' not in page.text
                )
            # The forms, with a valid CSRF token: refused by role, nothing stored.
            role = HubRole(who)
            token = csrf_of(home)
            finding = {
                "csrf_token": token,
                "kind": "finding",
                "title": "通报",
                "to": "some",
                "targets": [OTHER],
                "about_city": CITY,
                "source": "qa",
            }
            composer = role in AREAS["notices.compose"]
            before = _stored(live.engine)
            assert b.post("/notices/new", data=finding).status_code == (200 if composer else 403)
            sender = role in notices.SENDERS["finding"]
            assert b.post("/notices/preview", data=finding).status_code == (200 if sender else 403)
            assert _stored(live.engine) == before
            sent = b.post("/notices/send", data=finding)
            assert sent.status_code == (303 if sender else 403), who
            answer_form = {"csrf_token": token, "city_code": CITY, "answer": "已协调"}
            answered = b.post(f"/notices/{seq}/answer", data=answer_form)
            assert answered.status_code == (303 if role in notices.ANSWERERS else 403), who
            if not sender and role not in notices.ANSWERERS:
                assert _stored(live.engine) == before


def test_supervisor_may_send_findings_only_through_the_form(live: Live) -> None:
    with live.browser("supervisor") as b:
        token = csrf_of(b.get("/notices").text)
        form = {
            "csrf_token": token,
            "kind": "announcement",
            "title": "x",
            "to": "some",
            "targets": [OTHER],
        }
        before = _stored(live.engine)
        assert b.post("/notices/send", data=form).status_code == 403
        assert _stored(live.engine) == before
        form.update(kind="finding", about_city=CITY, source="qa")
        sent = b.post("/notices/send", data=form)
        assert sent.status_code == 303
        seq = int(sent.headers["location"].rsplit("/", 1)[1])
        detail = b.get(f"/api/v1/notices/{seq}", headers={"X-CSRF-Token": token}).json()
        assert detail["detail"] == {"about_city": CITY, "source": "qa"}
        assert [c["city_code"] for c in detail["cities"]] == [OTHER]


# --- CSRF and bad input --------------------------------------------------------------------------


def test_csrf_refusals_store_nothing(live: Live) -> None:
    seq = _seed(live.engine)
    before = _stored(live.engine)
    with live.browser("announcer") as b:
        form = {"kind": "announcement", "title": "x", "to": "some", "targets": [OTHER]}
        assert b.post("/notices/send", data=form).status_code == 403
        assert b.post("/notices/send", data={**form, "csrf_token": "forged"}).status_code == 403
        assert b.post("/notices/preview", data=form).status_code == 403
        answer = {"city_code": CITY, "answer": "已协调"}
        assert b.post(f"/notices/{seq}/answer", data=answer).status_code == 403
        api = b.post("/api/v1/notices", json={**form, "targets": [OTHER]})
        assert api.status_code == 403 and "X-CSRF-Token" in api.json()["detail"]
        api = b.post(f"/api/v1/notices/{seq}/answers", json=answer)
        assert api.status_code == 403
    assert _stored(live.engine) == before


BAD: list[tuple[dict[str, Any], str]] = [
    ({"title": "  "}, "title"),
    ({"title": "x" * (MAX_NOTICE_TITLE_CHARS + 1)}, "title"),
    ({"title": "two\nlines"}, "title"),  # a title is one line (the body may have several)
    ({"body": "x" * (MAX_TEXT_CHARS + 1)}, "body"),
    ({"deadline": (NOW - timedelta(hours=1)).isoformat()}, "deadline"),
    ({"deadline": None}, "deadline"),
    ({"targets": [CITY, "999999"]}, "targets"),
    ({"priority": "sometime"}, "priority"),
    ({"kind": "rejection"}, "kind"),
    ({"kind": "standard_answer", "category": "BILL", "question": "q", "answer": ""}, "answer"),
    (
        {
            "kind": "standard_answer",
            "category": "B" * 33,
            "question": "q",
            "answer": "a",
            "version": 1,
        },
        "category",
    ),
    ({"kind": "standard_answer", "category": "BILL", "question": "q", "answer": "a"}, "version"),
    # A code the province's tree lacks would reach the cities as a category none of them has.
    (
        {
            "kind": "standard_answer",
            "category": "BILL.NOPE",
            "question": "q",
            "answer": "a",
            "version": 1,
        },
        "category",
    ),
    ({"kind": "finding", "about_city": "999999", "source": "qa"}, "about_city"),
    ({"kind": "finding", "about_city": CITY, "source": "rumour"}, "source"),
    ({"targets": []}, "confirm_all"),
    # A confirmation must be meant: a JSON true, not "yes", 1 or "true" read as one.
    ({"targets": [], "confirm_all": "yes"}, "confirm_all"),
    ({"targets": [], "confirm_all": 1}, "confirm_all"),
    ({"targets": [], "confirm_all": "true"}, "confirm_all"),
    # A version is a JSON integer: "3" and 4.0 are not read as one.
    *(
        (
            {
                "kind": "standard_answer",
                "category": "BILL",
                "question": "q",
                "answer": "a",
                "version": loose,
            },
            "version",
        )
        for loose in ("3", 4.0, True)
    ),
    # A deadline on an announcement was dropped without a word.
    ({"kind": "announcement"}, "deadline"),
    # A key that looks like another is not another.
    (
        {
            "kind": "standard_answer",
            "category": "BILL",
            "question": "q",
            "answer": "a",
            "version": 1,
            "key": "roaming\u200b",
        },
        "key: holds a character that shows nothing (U+200B)",
    ),
    # So were a standard answer's and a finding's fields given to another kind.
    ({"question": "q"}, "question is for a standard_answer only"),
    ({"kind": "announcement", "version": 2}, "version is for a standard_answer only"),
    ({"kind": "announcement", "category": "BILL"}, "category"),
    ({"about_city": OTHER}, "about_city is for a finding only"),
    (
        {
            "kind": "standard_answer",
            "category": "BILL",
            "question": "q",
            "answer": "a",
            "version": 1,
            "source": "qa",
        },
        "source is for a finding only",
    ),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_bad_drafts_are_refused_naming_the_field(
    live: Live, change: dict[str, Any], field: str
) -> None:
    body = {**_task([CITY, OTHER]), **change}
    if body["kind"] != "task" and field != "deadline":
        del body["deadline"]  # only a task has one
    before = _stored(live.engine)
    with live.api("announcer") as c:
        for path in ("/api/v1/notices/preview", "/api/v1/notices"):
            if field == "confirm_all" and path.endswith("preview"):
                continue  # a preview of an all-city notice is fine: it says so
            r = c.post(path, json=body)
            assert r.status_code == 422, (path, r.text)
            assert field in r.json()["detail"], r.text
    assert _stored(live.engine) == before


def test_a_form_field_given_twice_is_refused_but_the_chosen_cities_may_be(live: Live) -> None:
    before = _stored(live.engine)
    with live.browser("announcer") as b:
        token = csrf_of(b.get("/notices/new").text)
        pairs = [
            ("csrf_token", token),
            ("kind", "announcement"),
            ("title", "first"),
            ("to", "some"),
            ("targets", CITY),
            ("targets", OTHER),
        ]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        twice = b.post(
            "/notices/send", content=urlencode([*pairs, ("title", "second")]), headers=form
        )
        assert twice.status_code == 422 and "只能给出一次，却给出了 2 次" in twice.text
        assert _stored(live.engine) == before
        sent = b.post("/notices/send", content=urlencode(pairs), headers=form)
        assert sent.status_code == 303, sent.text
        # The page shows every kind's fields: what was typed under another kind is left
        # behind (the API and the command line refuse it).
        leftovers = [("question", "from an earlier draft"), ("version", "3"), ("source", "qa")]
        again = b.post("/notices/send", content=urlencode(pairs + leftovers), headers=form)
        assert again.status_code == 303, again.text


def test_the_form_comes_back_filled_in_naming_the_field(live: Live) -> None:
    with live.browser("announcer") as b:
        token = csrf_of(b.get("/notices/new").text)
        form = {
            "csrf_token": token,
            "kind": "task",
            "title": "盘点",
            "body": "周五前",
            "to": "some",
            "targets": [CITY],
            "deadline": "2026-12-01T09:00",
        }
        for path in ("/notices/preview", "/notices/send"):
            r = b.post(path, data=form)
            assert r.status_code == 422
            assert 'data-field="deadline"' in r.text and "完成时限：已经过去" in r.text
            assert (
                'value="盘点"' in r.text and f'value="{CITY}" id="target-{CITY}" checked' in r.text
            )
        r = b.post(
            "/notices/preview",
            data={**form, "deadline": "2026-12-05T18:00", "to": "some", "targets": []},
        )
        assert r.status_code == 422 and 'data-field="targets"' in r.text
        r = b.post("/notices/send", data={**form, "kind": "rejection"})
        assert r.status_code == 422 and 'data-field="kind"' in r.text
        seeded = _seed(live.engine)
        answer = b.post(
            f"/notices/{seeded}/answer",
            data={"csrf_token": token, "city_code": OTHER, "answer": "x"},
        )
        assert answer.status_code == 422 and "提出异议" in answer.text
    with live.api("announcer") as c:
        # A city the notice never went to is a wrong field; a notice not held is not found.
        for city in ("999999", "620x00"):
            r = c.post(f"/api/v1/notices/{seeded}/answers", json={"city_code": city, "answer": "x"})
            assert r.status_code == 422, (city, r.text)
            assert r.json()["detail"].startswith("city_code: notice"), r.text
        r = c.post("/api/v1/notices/999999/answers", json={"city_code": CITY, "answer": "x"})
        assert r.status_code == 404 and r.json()["detail"] == "no notice 999999"
    assert _stored(live.engine)[0] == 1  # the seeded task only


# --- compose, confirm, receipts ------------------------------------------------------------------


def test_all_city_send_needs_the_second_step_and_is_audited(live: Live) -> None:
    with live.browser("announcer") as b:
        token = csrf_of(b.get("/notices/new").text)
        form = {
            "csrf_token": token,
            "kind": "announcement",
            "title": "春节值班",
            "body": "安排",
            "priority": "high",
            "to": "all",
        }
        preview = b.post("/notices/preview", data=form)
        assert preview.status_code == 200
        assert 'id="confirm-all"' in preview.text and 'id="target-count">14<' in preview.text
        assert _stored(live.engine) == (0, 0, 0)
        refused = b.post("/notices/send", data=form)
        assert refused.status_code == 422 and 'data-field="confirm_all"' in refused.text
        assert _stored(live.engine) == (0, 0, 0)
        sent = b.post("/notices/send", data={**form, "confirm_all": "yes"})
        assert sent.status_code == 303
        seq = int(sent.headers["location"].rsplit("/", 1)[1])
        page = b.get(f"/notices/{seq}").text
        assert page.count('<tr id="city-') == 14
        # An announcement is read, not carried out: no completion rate of its own.
        assert 'id="notice-completion"' not in page
        # A chosen subset needs no confirmation.
        some = b.post("/notices/preview", data={**form, "to": "some", "targets": [CITY]})
        assert some.status_code == 200 and 'id="confirm-all"' not in some.text
    assert _stored(live.engine) == (1, 14, 1)
    with live.api("statistics_manager") as c:
        # An announcement is no task: the completion KPI has nothing to divide by yet.
        listed = c.get("/api/v1/notices").json()
        assert listed["completion"] == {"numerator": 0, "denominator": 0, "rate": None}
        assert [n["completion"] for n in listed["notices"]] == [None]
        assert c.get(f"/api/v1/notices/{seq}").json()["completion"] is None
        exported = c.get("/api/v1/notices/export", params={"format": "csv"})
        last_row = exported.content.decode("utf-8-sig").strip().splitlines()[-1]
        assert last_row.startswith(f"{seq},") and last_row.endswith(",0,"), last_row
    with live.browser("supervisor") as b:
        listing = b.get("/notices").text
        assert '<td class="num" data-key="completion">-</td>' in listing
    (entry,) = audit.entries(live.engine, action=Action.NOTICE_SENT)
    assert (entry.actor, entry.role, entry.target) == ("announcer", "announcer", f"notice:{seq}")
    assert entry.address == "127.0.0.1" and "targets=14" in entry.detail


def test_standard_answer_versions_must_go_up(live: Live) -> None:
    body = {
        "kind": "standard_answer",
        "title": "统一口径:国际漫游",
        "category": "BILL",
        "question": "漫游费争议如何答复",
        "answer": "v1 口径",
        "version": 1,
        "key": "roaming",
        "targets": [CITY],
    }
    with live.api("announcer") as c:
        assert c.post("/api/v1/notices", json=body).status_code == 201
        again = c.post("/api/v1/notices", json=body)
        assert again.status_code == 422 and "next is v2" in again.json()["detail"]
        v2 = c.post("/api/v1/notices", json={**body, "version": 2, "answer": "v2 口径"})
        assert v2.status_code == 201
        detail = c.get(f"/api/v1/notices/{v2.json()['seq']}").json()["detail"]
        assert detail == {
            "category": "BILL",
            "question": "漫游费争议如何答复",
            "answer": "v2 口径",
            "version": 2,
            "key": "roaming",
        }


def test_overdue_task_board_completion_kpi_and_objection_answer(live: Live) -> None:
    # A task sent two days before the web's "now", due one day before it.
    before_now = NOW - timedelta(days=2)
    task = notices.send(
        live.engine,
        notices.Draft(
            kind="task", title="整改", targets=(CITY, OTHER), deadline=NOW - timedelta(days=1)
        ),
        roster_codes=CODES,
        actor="announcer",
        role=HubRole.ANNOUNCER,
        address="test",
        now=before_now,
    )
    with live.api("supervisor") as c:
        listed = c.get("/api/v1/notices").json()
        assert listed["completion"] == {"numerator": 0, "denominator": 2, "rate": 0.0}
        assert listed["notices"][0]["overdue"] == 2
    # OTHER marks it done by the deadline, CITY objects after it (as ingested receipts do).
    with live.engine.begin() as conn:
        conn.execute(
            NoticeDelivery.__table__.update()  # type: ignore[attr-defined]
            .where(NoticeDelivery.notice_seq == task.seq, NoticeDelivery.city_code == OTHER)
            .values(done_at=NOW - timedelta(days=1, hours=1), done_note="已整改")
        )
        conn.execute(
            NoticeDelivery.__table__.update()  # type: ignore[attr-defined]
            .where(NoticeDelivery.notice_seq == task.seq, NoticeDelivery.city_code == CITY)
            .values(objection_at=NOW, objection_reason="不同意")
        )
    with live.api("supervisor") as c:
        assert c.get("/api/v1/notices").json()["completion"] == {
            "numerator": 1,
            "denominator": 2,
            "rate": 0.5,
        }
        board = c.get("/api/v1/notices/board").json()
        assert [(r["city_code"], r["overdue"]) for r in board] == [(CITY, True)]
        assert board[0]["objection_reason"] == "不同意"
        assert [
            r["city_code"] for r in c.get("/api/v1/notices/board", params={"city": CITY}).json()
        ] == [CITY]
        for unknown in ("999999", "abc"):
            for path in ("/api/v1/notices/board", "/api/v1/notices/board/export"):
                r = c.get(path, params={"city": unknown})
                assert r.status_code == 422 and "city" in r.json()["detail"].split(":")[0], r.text
        # An empty city is refused by the API as the other filters refuse it (the export,
        # linked from the page's form, reads it as none).
        r = c.get("/api/v1/notices/board", params={"city": ""})
        assert r.status_code == 422 and r.json()["detail"].startswith("query.city: "), r.text
        # The list and the board as files, read back: the numbers the API gives.
        listed = c.get("/api/v1/notices").json()["notices"]
        for fmt in ("csv", "xlsx"):
            r = c.get("/api/v1/notices/export", params={"format": fmt})
            assert (
                r.status_code == 200
                and f"notices-{NOW.date()}.{fmt}" in (r.headers["content-disposition"])
            )
            rows = _file_rows(r.content, fmt)
            assert [int(x["序号"]) for x in rows] == [n["seq"] for n in listed]
            first = rows[0]
            assert (first["类型"], first["标题"]) == ("任务", "整改")
            assert [int(first[k]) for k in ("目标地市", "已办结", "异议", "逾期")] == [2, 1, 1, 1]
            assert float(first["完成率"]) == 0.5
            r = c.get("/api/v1/notices/board/export", params={"format": fmt})
            (task_row,) = _file_rows(r.content, fmt)
            assert (task_row["地市代码"], task_row["逾期"], task_row["异议理由"]) == (
                CITY,
                "是",
                "不同意",
            )
        r = c.get("/api/v1/notices/export", params={"format": "pdf"})
        assert r.status_code == 422 and "format" in r.json()["detail"], r.text
    with live.browser("announcer") as b:
        page = b.get(f"/notices/{task.seq}").text
        assert "已整改" in page and "不同意" in page and page.count('class="tag bad">逾期') == 1
        assert 'id="completion-rate">50.0%' in page
        assert 'id="completion-rate">50.0%' in b.get("/notices/board").text
        # The board filtered by city, as the API; a city not on the roster is refused.
        mine = b.get("/notices/board", params={"city": CITY}).text
        assert f'data-city="{CITY}"' in mine
        assert 'data-city="' not in b.get("/notices/board", params={"city": OTHER}).text
        for unknown in ("999999", "abc"):
            r = b.get("/notices/board", params={"city": unknown})
            assert r.status_code == 422 and f"&#39;{unknown}&#39;" in r.text, r.text[-600:]
        token = csrf_of(page)
        r = b.post(
            f"/notices/{task.seq}/answer",
            data={"csrf_token": token, "city_code": CITY, "answer": "请按期整改"},
        )
        assert r.status_code == 303
        page = b.get(f"/notices/{task.seq}").text
        assert "请按期整改" in page and 'class="tag good answered"' in page
    with live.browser("supervisor") as b:
        assert 'id="completion-rate">50.0%' in b.get("/overview").text
    answers = [
        n for n in notice_board.list_notices(live.engine, now=NOW) if n["reply_to_seq"] == task.seq
    ]
    assert len(answers) == 1 and answers[0]["targets"] == 1
    (entry,) = audit.entries(live.engine, action=Action.OBJECTION_ANSWERED)
    assert entry.target == f"notice:{answers[0]['seq']}" and entry.actor == "announcer"
    with live.engine.connect() as conn:
        payload = conn.execute(
            select(Notice.payload).where(Notice.seq == answers[0]["seq"])
        ).scalar_one()
        cities = conn.execute(
            select(NoticeDelivery.city_code).where(NoticeDelivery.notice_seq == answers[0]["seq"])
        ).scalars()
        assert list(cities) == [CITY]
    answer = pb.Notice.FromString(payload)
    assert answer.reply_to_seq == task.seq and list(answer.targets) == [CITY]


def test_cli_sends_through_the_same_service(live: Live, capsys: Any) -> None:
    code = main(
        [
            "hub",
            "notice",
            "--database-url",
            live.db_url,
            "--kind",
            "finding",
            "--title",
            "质检通报",
            "--about-city",
            CITY,
            "--source",
            "qa",
            "--to",
            OTHER,
            "--sender",
            "supervisor",
        ]
    )
    assert code == 0 and "sent to 1 city" in capsys.readouterr().out
    (entry,) = audit.entries(live.engine, action=Action.NOTICE_SENT)
    assert (entry.address, entry.actor, entry.role) == ("cli", "supervisor", "supervisor")
    # A sender the web would not let send that kind is refused, naming the rule.
    wrong = main(
        ["hub", "notice", "--database-url", live.db_url, "--kind", "finding", "--title", "x",
         "--about-city", CITY, "--source", "qa", "--to", OTHER, "--sender", "materials_manager"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert wrong == 2 and "announcer" in err and "--sender 'materials_manager'" in err, err
    # The roles named are those that may send this kind (a GM hotline account was told the
    # materials manager and the supervisor may, who may not send an announcement either).
    for sender, kind, named in (
        ("gm_hotline", "announcement", "admin, announcer"),
        ("supervisor", "announcement", "admin, announcer"),
        ("gm_hotline", "standard-answer", "admin, announcer, materials_manager"),
    ):
        argv = ["hub", "notice", "--database-url", live.db_url, "--kind", kind, "--title", "x"]
        assert main([*argv, "--to", OTHER, "--sender", sender]) == 2
        err = capsys.readouterr().err
        assert f"only {named} may send a {kind} notice" in err, err
    refused = main(
        [
            "hub",
            "notice",
            "--database-url",
            live.db_url,
            "--kind",
            "finding",
            "--title",
            "x",
            "--about-city",
            "999999",
            "--source",
            "qa",
            "--to",
            OTHER,
        ]
    )
    assert refused == 2 and "about_city" in capsys.readouterr().err
    assert _stored(live.engine)[0] == 1


def test_overdue_is_judged_in_utc_whatever_the_web_zone(live: Live) -> None:
    # The web's clock is in Asia/Shanghai (UTC+8): a task due two hours after "now" is not
    # overdue, and its times read back as sent (SQLite keeps no offset).
    task = notices.send(
        live.engine,
        notices.Draft(
            kind="task", title="复核", targets=(CITY,), deadline=NOW + timedelta(hours=2)
        ),
        roster_codes=CODES,
        actor="announcer",
        role=HubRole.ANNOUNCER,
        address="test",
        now=NOW - timedelta(hours=1),
    )
    with live.api("announcer") as c:
        (row,) = c.get("/api/v1/notices").json()["notices"]
        assert row["overdue"] == 0
        assert [r["overdue"] for r in c.get("/api/v1/notices/board").json()] == [False]
        detail = c.get(f"/api/v1/notices/{task.seq}").json()
        assert detail["cities"][0]["overdue"] is False
        # The same instants, told in the federation's zone.
        shown = NOW + timedelta(hours=2)
        assert detail["deadline"].endswith("+08:00")
        assert datetime.fromisoformat(detail["deadline"]).replace(second=0, microsecond=0) == shown
        sent = c.post("/api/v1/notices", json=_task([OTHER]))
        assert sent.status_code == 201
        created = c.get(f"/api/v1/notices/{sent.json()['seq']}").json()["created_at"]
        assert created.endswith("+08:00")
        assert datetime.fromisoformat(created).replace(second=0, microsecond=0) == NOW


def test_completion_counts_cities_done_by_the_deadline(databases: Any) -> None:
    """docs/domain.md: notice completion = cities done / cities targeted, by deadline; a city
    that neither did nor objected by then is overdue. Done late counts nowhere and stays
    overdue; an objection by the deadline is not overdue."""
    engine = make_engine(databases("completion"))
    create_schema(engine)
    deadline = NOW - timedelta(days=1)
    cities = CODES[:4]
    task = notices.send(
        engine,
        notices.Draft(kind="task", title="整改", targets=tuple(cities), deadline=deadline),
        roster_codes=CODES,
        actor="announcer",
        role=HubRole.ANNOUNCER,
        address="test",
        now=NOW - timedelta(days=2),
    )
    hour = timedelta(hours=1)
    acted: dict[str, dict[str, Any]] = {
        cities[0]: {"done_at": deadline - hour},  # in time
        cities[1]: {"done_at": deadline + hour},  # late
        cities[2]: {"objection_at": deadline - hour, "objection_reason": "不同意"},
        # cities[3]: nothing at all
    }
    with engine.begin() as conn:
        for city, values in acted.items():
            conn.execute(
                NoticeDelivery.__table__.update()  # type: ignore[attr-defined]
                .where(NoticeDelivery.notice_seq == task.seq, NoticeDelivery.city_code == city)
                .values(**values)
            )
    want = {"numerator": 1, "denominator": 4, "rate": 0.25}
    assert notice_board.completion_kpi(engine) == want
    (listed,) = notice_board.list_notices(engine, now=NOW)
    assert listed["completion"] == want and listed["overdue"] == 2
    detail = notice_board.notice_detail(engine, task.seq, now=NOW)
    assert detail.completion == want
    assert {c["city_code"]: c["overdue"] for c in detail.cities} == {
        cities[0]: False,
        cities[1]: True,
        cities[2]: False,
        cities[3]: True,
    }
    board = notice_board.open_tasks(engine, now=NOW)
    assert {r["city_code"]: r["overdue"] for r in board} == {cities[2]: False, cities[3]: True}
    # Before the deadline nobody is overdue, and a city done already counts.
    early = deadline - 2 * hour
    assert notice_board.list_notices(engine, now=early)[0]["overdue"] == 0
    engine.dispose()


def test_the_preview_gives_the_deadline_in_the_hubs_zone(live: Live) -> None:
    """Every instant the API gives carries the hub's offset, the preview's deadline too."""
    with live.api("announcer") as c:
        shown = c.post(
            "/api/v1/notices/preview", json=_task([CITY], deadline="2030-12-01T12:00:00+08:00")
        )
    assert shown.status_code == 200, shown.text
    assert shown.json()["deadline"] == "2030-12-01T12:00:00+08:00"


def test_a_notice_body_is_shown_as_its_sender_wrote_it(live: Live) -> None:
    """Masking is for an escalation's resolution (which may name the customer): a task's
    hotline number and dates read as the announcer wrote them."""
    body = "请拨打 0931-8888888 报备，截至 20301231"
    with live.api("announcer") as c:
        sent = c.post("/api/v1/notices", json=_task([CITY], body=body))
        assert sent.status_code == 201, sent.text
        seq = sent.json()["seq"]
    for who in ("announcer", "supervisor"):
        with live.api(who) as c:
            assert c.get(f"/api/v1/notices/{seq}").json()["body"] == body, who


def test_a_day_alone_is_a_deadline_by_the_end_of_that_day(live: Live) -> None:
    """The API and the web form read a deadline of a day alone as the command line does:
    23:59 of that day in the hub's zone (its first minute would make today's date "in the
    past" and a task due a day early); an offset given is kept."""
    with live.api("announcer") as c:
        for given, meant in (
            ("2030-12-01", "2030-12-01T23:59:00+08:00"),
            ("2030-12-01T08:30", "2030-12-01T08:30:00+08:00"),
            ("2030-12-01T08:30:00+00:00", "2030-12-01T16:30:00+08:00"),
        ):
            shown = c.post("/api/v1/notices/preview", json=_task([CITY], deadline=given))
            assert shown.status_code == 200, shown.text
            assert shown.json()["deadline"] == meant, given
        # Dashes and colons only: 20301231 reads as a day to one parser and as seconds since
        # 1970 to another; a number is refused for the same reason.
        for wrong in ("2030-13-01", "20301201", "2030-12-01T08", 1_900_000_000):
            bad = c.post("/api/v1/notices/preview", json=_task([CITY], deadline=wrong))
            assert bad.status_code == 422 and "deadline" in bad.text, (wrong, bad.text)
    draft = notices.draft_from_form(
        {"kind": "task", "title": "t", "deadline": "2030-12-01"}, [CITY], ZoneInfo(TZ)
    )
    assert draft.deadline == datetime(2030, 12, 1, 23, 59, tzinfo=ZoneInfo(TZ))
    with pytest.raises(notices.NoticeError, match="deadline"):
        notices.draft_from_form(
            {"kind": "task", "title": "t", "deadline": "20301201"}, [CITY], ZoneInfo(TZ)
        )
    shell = main(
        ["hub", "notice", "--database-url", live.db_url, "--kind", "task", "--title", "t",
         "--deadline", "20301201", "--to", CITY]
    )  # fmt: skip
    assert shell == 2


def test_the_materials_manager_publishes_standard_answers_only(live: Live) -> None:
    """docs/domain.md: the materials manager publishes the unified standard answers (统一口径)."""
    answer = {
        "kind": "standard_answer",
        "title": "宽带提速口径",
        "targets": [CITY],
        "category": "NET",
        "question": "宽带为何变慢",
        "answer": "请先重启光猫",
        "version": 1,
    }
    with live.api("materials_manager") as c:
        sent = c.post("/api/v1/notices", json=answer)
        assert sent.status_code == 201, sent.text
        refused = c.post("/api/v1/notices", json={**_task([CITY])})
        assert refused.status_code == 403, refused.text
        listed = c.get("/api/v1/notices").json()["notices"]
        assert [n["seq"] for n in listed] == [sent.json()["seq"]]
    with live.browser("materials_manager") as b:
        form = b.get("/notices/new").text
        assert 'value="standard_answer"' in form and 'value="task"' not in form


def test_the_notice_list_pages_and_says_how_many_there_are(live: Live) -> None:
    """Reminders alone can pass 200 notices in a day: the list was cut at 200 without a
    word. The API pages (limit, offset, total), the page links to the older ones."""
    for n in range(5):
        notices.send(
            live.engine,
            notices.Draft(kind="announcement", title=f"公告 {n}", targets=(CITY,)),
            roster_codes=CODES,
            actor="announcer",
            role=HubRole.ANNOUNCER,
            address="test",
        )
    with live.api("supervisor") as c:
        every = c.get("/api/v1/notices").json()
        total = every["total"]
        assert total == len(every["notices"]) >= 5
        page = c.get("/api/v1/notices", params={"limit": 2, "offset": 1}).json()
        assert (page["total"], page["limit"], page["offset"]) == (total, 2, 1)
        assert [n["seq"] for n in page["notices"]] == [n["seq"] for n in every["notices"][1:3]]
        only = c.get("/api/v1/notices", params={"kind": "announcement", "limit": 1}).json()
        assert only["total"] == 5 and len(only["notices"]) == 1
        for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"kind": "memo"}):
            r = c.get("/api/v1/notices", params=bad)
            assert r.status_code == 422 and next(iter(bad)) in r.json()["detail"], r.text
    with live.browser("supervisor") as b:
        first = b.get("/notices").text
        assert f"共 {total} 条" in first or f"of {total}" in first
        assert ('id="older-notices"' in first) == (total > 200)
        assert 'id="newer-notices"' not in first
        later = b.get("/notices", params={"offset": 2, "lang": "zh"}).text
        assert f"第 3–{total} 条，共 {total} 条" in later and 'id="newer-notices"' in later
        assert later.count('<tr data-seq="') == total - 2


def test_the_hubs_own_notices_are_titled_in_the_page_language(live: Live) -> None:
    """A reminder, a resolution, a trace request and a rejection carry the hub's English
    title on the wire; a Chinese page names them in Chinese, from what they are about."""
    from datetime import date
    from zoneinfo import ZoneInfo

    from province_hub import desk
    from province_hub.deadlines import Deadlines, send_reminders
    from province_hub.services import ingest_batch
    from sync.calendar import WorkCalendar
    from sync.envelopes import build_envelope

    zone = ZoneInfo("Asia/Shanghai")
    rules = {"day": "0d 10:00", "week": "0d 12:00", "month": "3wd", "quarter": "5wd",
             "year": "5wd"}  # fmt: skip
    d = Deadlines.from_settings(
        rules=rules, due="statistics:week", calendar=WorkCalendar(frozenset(), frozenset())
    )
    reminders = send_reminders(
        live.engine,
        deadlines=d,
        roster_codes=[CITY],
        now=datetime(2026, 11, 23, 12, 30, tzinfo=zone),
        lookback=timedelta(days=5),
    )
    assert reminders
    resolved = desk.resolve_escalation(
        live.engine, city_code=CITY, ticket_id="88", resolution="退费", resolved_by="gm",
        roster_codes=CODES, force=True,
    )  # fmt: skip
    desk.request_trace(
        live.engine, city_code=CITY, ticket_id="89", requested_by="sup", roster_codes=CODES
    )
    broken = pb.StatisticsReport(
        period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
        revision=1,
        closed=1,
        closed_in_time=2,
        approved_by="leader",
    )
    ingest_batch(
        live.engine,
        city_code=OTHER,
        envelopes=[build_envelope(city_code=OTHER, epoch="z" * 32, seq=1, body=broken)],
        tz_name="Asia/Shanghai",
        max_batch=10,
    )
    with live.browser("supervisor") as b:
        zh = b.get("/notices", params={"lang": "zh"}).text
        one = b.get(f"/notices/{resolved.seq}").text
        en = b.get("/notices", params={"lang": "en"}).text
    assert f"逾期提醒：{date(2026, 11, 16)} 起的周统计报表未报" in zh
    assert "工单 88 的升级投诉已处理" in zh and "调阅工单 89" in zh
    assert "统计报表（序号 1）被隔离，请更正后重报" in zh
    assert "Overdue:" not in zh and "Trace request" not in zh
    # Their kinds too (the list named them by their wire words).
    kinds = set(
        re.findall(
            r"<td>(催报提醒|退回通知|调单请求|升级处理结果|reminder|rejection|trace_request|escalation_resolution)</td>",
            zh,
        )
    )
    assert kinds == {"催报提醒", "退回通知", "调单请求", "升级处理结果"}, kinds
    assert "工单 88 的升级投诉已处理" in one
    assert "Escalation of ticket 88 resolved" in en and "Trace request: ticket 89" in en


def test_the_composer_offers_the_categories_of_the_hub_tree(live: Live) -> None:
    with live.browser("announcer") as b:
        page = b.get("/notices/new").text
    assert 'list="category-codes"' in page
    assert '<option value="BILL.DISPUTE">话费争议</option>' in page


def _file_rows(body: bytes, fmt: str) -> list[dict[str, str]]:
    """An export's rows under its Chinese headers (the title lines and a blank line first)."""
    if fmt == "csv":
        lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(body)).active
        assert sheet is not None
        lines = [
            ["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)
        ]
        lines = [[] if not any(r) else r for r in lines]
    blank = lines.index([])
    header = lines[blank + 1]
    return [dict(zip(header, r, strict=True)) for r in lines[blank + 2 :]]


def test_a_citys_notes_on_a_notice_are_shown_with_phones_masked(live: Live) -> None:
    """A city before the receipt rule sent its notes as written: nobody who follows notices
    calls customers, so the pages, the API and the exports mask phone-like numbers."""
    task = notices.send(
        live.engine,
        notices.Draft(
            kind="task", title="回访", targets=(CITY, OTHER), deadline=NOW + timedelta(days=2)
        ),
        roster_codes=CODES,
        actor="announcer",
        role=HubRole.ANNOUNCER,
        address="test",
        now=NOW - timedelta(hours=1),
    )
    with live.engine.begin() as conn:
        for city, values in (
            (CITY, {"objection_at": NOW, "objection_reason": "客户 13800138000 不同意"}),
            (OTHER, {"done_at": NOW, "done_note": "已回访 0931-8456789"}),
        ):
            conn.execute(
                NoticeDelivery.__table__.update()  # type: ignore[attr-defined]
                .where(NoticeDelivery.notice_seq == task.seq, NoticeDelivery.city_code == city)
                .values(**values)
            )
    with live.api("supervisor") as c:
        detail = c.get(f"/api/v1/notices/{task.seq}").json()
        board = c.get("/api/v1/notices/board").json()
        exported = c.get("/api/v1/notices/board/export").content.decode("utf-8-sig")
    said = {d["city_code"]: (d["objection_reason"], d["done_note"]) for d in detail["cities"]}
    assert said == {CITY: ("客户 138****8000 不同意", None), OTHER: (None, "已回访 093****6789")}
    assert [r["objection_reason"] for r in board if r["seq"] == task.seq] == [
        "客户 138****8000 不同意"
    ]
    assert "13800138000" not in exported and "138****8000" in exported
    with live.engine.connect() as conn:  # the store keeps what the city sent
        kept = conn.execute(
            select(NoticeDelivery.objection_reason).where(
                NoticeDelivery.notice_seq == task.seq, NoticeDelivery.city_code == CITY
            )
        ).scalar_one()
    assert kept == "客户 13800138000 不同意"
