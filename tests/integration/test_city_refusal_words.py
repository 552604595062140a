"""The city console says what is wrong in the page's language, over a real uvicorn on SQLite
and PostgreSQL: a refusal of the city's services (the ticket rules, a phone number, a notice
receipt, a report decision, a form value) comes back with the Chinese sentence on a Chinese
page and the English one on an English page (``?lang=en``), the store as it was; the API
keeps its English ``detail`` for the same refusals, whatever language is asked.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from city_node.store import InboxNotice, Report, TicketRow
from sync.outbox import OutboxRow
from tests.conftest import serving
from tests.security.conftest import Console, csrf_of, make_console, new_ticket

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def console(databases: Any) -> Iterator[Console]:
    engine, ctx, app = make_console(databases("refusalwords"))
    with serving(app) as base_url:
        yield Console(base_url, engine, ctx)
    engine.dispose()


def _message(page: httpx.Response) -> str:
    """The refusal a page shows (``#error-message``), unescaped."""
    found = re.search(r'id="error-message"[^>]*>([^<]*)<', page.text)
    assert found, f"no refusal on the page: {page.text[:300]}"
    return html.unescape(found.group(1))


def _both(c: httpx.Client, path: str, data: dict[str, Any]) -> list[httpx.Response]:
    """The same form posted from a Chinese page and from an English one."""
    return [c.post(path, params={"lang": lang}, data=data) for lang in ("zh", "en")]


def _store(console: Console) -> tuple[int, ...]:
    """How many rows a refused form could have added."""
    with console.engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (TicketRow, OutboxRow, Report, InboxNotice)
        )


def _answered_ticket(console: Console) -> int:
    with console.api("senior") as op:
        created = op.post("/api/v1/tickets", json=new_ticket(then="answer"))
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def test_an_illegal_step_names_status_and_actions_in_the_page_language(console: Console) -> None:
    tid = _answered_ticket(console)
    before = _store(console)
    with console.browser("senior") as c:
        token = csrf_of(c.get(f"/tickets/{tid}").text)
        pages = _both(c, f"/tickets/{tid}/act", {"csrf_token": token, "action": "chase"})
    assert [p.status_code for p in pages] == [409, 409]
    assert [_message(p) for p in pages] == [
        "工单当前状态为“已答复”，不能执行“追单”；此状态下可执行：满意度回访",
        "cannot chase a ticket in status answered; allowed from answered: survey",
    ]
    assert 'lang="zh-CN"' in pages[0].text and 'lang="en"' in pages[1].text
    assert _store(console) == before


def test_a_role_refusal_names_role_action_and_tier_in_the_page_language(console: Console) -> None:
    before = _store(console)
    with console.browser("junior") as c:
        token = csrf_of(c.get("/tickets/new").text)
        form = {"csrf_token": token, **new_ticket(tier="vip", then="answer")}
        pages = _both(c, "/tickets", form)
    assert [p.status_code for p in pages] == [403, 403]
    assert [_message(p) for p in pages] == [
        "角色“初级话务员”无权执行“答复”：“VIP”级别的客户由高级话务员服务，请转交高级话务员",
        "role operator_junior may not answer: vip customers are served by senior operators; "
        "hand it to a senior",
    ]
    assert _store(console) == before


@pytest.mark.parametrize(
    ("phone", "zh", "en"),
    [
        (
            "138-abcd",
            "客户电话：请填写数字(空格和短横线会被去掉)",
            "customer_phone: use digits (spaces and dashes are dropped)",
        ),
        (
            "123",
            "客户电话共 3 位；电话号码应为 5 至 20 位",
            "customer_phone has 3 digits; a phone number has 5 to 20",
        ),
        (  # full-width digits are not the digits a phone is stored with
            "１３８００１３８０００",
            "客户电话：请填写数字(空格和短横线会被去掉)",
            "customer_phone: use digits (spaces and dashes are dropped)",
        ),
    ],
)
def test_a_bad_phone_number_is_refused_in_the_page_language(
    console: Console, phone: str, zh: str, en: str
) -> None:
    before = _store(console)
    with console.browser("senior") as c:
        token = csrf_of(c.get("/tickets/new").text)
        pages = _both(c, "/tickets", {"csrf_token": token, **new_ticket(customer_phone=phone)})
    assert [p.status_code for p in pages] == [422, 422]
    assert [_message(p) for p in pages] == [zh, en]
    assert _store(console) == before


def test_a_missing_field_is_named_by_its_chinese_name_on_a_chinese_page(
    console: Console,
) -> None:
    before = _store(console)
    form = {k: v for k, v in new_ticket().items() if k != "customer_phone"}
    with console.browser("senior") as c:
        token = csrf_of(c.get("/tickets/new").text)
        pages = _both(c, "/tickets", {"csrf_token": token, **form})
    assert [p.status_code for p in pages] == [422, 422]
    assert [_message(p) for p in pages] == ["客户电话：必填", "customer_phone: Field required"]
    assert _store(console) == before


