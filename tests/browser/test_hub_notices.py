"""Composing a notice in a real Chromium against the supervisor web on a real uvicorn:
the form, the preview, the all-city confirmation (the send is refused until it is ticked),
then the cities' receipts — pushed through the hub's real ingest service, as a city's link
delivers them — on the notice's page, and an objection answered from it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from province_hub import staff
from province_hub.staff import HubRole
from province_hub.store import Notice, NoticeDelivery, create_schema
from sync.db import make_engine
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import serving
from tests.hub_web_support import CODES, NOW, PASSWORD, HubStore, web_app


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    create_schema(engine)
    staff.add_staff(
        engine, staff_id="announcer", name="公告员", role=HubRole.ANNOUNCER, password=PASSWORD
    )
    with serving(web_app(engine)) as url:
        yield url, engine
    engine.dispose()


def _receipt(seq: int, action: Any, note: str) -> pb.NoticeReceipt:
    receipt = pb.NoticeReceipt(notice_seq=seq, action=action, note=note, actor="leader-1")
    receipt.acted_at.FromDatetime(NOW)
    return receipt


def _notices(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Notice)).scalar_one())


def test_compose_preview_confirm_and_receipts(page: Any, live: tuple[str, Any]) -> None:
    url, engine = live
    page.goto(f"{url}/notices/new")
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    page.fill("#staff_id", "announcer")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/notices/new$"))

    # A task to every city: the preview shows it and asks for the second confirmation.
    page.select_option("#kind", "task")
    page.select_option("#priority", "urgent")
    page.fill("#title", "春节保障值班")
    page.fill("#body", "各地市除夕至初七安排双岗值班")
    page.check("#to-all")
    page.fill("#deadline", "2026-12-08T18:00")
    page.click("#preview")
    page.wait_for_url(re.compile(r".*/notices/preview$"))
    assert page.locator("#preview-title").inner_text().startswith("春节保障值班")
    assert page.locator("#target-count").inner_text() == "14"
    assert page.locator("#all-cities-warning").is_visible()
    assert _notices(engine) == 0  # a preview stores nothing

    # The browser itself will not send without the tick (the box is required)…
    page.click("#send")
    assert page.url.endswith("/notices/preview") and _notices(engine) == 0
    # …and back to edit keeps what was typed.
    page.click("#back-to-edit")
    assert page.locator("#title").input_value() == "春节保障值班"
    page.click("#preview")
    page.check("#confirm-all")
    page.click("#send")
    page.wait_for_url(re.compile(r".*/notices/\d+$"))
    seq = int(page.url.rsplit("/", 1)[1])
    assert page.locator("#tbl-receipts tbody tr").count() == 14
    assert page.locator("#completion-rate").inner_text() == "0.0%"

    # Two cities answer through the hub's ingest (what their links push).
    done_city, objecting = CODES[0], CODES[1]
    store = HubStore(engine)
    store.send(done_city, _receipt(seq, pb.READ, ""), _receipt(seq, pb.DONE, "已排班"))
    store.send(objecting, _receipt(seq, pb.OBJECTION, "人员不足,申请单岗"))
    page.reload()
    done_row = page.locator(f"#city-{done_city}")
    assert "已排班" in done_row.locator("td[data-key='done']").inner_text()
    assert done_row.locator("td[data-key='read']").inner_text().strip() != ""
    objection = page.locator(f"#city-{objecting} td[data-key='objection']")
    assert "人员不足,申请单岗" in objection.inner_text()
    assert page.locator("#completion-rate").inner_text() == "7.1%"  # 1 of 14

    # The objection is answered from the page, to that city only.
    objection.locator("input.answer-text").fill("同意单岗,须保持电话畅通")
    objection.locator("button.answer-send").click()
    page.wait_for_url(re.compile(rf".*/notices/{seq}(#.*)?$"))
    assert page.locator(f"#city-{objecting} .answered").is_visible()
    assert "同意单岗" in page.locator("#tbl-answers").inner_text()
    with engine.connect() as conn:
        answered = conn.execute(
            select(NoticeDelivery.city_code)
            .join(Notice, Notice.seq == NoticeDelivery.notice_seq)
            .where(Notice.reply_to_seq == seq)
        ).scalars()
        assert list(answered) == [objecting]

    # The board lists the 13 cities that have not marked it done.
    page.goto(f"{url}/notices/board")
    assert page.locator("#tbl-board tbody tr").count() == 13
    assert page.locator(f"#tbl-board tr[data-city='{done_city}']").count() == 0
