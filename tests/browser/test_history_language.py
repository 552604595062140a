"""A ticket's history reads in the reader's language: what the product wrote (dispatched to a
branch, a survey's outcome and a reopening) is stored as a code with parameters and shown in
Chinese or English; the person's own note is shown as written."""

from __future__ import annotations

from typing import Any

from city_node import tickets
from city_node.context import Actor
from city_node.domain import Role
from city_node.tickets import NewTicket
from tests import ticket_steps
from tests.browser.conftest import LiveConsole
from tests.browser.test_console import log_in


def test_history_in_chinese_then_english(page: Any, live_console: LiveConsole) -> None:
    ctx = live_console.ctx
    senior = Actor("senior", Role.OPERATOR_SENIOR)
    ticket = tickets.register(
        ctx,
        senior,
        NewTicket(
            kind="complaint",
            category="BILL.DISPUTE",
            channel="phone",
            customer_phone="13800000009",
            customer_name="",
            tier="ordinary",
            content="宽带掉线",
        ),
    )
    ticket_steps.act(ctx, senior, ticket.id, "dispatch", branch="网络维护中心", note="尽快处理")
    ticket_steps.act(ctx, senior, ticket.id, "start")
    ticket_steps.act(ctx, senior, ticket.id, "branch_return", note="已修复")
    ticket_steps.act(ctx, senior, ticket.id, "close")
    surveyor = Actor("surveyor", Role.SURVEYOR)
    ticket_steps.act(ctx, surveyor, ticket.id, "survey", outcome="dissatisfied", reopen=True)

    log_in(page, live_console, "senior")
    page.goto(f"{live_console.url}/tickets/{ticket.id}")
    rows = page.locator("#history tbody")
    zh = rows.inner_text()
    assert "派往 网络维护中心：尽快处理" in zh
    assert "不满意；已重新打开" in zh
    assert "reopened" not in zh and "to 网络维护中心" not in zh

    page.click("#lang-switch")
    page.wait_for_load_state()
    en = page.locator("#history tbody").inner_text()
    assert "to 网络维护中心: 尽快处理" in en
    assert "; reopened" in en and "已重新打开" not in en
