"""The escalation desk end to end over real mTLS, on SQLite and PostgreSQL: a city node
escalates a complaint → it is on the hub's desk (the hub's own supervisor web) → the GM
hotline takes it, notes it and resolves it in the web → the city's ticket returns, is closed
and surveyed → the desk shows when the city received the resolution, that it closed the
ticket and the callback's satisfaction. And a trace asked from the web is answered by the
city and shown masked to a supervisor, unmasked to the GM hotline."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from city_node import tickets
from city_node.context import Actor, make_context
from city_node.domain import Action, Role, Status
from province_hub import staff
from province_hub.status import link_status
from province_hub.store import Record
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests import ticket_steps
from tests.conftest import wait_until

CODE = "620100"
JUNIOR = Actor("op-j1", Role.OPERATOR_JUNIOR)
SENIOR = Actor("op-s1", Role.OPERATOR_SENIOR)
MANAGER = Actor("mgr-1", Role.MANAGER_HOTLINE)
SURVEYOR = Actor("sv-1", Role.SURVEYOR)
PASSWORD = "desk-pass-1234"
PHONE, NAME = "13712345678", "欧阳娜娜"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def federation(
    databases: Any,
    hub_settings_factory: Any,
    city_settings_factory: Any,
    start_hub: Any,
    start_city: Any,
    tmp_path: Path,
) -> Any:
    hub = await start_hub(
        hub_settings_factory(
            databases("hub"),
            http_port=_free_port(),
            secret_key_file=tmp_path / "web.key",
            escalation_limit_days=3,
        )
    )
    for who in ("gm-1", "sup-1"):
        role = "gm_hotline" if who == "gm-1" else "supervisor"
        staff.add_staff(hub.engine, staff_id=who, name=who, role=role, password=PASSWORD)
    city = start_city(city_settings_factory(CODE, databases("city"), hub.port))
    url = f"http://127.0.0.1:{hub.settings.http_port}"
    return hub, city, make_context(city.engine, CODE), url


async def _signed_in(url: str, who: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    token = _csrf((await client.get("/login")).text)
    r = await client.post(
        "/login", data={"csrf_token": token, "staff_id": who, "password": PASSWORD}
    )
    assert r.status_code == 303, r.text
    return client, _csrf((await client.get("/links")).text)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def _poll(client: httpx.AsyncClient, path: str, check: Any, what: str) -> Any:
    found: list[Any] = []

    async def probe() -> bool:
        data = (await client.get(path)).json()
        if check(data):
            found.append(data)
            return True
        return False

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not await probe():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return found[-1]


async def test_escalated_resolved_in_the_web_closed_and_surveyed_at_the_city(
    federation: Any,
) -> None:
    hub, _city, ctx, url = federation
    new = tickets.NewTicket("complaint", "NET.BROADBAND", "phone", PHONE, NAME, "vip", "断网")
    vip = tickets.register(ctx, JUNIOR, new, then=Action.HAND_TO_SENIOR)
    ticket_steps.act(ctx, SENIOR, vip.id, "escalate_manager", note="客户不接受")
    ticket_steps.act(ctx, MANAGER, vip.id, "escalate_province", note="需要省公司决定")

    gm, token = await _signed_in(url, "gm-1")
    sup, _ = await _signed_in(url, "sup-1")
    try:
        (case,) = await _poll(sup, "/api/v1/desk", lambda rows: len(rows) == 1, "the desk case")
        assert case["ticket_id"] == str(vip.id) and case["city_code"] == CODE
        assert case["tier"] == "vip" and case["category"] == "NET.BROADBAND"
        assert case["age_escalated"] == 0 and case["overdue"] is False
        path = f"/desk/{CODE}/{case['seq']}"
        shown = (await sup.get(f"/api/v1{path}")).json()
        assert [h["action"] for h in shown["history"]][-1] == "escalate_province"
        assert shown["customer_phone"] == "137****5678" and shown["customer_name"] == "欧***"
        page = (await gm.get(path)).text
        assert PHONE in page and NAME in page

        form = {"csrf_token": token}
        assert (await gm.post(f"{path}/take", data={**form, "assignee": "gm-1"})).status_code == 303
        r = await gm.post(f"{path}/note", data={**form, "text": "已核实计费记录"})
        assert r.status_code == 303
        r = await gm.post(
            f"{path}/resolve",
            data={**form, "outcome": "upheld", "resolution": "退还一个月宽带费"},
        )
        assert r.status_code == 303

        returned = await wait_until(
            lambda: tickets.get(ctx, vip.id).status is Status.RETURNED,
            what="the resolution applied at the city",
        )
        assert returned
        steps = tickets.history(ctx, vip.id)
        assert steps[-1].action.value == "province_resolved"
        assert steps[-1].params["resolution"] == "退还一个月宽带费"
        delivered = await _poll(
            sup,
            f"/api/v1{path}",
            lambda c: c["resolution_delivered_at"] is not None,
            "the city's receipt of the resolution",
        )
        assert delivered["closed_at"] is None and delivered["satisfaction"] is None

        ticket_steps.act(ctx, SENIOR, vip.id, "close", note=f"{NAME}接受退费，已回拨{PHONE}")
        closed = await _poll(
            sup, f"/api/v1{path}", lambda c: c["closed_at"] is not None, "the close"
        )
        assert closed["city_status"] == "closed" and closed["satisfaction"] is None
        ticket_steps.act(ctx, SURVEYOR, vip.id, "survey", outcome="satisfied")
        surveyed = await _poll(
            sup, f"/api/v1{path}", lambda c: c["satisfaction"] == "satisfied", "the callback"
        )
        assert surveyed["city_status"] == "surveyed" and surveyed["surveyed_at"]
        assert surveyed["outcome"] == "upheld" and surveyed["assignee"] == "gm-1"
        assert [h["action"] for h in surveyed["follow_up_history"]][-2:] == ["close", "survey"]
        # A follow-up carries no customer contact (a note repeating it is masked), and is
        # no new case.
        with hub.engine.connect() as conn:
            bodies = conn.execute(
                select(Record.body)
                .where(Record.city_code == CODE, Record.kind == "escalation")
                .order_by(Record.seq)
            ).all()
        assert len(bodies) >= 3  # the escalation, the close, the callback
        for (body,) in bodies[1:]:
            follow_up = pb.Escalation.FromString(bytes(body))
            assert follow_up.HasField("follow_up")
            assert PHONE.encode() not in bytes(body) and NAME.encode() not in bytes(body)
        notes = [h.note for h in follow_up.history if h.action == "close"]
        assert notes == ["欧***接受退费，已回拨137****5678"]
        assert len((await sup.get("/api/v1/desk", params={"state": "all"})).json()) == 1
        page = (await sup.get(path, params={"lang": "en"})).text
        assert 'id="satisfaction">Satisfied' in page and 'id="outcome">Upheld' in page
        assert 'id="city-status">surveyed' in page
        # The link status counts the one escalated complaint, its follow-ups apart.
        (link,) = [r for r in link_status(hub.engine, [CODE]) if r["city_code"] == CODE]
        assert link["records"]["escalation"] == 1
        assert link["records"]["escalation_follow_up"] >= 2  # the close and the callback
    finally:
        await gm.aclose()
        await sup.aclose()


async def test_a_trace_asked_in_the_web_is_answered_and_kept(federation: Any) -> None:
    _hub, _city, ctx, url = federation
    new = tickets.NewTicket("complaint", "BILL.DISPUTE", "phone", PHONE, NAME, "ordinary", "x")
    t = tickets.register(ctx, JUNIOR, new, then=Action.DISPATCH, branch="城关")
    sup, sup_token = await _signed_in(url, "sup-1")
    gm, gm_token = await _signed_in(url, "gm-1")
    try:
        r = await sup.post("/traces", data={"csrf_token": sup_token, "city": CODE, "ticket": t.id})
        assert r.status_code == 303
        r = await gm.post("/traces", data={"csrf_token": gm_token, "city": CODE, "ticket": t.id})
        assert r.status_code == 303
        answered = await _poll(
            sup,
            "/api/v1/traces",
            lambda rows: len(rows) == 2 and all(x["state"] == "answered" for x in rows),
            "both traces answered",
        )
        # The supervisor sees every answer masked, the GM hotline's one included.
        assert {x["answer"]["customer_phone"] for x in answered} == {"137****5678"}
        assert all(x["answer"]["status"] == "dispatched" for x in answered)
        by_gm = [x for x in (await gm.get("/api/v1/traces")).json() if x["from_gm_hotline"]]
        assert by_gm[0]["answer"]["customer_phone"] == PHONE
        page = (await sup.get("/traces")).text
        assert "137****5678" in page and PHONE not in page
    finally:
        await sup.aclose()
        await gm.aclose()
