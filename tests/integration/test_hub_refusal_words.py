"""The supervisor web says what is wrong in the page's language, over a real uvicorn on
SQLite and PostgreSQL: a refused form or query comes back with the Chinese sentence on a
Chinese page and the English one on an English page (``?lang=en``), the store as it was;
the API keeps its English ``detail`` for the same refusals.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from province_hub import desk
from province_hub.audit import Action
from province_hub.store import AuditEntry, DeskCase, DeskEntry, HubStaff, Notice, NoticeDelivery
from sync.db import make_engine
from sync.web.throttle import LoginThrottle
from tests.conftest import serving
from tests.hub_web_support import CODES, PASSWORD, fill, web_app
from tests.integration.test_hub_desk_web import escalate

CITY = CODES[2]
#: Tables a refused form could have written to.
TABLES = (Notice, NoticeDelivery, DeskCase, DeskEntry, HubStaff)


@dataclass
class Live:
    url: str
    engine: Engine
    open_case: int
    resolved_case: int

    @contextmanager
    def browser(self, who: str) -> Iterator[tuple[httpx.Client, str]]:
        """Signed in through the login form; the session's CSRF token."""
        with httpx.Client(base_url=self.url, timeout=30) as c:
            form = {"csrf_token": _csrf(c.get("/login").text), "staff_id": who}
            r = c.post("/login", data={**form, "password": PASSWORD, "next": "/"})
            assert r.status_code == 303, r.text
            yield c, _csrf(c.get("/links").text)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def _message(page: str) -> str:
    """The refusal a page shows (``#error-message``), unescaped."""
    found = re.search(r'id="error-message"[^>]*>([^<]*)<', page)
    assert found, "no refusal on the page"
    return html.unescape(found.group(1))


@pytest.fixture
def live(databases: Any) -> Iterator[Live]:
    engine = make_engine(databases("refusalwords"))
    store = fill(engine)
    open_case = escalate(
        store, CITY, "301", escalated="2026-12-01T10:00+08:00", registered="2026-11-30T09:00+08:00"
    )
    resolved_case = escalate(
        store, CITY, "302", escalated="2026-12-02T10:00+08:00", registered="2026-12-01T09:00+08:00"
    )
    desk.resolve_escalation(
        engine,
        city_code=CITY,
        ticket_id="302",
        resolution="已与客户达成一致",
        resolved_by="gm_hotline",
        roster_codes=CODES,
        outcome="upheld",
        case_seq=resolved_case,
    )
    with serving(web_app(engine, throttle=LoginThrottle(account_limit=50, address_limit=100))) as u:
        yield Live(u, engine, open_case, resolved_case)
    engine.dispose()


def _store(engine: Engine) -> tuple[Any, ...]:
    """Every row a refused form could have written (sign-ins apart in the audit log)."""
    with engine.connect() as conn:
        rows = [
            sorted(map(tuple, conn.execute(select(table.__table__)).all()), key=repr)
            for table in TABLES
        ]
        audited = conn.execute(
            select(AuditEntry.action, AuditEntry.target).where(
                AuditEntry.action.not_in([Action.LOGIN, Action.LOGIN_FAILED, Action.LOGOUT])
            )
        ).all()
    return (*map(tuple, rows), sorted(map(tuple, audited)))


def _both(c: httpx.Client, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, ...]:
    """The same request on a Chinese page and on an English one."""
    params = kwargs.pop("params", {})
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    return tuple(
        c.request(method, path, params=[*pairs, ("lang", lang)], **kwargs) for lang in ("zh", "en")
    )


def _notice_form(token: str, **change: str) -> dict[str, Any]:
    return {
        "csrf_token": token,
        "kind": "task",
        "title": "盘点积压工单",
        "body": "周五前完成",
        "to": "some",
        "targets": [CITY],
        "deadline": "2026-12-09T09:00",
        **change,
    }


