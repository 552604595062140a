"""The manager hotline records compensation from the ticket page (real console, SQLite and
PostgreSQL): the amount in yuan (at most two decimals) becomes fen as the API takes them,
each payment a step of the ticket's history; the form is the manager hotline's alone and
shown on complaints only; an amount that is not yuan, or is nothing, is refused naming it,
with the ticket unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from city_node.store import TicketRow
from tests.security.conftest import Console, csrf_of, new_ticket


def _complaint(console: Console, **fields: str) -> int:
    """A new ticket, already past its time limit (compensation is paid for overtime): its
    deadline moved a day back, as if the days had gone by."""
    with console.api("senior") as c:
        made = c.post("/api/v1/tickets", json=new_ticket(**fields))
        assert made.status_code == 201, made.text
        ticket = int(made.json()["id"])
    with console.engine.begin() as conn:
        conn.execute(
            update(TicketRow)
            .where(TicketRow.id == ticket)
            .values(deadline=datetime.now(UTC) - timedelta(days=1))
        )
    return ticket


def test_a_complaint_within_its_limit_is_not_compensated(console: Console) -> None:
    with console.api("senior") as c:
        made = c.post("/api/v1/tickets", json=new_ticket())
        ticket = int(made.json()["id"])
    with console.browser("manager") as manager:
        refused = _pay(manager, ticket, "5")
        assert refused.status_code == 422 and "未超时" in refused.text
    assert _paid(console, ticket) == (0, ["register"])


def _pay(client: httpx.Client, ticket: int, yuan: str, note: str = "超时赔付") -> httpx.Response:
    token = csrf_of(client.get(f"/tickets/{ticket}").text)
    return client.post(
        f"/tickets/{ticket}/compensation", data={"csrf_token": token, "yuan": yuan, "note": note}
    )


def _paid(console: Console, ticket: int) -> tuple[int, list[str]]:
    with console.api("leader") as c:
        detail = c.get(f"/api/v1/tickets/{ticket}").json()
    steps = [h["action"] for h in detail["history"]]
    return detail["compensation_fen"], steps


def test_the_manager_hotline_pays_in_yuan_from_the_ticket_page(console: Console) -> None:
    ticket = _complaint(console)
    with console.browser("manager") as manager:
        page = manager.get(f"/tickets/{ticket}")
        assert 'id="form-compensation"' in page.text
        assert _pay(manager, ticket, "12.50").status_code == 303
        assert _pay(manager, ticket, " 3 ").status_code == 303
        page = manager.get(f"/tickets/{ticket}?lang=en")
    fen, steps = _paid(console, ticket)
    assert fen == 1550 and steps.count("compensate") == 2
    assert "15.50 yuan" in page.text


def test_amounts_that_are_not_yuan_are_refused_and_change_nothing(console: Console) -> None:
    ticket = _complaint(console)
    with console.browser("manager") as manager:
        for yuan in ("0", "0.00", "12.345", "-1", "abc", "1e3", "１２", "", "99999999999"):
            refused = _pay(manager, ticket, yuan)
            assert refused.status_code == 422, (yuan, refused.status_code)
            assert "赔偿金额" in refused.text, yuan
        no_note = _pay(manager, ticket, "5", note="")
        assert no_note.status_code == 422
    assert _paid(console, ticket) == (0, ["register"])


def test_only_the_manager_hotline_gets_the_form_and_only_on_complaints(console: Console) -> None:
    complaint = _complaint(console)
    enquiry = _complaint(console, kind="enquiry")
    with console.browser("manager") as manager:
        assert 'id="form-compensation"' not in manager.get(f"/tickets/{enquiry}").text
        assert _pay(manager, enquiry, "5").status_code == 422  # the service: complaints only
    for who in ("senior", "leader", "surveyor"):
        with console.browser(who) as other:
            assert 'id="form-compensation"' not in other.get(f"/tickets/{complaint}").text
            assert _pay(other, complaint, "5").status_code == 403, who
    assert _paid(console, complaint)[0] == 0


def test_the_payment_note_is_masked_like_the_ticket_for_roles_that_do_not_call_customers(
    console: Console,
) -> None:
    ticket = _complaint(console)  # the customer: 李四, 13812345678
    with console.browser("manager") as manager:
        assert _pay(manager, ticket, "20", note="已转账给李四 13812345678").status_code == 303
        assert "13812345678" in manager.get(f"/tickets/{ticket}").text
    for who in ("stat", "leader", "inspector", "clerk"):
        with console.browser(who) as reader:
            page = reader.get(f"/tickets/{ticket}").text
        with console.api(who) as api:
            note = api.get(f"/api/v1/tickets/{ticket}").json()["compensation_note"]
        for shown in (page, note):
            assert "13812345678" not in shown and "李四" not in shown, who
