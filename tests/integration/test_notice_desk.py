"""Notices from the supervisor web to real city nodes over loopback mutual TLS, on SQLite and
PostgreSQL: a task composed in the web (form → preview → send) reaches every targeted city
exactly once and no other; one city marks it done, one objects, and the hub's notice page
shows both; the objection's answer, sent from the page, reaches that city only, linked to
the task. A standard answer's second version supersedes the first at the city."""

from __future__ import annotations

import asyncio
import re
import socket
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select

from city_node import services as city_services
from city_node.context import Actor
from city_node.domain import Role
from city_node.store import InboxNotice
from province_hub import staff
from province_hub.staff import HubRole
from province_hub.store import NoticeDelivery
from sync.cli import main
from tests.conftest import ROSTER_CODES, wait_until

PASSWORD = "announcer-pass-1"
DONE_CITY, OBJECTING_CITY, BYSTANDER = ROSTER_CODES[0], ROSTER_CODES[1], ROSTER_CODES[2]
#: Bounded waits for things that cross the link (a few seconds, never a timing assertion).
LINK_WAIT = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def _inbox(engine: Any) -> list[InboxNotice]:
    return city_services.inbox(engine, limit=500)


def _count(engine: Any, seq: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(InboxNotice).where(InboxNotice.notice_seq == seq)
            ).scalar_one()
        )


def _arrived_once(engine: Any, seq: int) -> bool:
    return _count(engine, seq) == 1


async def _federation(
    databases: Any,
    hub_settings_factory: Any,
    city_settings_factory: Any,
    start_hub: Any,
    start_city: Any,
    tmp_path: Path,
) -> tuple[Any, int, dict[str, Any]]:
    web_port = _free_port()
    hub = await start_hub(
        hub_settings_factory(
            databases("hub"),
            http_port=web_port,
            secret_key_file=tmp_path / "keys" / "hub-web.key",
            timezone="Asia/Shanghai",
        )
    )
    staff.add_staff(
        hub.engine, staff_id="announcer", name="公告员", role=HubRole.ANNOUNCER, password=PASSWORD
    )
    cities = {
        code: start_city(city_settings_factory(code, databases(f"city{code}"), hub.port))
        for code in (DONE_CITY, OBJECTING_CITY, BYSTANDER)
    }
    return hub, web_port, cities


async def _login(web: httpx.AsyncClient) -> str:
    token = _csrf((await web.get("/login")).text)
    r = await web.post(
        "/login", data={"csrf_token": token, "staff_id": "announcer", "password": PASSWORD}
    )
    assert r.status_code == 303, r.text
    return _csrf((await web.get("/notices/new")).text)