@pytest.mark.parametrize(
    ("change", "zh", "en"),
    [
        ({"title": "  "}, "标题：不能为空", "title: must not be empty"),
        ({"deadline": "2026-12-01T09:00"}, "完成时限：已经过去", "deadline: is in the past"),
        ({"deadline": "soon"}, "完成时限：'soon' 不是日期和时间", "'soon' is not a date and time"),
        (
            {"to": "some", "targets": []},
            "发送给：请至少选择一个地市，或发送给全部地市",
            "targets: choose at least one city, or send to all",
        ),
        (
            {"title": "x" * 201},
            "标题：共 201 个字符；最多 200 个",
            "title: is 201 characters; at most 200",
        ),
        (
            {"to": "all"},
            "全部地市确认：发送给全部 14 个地市的公告需要确认",
            "confirm_all: a notice to all 14 cities needs the confirmation",
        ),
    ],
)
def test_a_refused_notice_form_says_why_in_the_page_language(
    live: Live, change: dict[str, Any], zh: str, en: str
) -> None:
    before = _store(live.engine)
    with live.browser("announcer") as (b, token):
        zh_page, en_page = _both(b, "POST", "/notices/send", data=_notice_form(token, **change))
    assert zh_page.status_code == en_page.status_code == 422
    assert _message(zh_page.text) == zh and 'lang="zh-CN"' in zh_page.text
    assert _message(en_page.text).endswith(en) and 'lang="en"' in en_page.text
    assert _store(live.engine) == before


def test_a_kind_the_role_may_not_send_names_kind_and_roles_in_the_page_language(
    live: Live,
) -> None:
    before = _store(live.engine)
    with live.browser("supervisor") as (b, token):  # a supervisor sends findings only
        zh_page, en_page = _both(b, "POST", "/notices/send", data=_notice_form(token))
    assert zh_page.status_code == en_page.status_code == 403
    assert _message(zh_page.text) == "“任务”类公告的发送人只能是：系统管理员、公告发布岗"
    assert _message(en_page.text) == "task notices are sent by: admin, announcer"
    assert _store(live.engine) == before


def test_answering_an_objection_never_made_is_refused_in_either_language(live: Live) -> None:
    with live.browser("announcer") as (b, token):
        sent = b.post("/notices/send", data=_notice_form(token))
        assert sent.status_code == 303, sent.text
        seq = int(sent.headers["location"].rsplit("/", 1)[1])
        before = _store(live.engine)
        form = {"csrf_token": token, "city_code": CITY, "answer": "请按时完成"}
        zh_page, en_page = _both(b, "POST", f"/notices/{seq}/answer", data=form)
        missing = _both(b, "GET", "/notices/999999")
    assert zh_page.status_code == en_page.status_code == 422
    assert _message(zh_page.text) == f"地市：地市 {CITY} 未对公告 {seq} 提出异议"
    assert _message(en_page.text) == f"city_code: city {CITY} has not objected to {seq}"
    assert [r.status_code for r in missing] == [404, 404]
    assert [_message(r.text) for r in missing] == ["没有公告 999999", "no notice 999999"]
    assert _store(live.engine) == before