def test_areas_list_filters_and_account_fields_are_named_in_chinese(console: Console) -> None:
    with console.browser("senior") as c:
        token = csrf_of(c.get("/tickets").text)
        staff_page = c.post("/staff/junior/disable", data={"csrf_token": token})
        flag = c.get("/tickets", params={"open_only": "maybe"})
        phone = c.get("/tickets", params={"phone": "1"})
        password = c.post(
            "/account/password", data={"csrf_token": token, "current": "x", "new": "y"}
        )
    assert staff_page.status_code == 403
    assert _message(staff_page) == "角色“高级话务员”无权使用“人员管理”；仅限：中心领导"
    assert flag.status_code == 422 and _message(flag) == "仅未办结：应为 true 或 false"
    assert phone.status_code == 422 and _message(phone) == "电话共 1 位；电话号码应为 5 至 20 位"
    assert password.status_code == 422 and _message(password) == "再次输入的新密码：必填"


def test_the_list_pages_within_its_tickets(console: Console) -> None:
    for _ in range(3):
        _answered_ticket(console)
    with console.browser("senior") as c:
        negative = c.get("/tickets", params={"offset": "-1"})
        beyond = c.get("/tickets", params={"offset": "100", "kind": "complaint"})
    assert negative.status_code == 422 and "起始位置" in _message(negative)
    # Past the last page: the last page, whose number is the one said.
    assert beyond.status_code == 303
    assert beyond.headers["location"] == "/tickets?kind=complaint&offset=0"
    # A role that may not search by phone learns nothing by paging past a phone's tickets.
    with console.browser("leader") as c:
        for offset in ("0", "1", "100"):
            probe = c.get("/tickets", params={"phone": "13812345678", "offset": offset})
            assert probe.status_code == 403, (offset, probe.status_code)


def test_receipts_and_report_decisions_are_refused_in_the_page_language(
    console: Console,
) -> None:
    before = _store(console)
    with console.browser("leader") as c:
        token = csrf_of(c.get("/inbox").text)
        objection = _both(
            c, "/inbox/5/receipt", {"csrf_token": token, "action": "objection", "note": "  "}
        )
        unknown = _both(c, "/inbox/999/receipt", {"csrf_token": token, "action": "read"})
        bad_action = _both(c, "/inbox/5/receipt", {"csrf_token": token, "action": "ignore"})
        reject = _both(c, "/reports/3/reject", {"csrf_token": token, "note": ""})
    assert [p.status_code for p in objection] == [422, 422]
    assert [_message(p) for p in objection] == [
        "提出异议须说明理由(备注)",
        "an objection needs its reason (note)",
    ]
    assert [p.status_code for p in unknown] == [404, 404]
    assert [_message(p) for p in unknown] == [
        "本市收件箱中没有公告 999",
        "notice 999 is not in this city's inbox",
    ]
    # A value the API's model refuses: the field named, pydantic's sentence in Chinese.
    assert [p.status_code for p in bad_action] == [422, 422]
    assert [_message(p) for p in bad_action] == [
        "操作：应为以下之一：'read', 'done', 'objection'；请修改后重新提交",
        "action: Input should be 'read', 'done' or 'objection'",
    ]
    assert [_message(p) for p in reject] == [
        "驳回须填写理由(审批意见)",
        "a rejection needs the reason (note)",
    ]
    assert _store(console) == before


def test_the_api_keeps_its_english_details(console: Console) -> None:
    """The same refusals through ``/api/v1`` answer the English sentence, whatever
    ``?lang=`` or the language cookie says: clients parse these strings."""
    tid = _answered_ticket(console)
    before = _store(console)
    zh = {"lang": "zh"}
    with console.api("senior") as op:
        op.cookies.set("lang", "zh")
        chase = op.post(f"/api/v1/tickets/{tid}/actions", params=zh, json={"action": "chase"})
        phone = op.post("/api/v1/tickets", params=zh, json=new_ticket(customer_phone="123"))
    with console.api("leader") as leader:
        objection = leader.post(
            "/api/v1/inbox/5/receipts", params=zh, json={"action": "objection", "note": ""}
        )
        early = leader.post(
            "/api/v1/reports",
            params=zh,
            json={"kind": "statistics", "period_kind": "month", "start": "1999-12-01"},
        )
        not_first = leader.post(
            "/api/v1/reports",
            params=zh,
            json={"kind": "statistics", "period_kind": "month", "start": "2026-11-05"},
        )
    assert chase.status_code == 409
    assert chase.json()["detail"] == (
        "cannot chase a ticket in status answered; allowed from answered: survey"
    )
    assert phone.status_code == 422
    assert phone.json()["detail"] == "customer_phone has 3 digits; a phone number has 5 to 20"
    assert objection.status_code == 422
    assert objection.json()["detail"] == "an objection needs its reason (note)"
    assert early.status_code == 422
    assert early.json()["detail"] == "start 1999-12-01 is outside the years 2000..2100"
    assert not_first.status_code == 422
    assert not_first.json()["detail"] == (
        "start 2026-11-05 is not the first day of a month (that month starts 2026-11-01)"
    )
    assert _store(console) == before
