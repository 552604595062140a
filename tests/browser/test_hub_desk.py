"""The escalation desk in a real Chromium against a real uvicorn: the GM hotline signs in,
finds the overdue escalation on the desk, opens it (the customer's contact shown in full to
this role), takes it, writes a note, logs a contact and resolves it; the resolution is a
notice to that city; a supervisor sees the same case with the contact masked and no forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from province_hub import services
from sync.db import make_engine
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import serving
from tests.hub_web_support import PASSWORD, fill, web_app
from tests.integration.test_hub_desk_web import NAME, OLD, PHONE, escalate


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[str, Any, int]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    store = fill(engine)
    seq = escalate(
        store,
        OLD,
        "101",
        escalated="2026-11-23T10:00:00+08:00",
        registered="2026-11-20T09:00+08:00",
    )
    with serving(web_app(engine)) as url:
        yield url, engine, seq
    engine.dispose()


def _login(page: Any, url: str, who: str) -> None:
    page.goto(f"{url}/desk")
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    page.fill("#staff_id", who)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/desk$"))


def test_the_gm_hotline_takes_notes_and_resolves(page: Any, desk: Any) -> None:
    url, engine, seq = desk
    _login(page, url, "gm_hotline")
    row = page.locator(f"#tbl-desk tr[data-case='{OLD}/{seq}']")
    assert "overdue" in (row.get_attribute("class") or "")
    assert row.locator("td[data-key='age_escalated']").inner_text() == "9"
    row.locator("a.case-link").click()
    page.wait_for_url(re.compile(rf".*/desk/{OLD}/{seq}$"))
    assert page.locator("#customer-phone").inner_text() == PHONE
    assert page.locator("#customer-name").inner_text() == NAME

    page.select_option("#assignee-select", "gm_hotline")
    page.click("#take")
    page.wait_for_load_state()
    assert page.locator("#assignee").inner_text() == "gm_hotline"

    page.fill("#note-text", "客户要求书面答复")
    page.click("#add-note")
    page.wait_for_load_state()
    page.select_option("#contact-channel", "phone")
    page.fill("#contact-text", "已电话联系客户")
    page.click("#add-contact")
    page.wait_for_load_state()
    assert page.locator("#tbl-entries tr.entry-note").count() == 1
    assert page.locator("#tbl-entries tr.entry-contact").count() == 1

    page.select_option("#outcome-select", "partly_upheld")
    page.fill("#resolution-text", "减免当月话费50元")
    page.click("#resolve")
    page.wait_for_load_state()
    assert page.locator("#outcome").inner_text() == "部分成立"
    assert page.locator("#resolution").inner_text() == "减免当月话费50元"
    assert page.locator("#resolve-form").count() == 0 and page.locator("#take-form").count() == 0

    (sent,) = [
        pb.Notice.FromString(n) for n in services.notices_after(engine, city_code=OLD, after_seq=0)
    ]
    assert sent.kind == pb.ESCALATION_RESOLUTION
    assert sent.escalation_resolution.resolution == "减免当月话费50元"

    # The language switch keeps the page.
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert page.locator("#outcome").inner_text() == "Partly upheld"


def test_a_supervisor_sees_the_case_masked_and_cannot_work_it(page: Any, desk: Any) -> None:
    url, _engine, seq = desk
    _login(page, url, "supervisor")
    page.goto(f"{url}/desk/{OLD}/{seq}")
    assert page.locator("#customer-phone").inner_text() == "138****5678"
    assert page.locator("#customer-name").inner_text() == "张**"
    assert page.locator("#desk-actions").count() == 0