def test_desk_refusals_in_the_page_language(live: Live) -> None:
    before = _store(live.engine)
    done = f"/desk/{CITY}/{live.resolved_case}"
    with live.browser("gm_hotline") as (b, token):
        again = _both(
            b,
            "POST",
            f"{done}/resolve",
            data={"csrf_token": token, "outcome": "upheld", "resolution": "再次办结"},
        )
        taken = _both(b, "POST", f"{done}/take", data={"csrf_token": token, "assignee": ""})
        empty_note = _both(
            b,
            "POST",
            f"/desk/{CITY}/{live.open_case}/note",
            data={"csrf_token": token, "text": "   "},
        )
        bad_outcome = _both(
            b,
            "POST",
            f"/desk/{CITY}/{live.open_case}/resolve",
            data={"csrf_token": token, "outcome": "maybe", "resolution": "x"},
        )
        bad_filter = _both(b, "GET", "/desk", params={"state": "later"})
        no_case = _both(b, "GET", f"/desk/{CITY}/999999")
    assert [r.status_code for r in again] == [409, 409]
    resolved = f"{CITY}/{live.resolved_case}"
    assert [_message(r.text) for r in again] == [
        "工单号：工单 302 的升级投诉已经办结",
        "ticket_id: the escalation of ticket 302 is resolved already",
    ]
    assert [_message(r.text) for r in taken] == [
        f"序号：升级投诉 {resolved} 已经办结",
        f"seq: escalation {resolved} is resolved already",
    ]
    assert [r.status_code for r in empty_note] == [422, 422]
    assert [_message(r.text) for r in empty_note] == ["内容为必填项", "text is required"]
    assert [_message(r.text) for r in bad_outcome] == [
        "处理结果 'maybe' 无效：可选 upheld, partly_upheld, not_upheld, withdrawn",
        "outcome 'maybe' is not one of upheld, partly_upheld, not_upheld, withdrawn",
    ]
    assert [r.status_code for r in bad_filter] == [422, 422]
    assert [_message(r.text) for r in bad_filter] == [
        "状态 'later' 无效：可选 open, resolved, all",
        "state 'later' is not one of open, resolved, all",
    ]
    assert [_message(r.text) for r in no_case] == [
        f"工作台上没有升级投诉 {CITY}/999999",
        f"no escalation {CITY}/999999 on the desk",
    ]
    assert _store(live.engine) == before


def test_figures_roles_and_expired_forms_in_the_page_language(live: Live) -> None:
    before = _store(live.engine)
    with live.browser("supervisor") as (b, _):
        start = _both(b, "GET", "/overview", params={"period": "month", "start": "2026-11-05"})
        city = _both(b, "GET", "/reports", params={"city": "999999"})
        audit_page = _both(b, "GET", "/audit")
        expired = _both(b, "POST", "/notices/send", data={"csrf_token": "stale", "kind": "finding"})
    assert [r.status_code for r in start] == [422, 422]
    assert [_message(r.text) for r in start] == [
        "起始日 2026-11-05 不是所在周期(月)的第一天(该周期始于 2026-11-01)",
        "start 2026-11-05 is not the first day of a month (that month starts 2026-11-01)",
    ]
    assert [_message(r.text) for r in city] == [
        "地市 '999999' 不在名册中",
        "city '999999' is not on the roster",
    ]
    assert [r.status_code for r in audit_page] == [403, 403]
    assert [_message(r.text) for r in audit_page] == [
        "角色“服务督查岗”无权使用“操作审计”；仅限：系统管理员",
        "role supervisor may not use audit; only admin",
    ]
    assert [r.status_code for r in expired] == [403, 403]
    assert [_message(r.text) for r in expired] == [
        "表单已过期或并非来自本平台，请刷新后重试",
        "the form has expired or did not come from this console; reload it",
    ]
    assert _store(live.engine) == before


def test_the_api_keeps_its_english_details(live: Live) -> None:
    """The same refusals through ``/api/v1`` answer the English sentence, whatever the
    language cookie or ``?lang=`` says: clients parse these strings."""
    with httpx.Client(base_url=live.url, auth=("gm_hotline", PASSWORD), timeout=30) as c:
        again = c.post(
            f"/api/v1/desk/{CITY}/{live.resolved_case}/resolve",
            params={"lang": "zh"},
            json={"outcome": "upheld", "resolution": "再次办结"},
        )
        bad_start = c.get(
            "/api/v1/figures", params={"period": "month", "start": "2026-11-05", "lang": "zh"}
        )
    assert again.status_code == 409
    assert again.json()["detail"] == "ticket_id: the escalation of ticket 302 is resolved already"
    assert bad_start.status_code == 422
    assert bad_start.json()["detail"] == (
        "start 2026-11-05 is not the first day of a month (that month starts 2026-11-01)"
    )
    with httpx.Client(base_url=live.url, auth=("announcer", PASSWORD), timeout=30) as c:
        empty = c.post(
            "/api/v1/notices",
            params={"lang": "zh"},
            json={"kind": "announcement", "title": " ", "targets": [CITY]},
        )
    assert empty.status_code == 422
    assert empty.json()["detail"] == "title: must not be empty"


