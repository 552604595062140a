"""Main paths of the city console in a real browser: log in, register and dispatch a
ticket, work it to closed and surveyed, approve a report, answer a notice, switch language."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from city_node import reports, services
from sync.outbox import OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.browser.conftest import PASSWORD, LiveConsole


def log_in(page: Any, console: LiveConsole, who: str) -> None:
    page.goto(f"{console.url}/login")
    page.fill("#staff_id", who)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/tickets$"))


def log_out(page: Any) -> None:
    page.click("#logout")
    page.wait_for_url(re.compile(r".*/login$"))


def act(page: Any, action: str, **fields: str) -> None:
    form = page.locator(f"#form-{action}")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def outbox_rows(console: LiveConsole, kind: str) -> int:
    with console.engine.connect() as conn:
        query = select(func.count()).select_from(OutboxRow).where(OutboxRow.kind == kind)
        return int(conn.execute(query).scalar_one())


def test_wrong_password_then_login(page: Any, live_console: LiveConsole) -> None:
    page.goto(f"{live_console.url}/tickets")
    page.wait_for_url(re.compile(r".*/login\?next=/tickets$"))
    page.fill("#staff_id", "senior")
    page.fill("#password", "not-the-password")
    page.click("#login")
    assert page.locator("#login-error").inner_text() == "工号或密码错误"
    log_in(page, live_console, "senior")
    assert page.locator("h1").inner_text() == "工单"


def test_register_dispatch_work_to_closed_and_survey(page: Any, live_console: LiveConsole) -> None:
    log_in(page, live_console, "senior")
    page.click("a[href='/tickets/new']")
    page.select_option("#kind", "complaint")
    page.select_option("#category", "BILL.DISPUTE")
    page.select_option("#channel", "phone")
    page.fill("#customer_phone", "13800000001")
    page.fill("#customer_name", "张三")
    page.fill("#content", "十月话费重复扣费")
    page.check("#then-dispatch")
    page.fill("#branch", "城关营业部")
    page.click("#register")
    page.wait_for_url(re.compile(r".*/tickets/1$"))
    assert page.locator("#ticket-status").inner_text() == "已派单"

    act(page, "start")
    assert page.locator("#ticket-status").inner_text() == "处理中"
    act(page, "branch_return", note="已退费")
    assert page.locator("#ticket-status").inner_text() == "已回单"
    act(page, "close", note="已告知客户")
    assert page.locator("#ticket-status").inner_text() == "已结案"
    assert page.locator("#form-survey").count() == 0  # surveyors only
    log_out(page)

    log_in(page, live_console, "surveyor")
    page.goto(f"{live_console.url}/tickets/1")
    page.locator("#form-survey select[name=outcome]").select_option("very_satisfied")
    act(page, "survey")
    assert page.locator("#ticket-status").inner_text() == "已回访"
    history = page.locator("#history tbody tr")
    assert history.count() == 6
    assert "满意度回访" in history.nth(5).inner_text()


def test_leader_approves_a_report(page: Any, live_console: LiveConsole) -> None:
    yesterday = live_console.ctx.today() - timedelta(days=1)
    draft = reports.draft(live_console.ctx, "statistics", "day", yesterday, by="stat")
    log_in(page, live_console, "leader")
    page.click("a[href='/reports']")
    card = page.locator(f"#report-{draft.id}")
    assert "按时结案率" in card.locator(f"#kpis-{draft.id}").inner_text()
    card.locator("form[action$='/approve'] input[name=note]").fill("同意上报")
    card.locator("button.approve").click()
    page.wait_for_load_state()
    assert page.locator("#no-reports").is_visible()
    assert page.locator("#recent-reports .report-status").first.inner_text() == "已批准"
    assert outbox_rows(live_console, "statistics_report") == 1


def test_inbox_receipt(page: Any, live_console: LiveConsole) -> None:
    notice = pb.Notice(
        seq=5,
        kind=pb.TASK,
        priority=pb.HIGH,
        title="网络割接通知",
        body="请告知来电客户",
        sender="省客服中心",
    )
    notice.created_at.GetCurrentTime()
    services.accept_notice(live_console.engine, notice)
    log_in(page, live_console, "leader")
    page.click("a[href='/inbox']")
    card = page.locator("#notice-5")
    assert "网络割接通知" in card.locator("h2").inner_text()
    card.locator("input.done-note").fill("已在班前会传达")
    card.locator("button.receipt-done").click()
    page.wait_for_load_state()
    assert "已在班前会传达" in page.locator("#notice-5 .receipts").inner_text()
    assert outbox_rows(live_console, "notice_receipt") == 1


def test_switch_language(page: Any, live_console: LiveConsole) -> None:
    log_in(page, live_console, "leader")
    assert page.locator("h1").inner_text() == "工单"
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Tickets"
    page.click("a[href='/link']")
    assert page.locator("#link-state").inner_text() == "never connected"
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert page.locator("#link-state").inner_text() == "从未连接"


def test_api_docs_render_under_their_content_security_policy(
    page: Any, live_console: LiveConsole
) -> None:
    blocked: list[str] = []
    page.on(
        "console",
        lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    outside: list[str] = []
    page.on(
        "request",
        lambda req: outside.append(req.url) if not req.url.startswith(live_console.url) else None,
    )
    response = page.goto(f"{live_console.url}/api/docs")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    # Swagger UI drew the API from /openapi.json: its operations are on the page.
    page.wait_for_selector(".opblock-summary-path", timeout=15000)
    assert page.locator(".opblock-summary-path").count() > 5
    assert blocked == [] and outside == []


def test_a_member_changes_their_own_password_from_the_header(
    page: Any, live_console: LiveConsole
) -> None:
    log_in(page, live_console, "senior")
    page.click("#account-link")  # the name in the header
    page.wait_for_url(re.compile(r".*/account$"))
    assert "senior" in page.locator("#account-who").inner_text()
    for current, again, said in (
        ("not-the-password", "senior-new-secret", "当前密码不正确"),
        (PASSWORD, "senior-other-secret", "两次输入的新密码不一致"),
    ):
        page.fill("#current", current)
        page.fill("#new", "senior-new-secret")
        page.fill("#again", again)
        page.click("#change-password")
        assert page.locator("#error-message").inner_text() == said
    page.fill("#current", PASSWORD)
    page.fill("#new", "senior-new-secret")
    page.fill("#again", "senior-new-secret")
    page.click("#change-password")
    page.wait_for_url(re.compile(r".*/account\?changed=1$"))
    assert page.locator("#password-changed").is_visible()
    log_out(page)
    page.fill("#staff_id", "senior")
    page.fill("#password", "senior-new-secret")
    page.click("#login")
    page.wait_for_url(re.compile(r".*/tickets$"))