async def test_task_from_the_web_receipts_and_the_objection_answer(
    databases: Any,
    hub_settings_factory: Any,
    city_settings_factory: Any,
    start_hub: Any,
    start_city: Any,
    tmp_path: Path,
    capsys: Any,
) -> None:
    hub, web_port, cities = await _federation(
        databases, hub_settings_factory, city_settings_factory, start_hub, start_city, tmp_path
    )
    deadline = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=2)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=30) as web:
        token = await _login(web)
        form = {
            "csrf_token": token,
            "kind": "task",
            "title": "盘点积压工单",
            "body": "请于周五前完成积压工单盘点并回执",
            "priority": "high",
            "to": "some",
            "targets": [DONE_CITY, OBJECTING_CITY],
            "deadline": deadline.strftime("%Y-%m-%dT%H:%M"),
        }
        preview = await web.post("/notices/preview", data=form)
        assert preview.status_code == 200 and 'id="target-count">2<' in preview.text
        sent = await web.post("/notices/send", data=form)
        assert sent.status_code == 303
        seq = int(sent.headers["location"].rsplit("/", 1)[1])

        # Every targeted city gets it, once; the bystander never does.
        for code in (DONE_CITY, OBJECTING_CITY):
            engine = cities[code].engine
            await wait_until(partial(_arrived_once, engine, seq), what=f"task at {code}")

        def delivered() -> bool:
            with hub.engine.connect() as conn:
                rows = conn.execute(
                    select(NoticeDelivery.city_code, NoticeDelivery.delivered_at).where(
                        NoticeDelivery.notice_seq == seq
                    )
                ).all()
            return sorted(c for c, at in rows if at) == sorted([DONE_CITY, OBJECTING_CITY])

        await wait_until(delivered, what="the cities' cursors to confirm delivery")
        assert _count(cities[BYSTANDER].engine, seq) == 0
        (stored,) = [n for n in _inbox(cities[DONE_CITY].engine) if n.notice_seq == seq]
        assert stored.kind == "TASK" and stored.task_deadline is not None

        # One city marks it done, the other objects; the hub's page shows both.
        city_services.record_receipt(
            cities[DONE_CITY].engine,
            notice_seq=seq,
            action="done",
            actor=Actor("leader-1", Role.LEADER),
            note="已盘点 37 张",
        )
        city_services.record_receipt(
            cities[OBJECTING_CITY].engine,
            notice_seq=seq,
            action="objection",
            actor=Actor("leader-2", Role.LEADER),
            note="系统割接期间无法盘点",
        )

        async def page_shows_both() -> bool:
            page = (await web.get(f"/notices/{seq}")).text
            return "已盘点 37 张" in page and "系统割接期间无法盘点" in page

        loop_deadline = asyncio.get_running_loop().time() + LINK_WAIT
        while not await page_shows_both():
            assert asyncio.get_running_loop().time() < loop_deadline, (
                "the receipts never showed on the hub's page"
            )
            await asyncio.sleep(0.05)
        page = (await web.get(f"/notices/{seq}")).text
        assert 'id="completion-rate">50.0%' in page
        done_row = page.split(f'id="city-{DONE_CITY}"')[1].split("</tr>")[0]
        objection_row = page.split(f'id="city-{OBJECTING_CITY}"')[1].split("</tr>")[0]
        assert "已盘点 37 张" in done_row and 'class="tag good"' in done_row
        assert "系统割接期间无法盘点" in objection_row and "answer-form" in objection_row
        board = (await web.get("/api/v1/notices/board", headers={"X-CSRF-Token": token})).json()
        assert [(r["seq"], r["city_code"]) for r in board] == [(seq, OBJECTING_CITY)]

        # The objection is answered from the page: to that city only, linked to the task.
        answered = await web.post(
            f"/notices/{seq}/answer",
            data={"csrf_token": token, "city_code": OBJECTING_CITY, "answer": "割接后三日内完成"},
        )
        assert answered.status_code == 303

    objecting = cities[OBJECTING_CITY].engine

    def answer_arrived() -> list[InboxNotice]:
        return [n for n in _inbox(objecting) if n.reply_to_seq == seq]

    (answer,) = await wait_until(answer_arrived, timeout=LINK_WAIT, what="the answer")
    assert answer.body == "割接后三日内完成" and answer.title.startswith(f"Re #{seq}")
    with hub.engine.connect() as conn:
        targets = conn.execute(
            select(NoticeDelivery.city_code).where(NoticeDelivery.notice_seq == answer.notice_seq)
        ).scalars()
        assert list(targets) == [OBJECTING_CITY]
    for code in (DONE_CITY, BYSTANDER):
        assert _count(cities[code].engine, answer.notice_seq) == 0
    # The city's own view names the notice answered.
    assert main(["city", "inbox", "--code", OBJECTING_CITY, "--database-url", _url(objecting)]) == 0
    assert f"(re #{seq})" in capsys.readouterr().out


async def test_standard_answer_v2_supersedes_v1_at_the_city(
    databases: Any,
    hub_settings_factory: Any,
    city_settings_factory: Any,
    start_hub: Any,
    start_city: Any,
    tmp_path: Path,
) -> None:
    _hub, web_port, cities = await _federation(
        databases, hub_settings_factory, city_settings_factory, start_hub, start_city, tmp_path
    )
    city = cities[DONE_CITY].engine
    body = {
        "kind": "standard_answer",
        "title": "统一口径:国际漫游费争议",
        "category": "BILL.PLAN",
        "question": "国际漫游费争议怎么答复",
        "answer": "按出访地资费标准核减",
        "version": 1,
        "key": "roaming-disputes",
        "targets": [DONE_CITY],
    }
    auth = ("announcer", PASSWORD)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", auth=auth) as api:
        v1 = (await api.post("/api/v1/notices", json=body)).json()["seq"]
        await wait_until(lambda: _count(city, v1) == 1, what="v1 at the city")
        found = city_services.search_answers(city, "漫游")
        assert [(a.notice_seq, a.version) for a in found] == [(v1, 1)]
        v2 = (
            await api.post(
                "/api/v1/notices", json={**body, "version": 2, "answer": "先核减,再补发短信说明"}
            )
        ).json()["seq"]
    await wait_until(lambda: _count(city, v2) == 1, what="v2 at the city")
    current = city_services.search_answers(city, "漫游")
    assert [(a.notice_seq, a.version, a.answer) for a in current] == [
        (v2, 2, "先核减,再补发短信说明")
    ]
    assert city_services.superseded_answers(city, [v1, v2]) == {v1: v2}
    (v2_row,) = [n for n in _inbox(city) if n.notice_seq == v2]
    assert "supersedes v1" in (v2_row.handled_note or "")


def _url(engine: Any) -> str:
    url: str = engine.url.render_as_string(hide_password=False)
    return url