def test_values_the_parser_or_the_edge_refuses_in_the_page_language(live: Live) -> None:
    """A query value of the wrong kind, a date outside the report years and a control
    character in a form are refused before any service runs: the page says so in its
    language too, the API as it always did."""
    before = _store(live.engine)
    with live.browser("admin") as (b, token):
        period = _both(b, "GET", "/overview", params={"period": "fortnight"})
        year = _both(b, "GET", "/audit", params={"from": "0001-01-01"})
        control = _both(b, "POST", "/notices/send", data=_notice_form(token, title="a\x07b"))
        nowhere = _both(b, "GET", "/no-such-page")
        seq = _both(b, "GET", "/notices/abc")
        city = _both(b, "GET", "/desk", params={"city": "12"})
        action = _both(b, "GET", "/audit", params={"action": "dance"})
        cities = _both(b, "GET", "/trends", params={"cities": ",".join(["620100"] * 51)})
    assert [r.status_code for r in period] == [422, 422]
    # The audit's filters by their Chinese names; too many trend cities said as the API does.
    assert _message(action[0].text).startswith("操作：")
    assert _message(action[1].text).startswith("query.action: ")
    assert [r.status_code for r in cities] == [422, 422]
    assert "51" in _message(cities[0].text) and "50" in _message(cities[0].text)
    assert _message(cities[1].text) == "51 cities chosen; at most 50"
    assert [_message(r.text) for r in period] == [
        "周期：应为以下之一：'day', 'week', 'month', 'quarter', 'year'",
        "query.period: Input should be 'day', 'week', 'month', 'quarter' or 'year'",
    ]
    assert [_message(r.text) for r in year] == [
        "起始日期：日期 0001-01-01 不在 2000..2100 年之间",
        "query.from: date 0001-01-01 is outside the years 2000..2100",
    ]
    assert [r.status_code for r in control] == [422, 422]
    assert [_message(r.text) for r in control] == [
        "标题：含有控制字符(U+0007)，不接受此类字符",
        "body.title: contains a control character (U+0007); such characters are refused",
    ]
    # A notice's number is no escalation, and a city code is not a regular expression.
    assert _message(seq[0].text) == "序号：不是整数"
    assert _message(seq[1].text).startswith("path.seq: ")
    assert [_message(r.text) for r in city] == [
        "地市：应为六位数字的地市代码",
        "query.city: should be a city's six-digit code",
    ]
    assert [r.status_code for r in nowhere] == [404, 404]
    assert [_message(r.text) for r in nowhere] == ["页面不存在", "Not Found"]
    with httpx.Client(base_url=live.url, auth=("admin", PASSWORD), timeout=30) as c:
        api = c.get("/api/v1/audit", params={"from": "0001-01-01", "lang": "zh"})
    assert api.status_code == 422
    assert api.json()["detail"] == "query.from: date 0001-01-01 is outside the years 2000..2100"
    # A parameter given twice that a route takes once: refused, not the last one taken;
    # a list parameter may repeat.
    with live.browser("admin") as (b, _):
        twice = _both(b, "GET", "/overview", params=[("period", "month"), ("period", "day")])
    assert [r.status_code for r in twice] == [422, 422]
    assert [_message(r.text) for r in twice] == [
        "周期：只能给出一次，却给出了 2 次",
        "query.period: given 2 times; give it once",
    ]
    with httpx.Client(base_url=live.url, auth=("admin", PASSWORD), timeout=30) as c:
        api = c.get("/api/v1/figures", params=[("period", "month"), ("period", "day")])
        assert api.status_code == 422
        assert api.json()["detail"] == "query.period: given 2 times; give it once"
        listed = c.get("/api/v1/trend", params=[("cities", CODES[0]), ("cities", CODES[1])])
        assert listed.status_code == 200 and set(listed.json()["cities"]) == set(CODES[:2])
    assert _store(live.engine) == before
