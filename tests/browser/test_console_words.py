"""What a person reads in the console: notices with Chinese kind, priority and sender and a
short reference; the ticket list's total, pages and overtime; the English menu on one line
at 1280 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from city_node import services, tickets
from city_node.context import Actor
from city_node.domain import Role
from city_node.tickets import NewTicket
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.browser.conftest import LiveConsole
from tests.browser.test_console import log_in


def test_inbox_speaks_chinese_with_short_references(page: Any, live_console: LiveConsole) -> None:
    now = datetime.now(UTC)
    for seq, kind, priority in (
        (1_800_000_000_001, pb.ANNOUNCEMENT, pb.NORMAL),
        (1_800_000_000_002, pb.TASK, pb.HIGH),
    ):
        notice = pb.Notice(
            seq=seq, kind=kind, priority=priority, title=f"通知{seq % 10}", sender="announcer"
        )
        notice.created_at.FromDatetime(now)
        services.accept_notice(live_console.engine, notice)
    log_in(page, live_console, "leader")
    page.goto(f"{live_console.url}/inbox")
    day = now.astimezone(live_console.ctx.zone).strftime("%Y%m%d")
    task = page.locator("#notice-1800000000002")
    assert task.locator(".notice-ref").inner_text() == f"N-{day}-2"
    assert task.locator(".notice-kind").inner_text() == "任务 · 优先级 高"
    assert task.locator(".notice-sender").inner_text() == "省中心公告员"
    first = page.locator("#notice-1800000000001")
    assert first.locator(".notice-ref").inner_text() == f"N-{day}-1"
    assert "1800000000001" not in first.locator("h2").inner_text()


def test_ticket_list_total_pages_and_overtime(page: Any, live_console: LiveConsole) -> None:
    ctx = live_console.ctx
    actor = Actor("senior", Role.OPERATOR_SENIOR)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    for i in range(55):
        tickets.register(
            ctx,
            actor,
            NewTicket(
                kind="complaint",
                category="BILL.DISPUTE",
                channel="phone",
                customer_phone=f"1380000{i:04d}",
                customer_name="",
                tier="ordinary",
                content="话费有误",
            ),
            at=long_ago if i == 0 else None,
        )
    log_in(page, live_console, "senior")
    assert page.locator("#ticket-total").inner_text() == "共 55 张工单 · 第 1 / 2 页"
    page.locator("#pages a", has_text="2").first.click()
    page.wait_for_load_state()
    assert "第 2 / 2 页" in page.locator("#ticket-total").inner_text()
    # Ticket 1 was registered 40 days ago and is still open: overtime, highlighted.
    assert page.locator("#tickets tr.overtime-row").count() >= 1


@pytest.mark.parametrize("who", ["leader", "senior"])
def test_english_menu_fits_on_one_line_at_1280(
    browser: Any, live_console: LiveConsole, who: str
) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(5000)
    try:
        log_in(page, live_console, who)
        page.goto(f"{live_console.url}/tickets?lang=en")
        tops = page.eval_on_selector_all(
            "header nav a, header .brand, header .who, header .lang",
            "els => els.map(e => Math.round(e.getBoundingClientRect().top))",
        )
        assert max(tops) - min(tops) < 12, tops
    finally:
        context.close()
