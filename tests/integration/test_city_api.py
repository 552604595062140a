"""The city console over real HTTP (uvicorn on loopback) on real SQLite and PostgreSQL:
login and sessions, CSRF, role rules, the ticket lifecycle, report approval, QA, notice
receipts into the outbox, error bodies, both languages and the OpenAPI document."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import Engine, func, select

import sync.web
from city_node import reports, services, staff
from city_node.context import Actor, CityContext, make_context
from city_node.domain import Role
from city_node.store import InboxNotice, create_schema
from city_node.web.app import create_app
from city_node.web.i18n import LABELS
from sync.db import make_engine
from sync.outbox import Outbox, OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests import ticket_steps
from tests.conftest import serving

CITY = "620100"
PASSWORD = "correct-horse-1"
ROLES = {
    "junior": "operator_junior",
    "senior": "operator_senior",
    "manager": "manager_hotline",
    "surveyor": "surveyor",
    "inspector": "qa_inspector",
    "clerk": "materials_clerk",
    "stat": "statistician",
    "leader": "leader",
}
TEMPLATES = Path(__file__).parents[2] / "city_node" / "web" / "templates"
SHARED_TEMPLATES = Path(sync.web.__file__).parent / "templates"

pytestmark = pytest.mark.timeout(120)


@dataclass
class Console:
    base_url: str
    engine: Engine
    ctx: CityContext

    def api(self, who: str) -> httpx.Client:
        """A script's client: HTTP Basic as staff member ``who``."""
        return httpx.Client(base_url=self.base_url, auth=(who, PASSWORD), timeout=10)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)

    @contextmanager
    def browser(self, who: str) -> Iterator[httpx.Client]:
        """A client holding a session cookie, logged in through the login form."""
        with self.anonymous() as client:
            token = csrf_of(client.get("/login").text)
            done = client.post(
                "/login", data={"csrf_token": token, "staff_id": who, "password": PASSWORD}
            )
            assert done.status_code == 303, done.text
            yield client

    def outbox_rows(self, kind: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(OutboxRow).where(OutboxRow.kind == kind)
                ).scalar_one()
            )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


@pytest.fixture
def console(databases: Any) -> Iterator[Console]:
    engine = make_engine(databases("console"))
    create_schema(engine)
    services.open_store(engine, CITY)
    for staff_id, role in ROLES.items():
        staff.add(engine, staff_id=staff_id, name=staff_id.title(), role=role, password=PASSWORD)
    ctx = make_context(engine, CITY)
    app = create_app(ctx, Outbox(engine), secret_key=b"k" * 32)
    with serving(app) as base_url:
        yield Console(base_url, engine, ctx)
    engine.dispose()


def new_ticket(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "complaint",
        "category": "BILL.DISPUTE",
        "channel": "phone",
        "customer_phone": "13800000001",
        "customer_name": "Zhang San",
        "tier": "ordinary",
        "content": "charged twice for October",
    }
    body.update(overrides)
    return body


def ticket_count(console: Console) -> int:
    with console.api("leader") as c:
        return len(c.get("/api/v1/tickets", params={"limit": 500}).json())


# --- login, sessions, CSRF ------------------------------------------------------------------------


def test_nothing_without_login(console: Console) -> None:
    with console.anonymous() as c:
        page = c.get("/tickets")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=/tickets")
        api = c.get("/api/v1/tickets")
        assert api.status_code == 401
        assert "log in" in api.json()["detail"]
        assert api.headers["www-authenticate"].startswith("Basic")
        assert c.post("/api/v1/tickets", json=new_ticket()).status_code == 401
    with httpx.Client(base_url=console.base_url, auth=("leader", "wrong-password")) as c:
        wrong = c.get("/api/v1/me")
        assert wrong.status_code == 401
        assert wrong.json() == {"detail": "wrong staff id or password"}
    assert ticket_count(console) == 0


def test_login_cookie_and_logout(console: Console) -> None:
    with console.anonymous() as c:
        token = csrf_of(c.get("/login").text)
        bad = c.post("/login", data={"csrf_token": token, "staff_id": "leader", "password": "x"})
        assert bad.status_code == 401
        assert LABELS["login_failed"][0] in bad.text
        ok = c.post(
            "/login", data={"csrf_token": token, "staff_id": "leader", "password": PASSWORD}
        )
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert c.get("/tickets").status_code == 200
        me = c.get("/api/v1/me").json()
        assert me["role"] == "leader" and "reports.decide" in me["areas"]
        # A tampered cookie is no session at all.
        value = c.cookies["fedsync_session"]
        tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
        with httpx.Client(base_url=console.base_url, cookies={"fedsync_session": tampered}) as t:
            assert t.get("/tickets").status_code == 303
        out = c.post("/logout", data={"csrf_token": csrf_of(c.get("/tickets").text)})
        assert out.status_code == 303
        assert c.get("/tickets").status_code == 303


def test_login_form_needs_its_csrf_token(console: Console) -> None:
    with console.anonymous() as c:
        c.get("/login")
        refused = c.post("/login", data={"staff_id": "leader", "password": PASSWORD})
        assert refused.status_code == 403
        assert "fedsync_session" not in refused.cookies or c.get("/tickets").status_code == 303


def test_form_post_without_csrf_is_refused_and_stores_nothing(console: Console) -> None:
    with console.browser("senior") as c:
        form = {**new_ticket(), "then": "dispatch", "branch": "Chengguan"}
        missing = c.post("/tickets", data=form)
        assert missing.status_code == 403
        assert "form" in missing.text
        forged = c.post("/tickets", data={**form, "csrf_token": "forged"})
        assert forged.status_code == 403
        assert ticket_count(console) == 0
        good = c.post("/tickets", data={**form, "csrf_token": csrf_of(c.get("/tickets/new").text)})
        assert good.status_code == 303 and good.headers["location"] == "/tickets/1"
        # The session cookie works for the API too, but a change needs the header token.
        no_header = c.post("/api/v1/tickets", json=new_ticket())
        assert no_header.status_code == 403
        assert "X-CSRF-Token" in no_header.json()["detail"]
        token = csrf_of(c.get("/tickets").text)
        with_header = c.post("/api/v1/tickets", json=new_ticket(), headers={"X-CSRF-Token": token})
        assert with_header.status_code == 201
    assert ticket_count(console) == 2


def test_a_form_field_given_twice_is_refused_naming_it(console: Console) -> None:
    """As a query parameter is: the last value was silently taken (``content`` twice
    registered the second)."""
    with console.browser("senior") as c:
        token = csrf_of(c.get("/tickets/new").text)
        pairs = [(k, v) for k, v in new_ticket().items()] + [("csrf_token", token)]
        twice = c.post(
            "/tickets",
            content=urlencode([*pairs, ("content", "second words")]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert twice.status_code == 422, twice.text
        assert "内容：只能给出一次，却给出了 2 次" in twice.text
        assert ticket_count(console) == 0
        once = c.post("/tickets", data=dict(pairs))
        assert once.status_code == 303
    assert ticket_count(console) == 1


# --- tickets -----------------------------------------------------------------------------------


def test_a_refused_form_says_why_in_plain_words(console: Console) -> None:
    with console.browser("senior") as c:
        token = csrf_of(c.get("/tickets/new").text)
        form = new_ticket(branch="Chengguan")  # a branch, but no dispatch
        refused = c.post("/tickets", data={"csrf_token": token, **form})
        assert refused.status_code == 422
        message = re.search(r'id="error-message">([^<]*)<', refused.text)
        assert message and message.group(1) == "只有派单才需填写承办单位；请修改后重新提交"
        refused = c.post("/tickets", params={"lang": "en"}, data={"csrf_token": token, **form})
        assert refused.status_code == 422
        message = re.search(r'id="error-message">([^<]*)<', refused.text)
        assert message and message.group(1) == "branch is only for then=dispatch", refused.text
    assert ticket_count(console) == 0


def act(client: httpx.Client, ticket_id: int, action: str, **fields: Any) -> httpx.Response:
    return client.post(f"/api/v1/tickets/{ticket_id}/actions", json={"action": action, **fields})


def test_register_dispatch_return_close_survey(console: Console) -> None:
    with console.api("senior") as op, console.api("surveyor") as surveyor:
        created = op.post(
            "/api/v1/tickets", json=new_ticket(then="dispatch", branch="Chengguan branch")
        )
        assert created.status_code == 201, created.text
        ticket = created.json()
        tid = ticket["id"]
        assert ticket["status"] == "dispatched" and ticket["branch"] == "Chengguan branch"
        assert set(ticket["allowed_actions"]) >= {"start", "branch_return", "chase"}

        # An action that is no ticket step is refused by its word (the schema offers the
        # steps alone), not by a Python enum's repr.
        other = act(op, tid, "compensate")
        assert other.status_code == 422, other.text
        assert "action 'compensate' is not one of: answer, dispatch" in other.json()["detail"]
        assert "Action." not in other.text
        assert act(op, tid, "start").json()["status"] == "in_progress"
        assert act(op, tid, "branch_return", note="refunded").json()["status"] == "returned"
        # Only the surveyor calls the customer back, and only once the ticket is closed.
        early = act(surveyor, tid, "survey", outcome="satisfied")
        assert early.status_code == 409
        assert "cannot survey a ticket in status returned" in early.json()["detail"]
        closed = act(op, tid, "close", note="customer informed").json()
        assert closed["status"] == "closed" and closed["closed_at"]
        assert "survey" not in closed["allowed_actions"]  # not for an operator

        by_operator = act(op, tid, "survey", outcome="satisfied")
        assert by_operator.status_code == 403
        assert "only surveyor" in by_operator.json()["detail"]
        surveyed = act(surveyor, tid, "survey", outcome="very_satisfied")
        assert surveyed.status_code == 200, surveyed.text
        final = surveyed.json()
        assert final["status"] == "surveyed" and final["satisfaction"] == "very_satisfied"
        steps = [h["action"] for h in final["history"]]
        assert steps == ["register", "dispatch", "start", "branch_return", "close", "survey"]
        assert final["history"][-1]["actor"] == "surveyor"

        listed = op.get("/api/v1/tickets", params={"status": "surveyed"}).json()
        assert [t["id"] for t in listed] == [tid]
        assert op.get("/api/v1/tickets", params={"open_only": True}).json() == []


def test_the_list_finds_tickets_whose_extension_waits_for_the_leader(console: Console) -> None:
    with console.api("senior") as op:
        ids = []
        for _ in range(3):
            body = new_ticket(then="dispatch", branch="Chengguan")
            ids.append(op.post("/api/v1/tickets", json=body).json()["id"])
        for tid in ids[:2]:
            asked = act(op, tid, "request_extension", days=2, reason="parts on order")
            assert asked.status_code == 200, asked.text
    with console.api("leader") as leader:

        def pending() -> list[int]:
            found = leader.get("/api/v1/tickets", params={"extension_pending": True})
            assert found.status_code == 200, found.text
            return sorted(t["id"] for t in found.json())

        assert pending() == ids[:2]
        assert act(leader, ids[0], "approve_extension").status_code == 200
        assert act(leader, ids[1], "reject_extension", note="no").status_code == 200
        assert pending() == []
    with console.browser("leader") as c:
        page = c.get("/tickets", params={"extension_pending": "true", "lang": "en"}).text
        assert (
            "Extension pending" in page and 'name="extension_pending" value="true" checked' in page
        )


def test_a_step_stored_meanwhile_does_not_refuse_the_next_one(console: Console) -> None:
    """Another console process on the same store, its clock a little ahead, stores a step
    while this client works the ticket: this client's step is taken, after that one."""
    with console.api("senior") as op:
        body = new_ticket(then="dispatch", branch="Chengguan")
        tid = op.post("/api/v1/tickets", json=body).json()["id"]
        ahead = console.ctx.now() + timedelta(seconds=90)
        ticket_steps.act(
            console.ctx, Actor("manager", Role.MANAGER_HOTLINE), tid, "chase", at=ahead
        )
        step = act(op, tid, "start", note="on it")
        assert step.status_code == 200, step.text
        history = step.json()["history"]
        assert [h["action"] for h in history] == ["register", "dispatch", "chase", "start"]
        times = [datetime.fromisoformat(h["at"]) for h in history]
        assert times == sorted(times) and times[-1] >= ahead
        # A step the status no longer allows is a 409 naming the status, as before.
        stale = act(op, tid, "start")
        assert stale.status_code == 409 and "allowed from in_progress" in stale.json()["detail"]


def test_junior_may_only_hand_a_vip_ticket_to_a_senior(console: Console) -> None:
    with console.api("junior") as junior, console.api("senior") as senior:
        refused = junior.post("/api/v1/tickets", json=new_ticket(tier="vip", then="answer"))
        assert refused.status_code == 403
        assert "senior" in refused.json()["detail"]
        assert ticket_count(console) == 0  # nothing stored on refusal

        handed = junior.post("/api/v1/tickets", json=new_ticket(tier="vip", then="hand_to_senior"))
        assert handed.status_code == 201, handed.text
        vip = handed.json()
        assert vip["status"] == "with_senior"
        assert vip["allowed_actions"] == []  # nothing more for a junior on a VIP ticket
        answer = act(junior, vip["id"], "answer", note="done")
        assert answer.status_code == 403
        assert "vip customers are served by senior operators" in answer.json()["detail"]

        as_senior = senior.get(f"/api/v1/tickets/{vip['id']}").json()
        assert "answer" in as_senior["allowed_actions"]
        assert act(senior, vip["id"], "answer", note="explained").json()["status"] == "answered"


def test_bad_input_is_422_naming_the_field_and_stores_nothing(console: Console) -> None:
    with console.api("senior") as op:
        cases = {
            "customer_phone": new_ticket(customer_phone="call me"),
            "category": new_ticket(category="NOPE"),
            "kind": new_ticket(kind="rumour"),
            "content": {k: v for k, v in new_ticket().items() if k != "content"},
            "colour": new_ticket(colour="blue"),
            "branch": new_ticket(then="dispatch"),
        }
        for field, body in cases.items():
            answer = op.post("/api/v1/tickets", json=body)
            assert answer.status_code == 422, (field, answer.text)
            detail = answer.json()["detail"]
            assert isinstance(detail, str) and field in detail, (field, detail)
        assert ticket_count(console) == 0

        tid = op.post("/api/v1/tickets", json=new_ticket()).json()["id"]
        assert op.get("/api/v1/tickets/999").status_code == 404
        assert op.get("/api/v1/tickets/999").json()["detail"].startswith("ticket 999")
        wrong_step = act(op, tid, "close")
        assert wrong_step.status_code == 409
        assert "allowed from registered" in wrong_step.json()["detail"]
        no_branch = act(op, tid, "dispatch")
        assert no_branch.status_code == 422 and "branch" in no_branch.json()["detail"]
        assert act(op, tid, "fly").status_code == 422
        # The search names its own parameter, not the ticket's field.
        for bad in ("call me", "12"):
            search = op.get("/api/v1/tickets", params={"phone": bad})
            assert search.status_code == 422, search.text
            assert search.json()["detail"].startswith("phone"), search.text
        # A field another action takes is refused, not dropped: the person meant something.
        for field, value in (("outcome", "satisfied"), ("days", 2), ("reason", "parts")):
            stray = act(op, tid, "chase", **{field: value})
            assert stray.status_code == 422, (field, stray.text)
            assert f"{field} is only for action=" in stray.json()["detail"]
        history = op.get(f"/api/v1/tickets/{tid}").json()["history"]
        assert [h["action"] for h in history] == ["register"]


def test_a_body_that_is_not_a_json_object_is_422_naming_body(console: Console) -> None:
    raw = {
        "not JSON": b'{"kind": complaint',
        "an array": b"[1, 2]",
        "a string": b'"complaint"',
        "empty": b"",
    }
    with console.api("senior") as op:
        for what, content in raw.items():
            answer = op.post(
                "/api/v1/tickets", content=content, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 422, (what, answer.text)
            detail = answer.json()["detail"]
            assert detail.startswith("body: "), (what, detail)
        bad_json = op.post(
            "/api/v1/tickets", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert "not valid JSON" in bad_json.json()["detail"]
    assert ticket_count(console) == 0


# --- reports -----------------------------------------------------------------------------------


def test_only_the_leader_approves_and_approval_queues_the_report(console: Console) -> None:
    yesterday = console.ctx.today() - timedelta(days=1)
    draft = reports.draft(console.ctx, "statistics", "day", yesterday, by="stat")
    second = reports.draft(console.ctx, "overtime", "day", yesterday, by="stat")
    with (
        console.api("stat") as stat,
        console.api("leader") as leader,
        console.api("senior") as op,
    ):
        queue = stat.get("/api/v1/reports/pending")
        assert queue.status_code == 200
        assert [r["id"] for r in queue.json()] == [draft.id, second.id]
        assert "complaints_received" in queue.json()[0]["figures"]
        assert op.get("/api/v1/reports/pending").status_code == 403

        by_stat = stat.post(f"/api/v1/reports/{draft.id}/approve", json={})
        assert by_stat.status_code == 403
        assert "only leader" in by_stat.json()["detail"]
        assert console.outbox_rows("statistics_report") == 0

        approved = leader.post(f"/api/v1/reports/{draft.id}/approve", json={"note": "ok"})
        assert approved.status_code == 200, approved.text
        # A decision needs no body: approving is the whole request, a rejection names its
        # reason (else refused naming the note) — and nothing changes then.
        bare = reports.draft(console.ctx, "qa", "day", yesterday, by="stat")
        no_reason = leader.post(f"/api/v1/reports/{bare.id}/reject")
        assert no_reason.status_code == 422 and "note" in no_reason.json()["detail"]
        assert leader.get(f"/api/v1/reports/{bare.id}").json()["status"] == "draft"
        bare_approval = leader.post(f"/api/v1/reports/{bare.id}/approve")
        assert bare_approval.status_code == 200, bare_approval.text
        assert bare_approval.json()["status"] == "approved"
        body = approved.json()
        assert body["status"] == "approved" and body["decided_by"] == "leader"
        assert body["outbox_seq"] >= 1
        assert console.outbox_rows("statistics_report") == 1
        for decision, payload in (("approve", {}), ("reject", {"note": "too late"})):
            again = leader.post(f"/api/v1/reports/{draft.id}/{decision}", json=payload)
            assert again.status_code == 409, (decision, again.text)
            assert "already approved" in again.json()["detail"]
        unchanged = leader.get(f"/api/v1/reports/{draft.id}").json()
        assert (unchanged["status"], unchanged["decision_note"]) == ("approved", "ok")
        assert unchanged["outbox_seq"] == body["outbox_seq"]
        assert console.outbox_rows("statistics_report") == 1

        no_reason = leader.post(f"/api/v1/reports/{second.id}/reject", json={"note": " "})
        assert no_reason.status_code == 422 and "note" in no_reason.json()["detail"]
        rejected = leader.post(
            f"/api/v1/reports/{second.id}/reject",
            json={"note": "recount: ask 李四 13812345678 again"},
        )
        assert rejected.json()["status"] == "rejected"
        # The reports area's roles never call customers: a phone in a note is shown masked.
        for who in (leader, stat):
            (row,) = [r for r in who.get("/api/v1/reports").json() if r["id"] == second.id]
            assert row["decision_note"] == "recount: ask 李四 138****5678 again"
        assert rejected.json()["decision_note"] == "recount: ask 李四 138****5678 again"
        assert console.outbox_rows("overtime_report") == 0
        assert leader.get("/api/v1/reports/pending").json() == []
        # The hub refuses the approved report: it reads as refused, with the reason.
        assert unchanged["hub_rejection"] is None
        refusal = pb.Notice(
            seq=61,
            kind=pb.REJECTION,
            priority=pb.HIGH,
            title=f"statistics_report seq {body['outbox_seq']} quarantined",
            sender="hub",
            rejection=pb.Rejection(
                seq=body["outbox_seq"],
                body_kind="statistics_report",
                reason="closed_in_time (3) exceeds closed (2)",
            ),
        )
        refusal.created_at.GetCurrentTime()
        assert services.accept_notice(console.engine, refusal)
        shown = leader.get(f"/api/v1/reports/{draft.id}").json()
        assert (shown["status"], shown["hub_rejection"]) == (
            "approved",
            "closed_in_time (3) exceeds closed (2)",
        )
        assert leader.get(f"/api/v1/reports/{bare.id}").json()["hub_rejection"] is None
    with console.browser("leader") as page:
        listed = page.get("/reports").text
        assert listed.count('class="tag bad hub-refused"') == 1 and "省中心已拒收" in listed


# --- QA ------------------------------------------------------------------------------------------


def test_qa_draw_and_score(console: Console) -> None:
    with console.api("senior") as op, console.api("inspector") as inspector:
        op.post("/api/v1/tickets", json=new_ticket(then="answer", note="explained the bill"))
        assert op.post("/api/v1/qa/draw", json={"count": 1}).status_code == 403
        drawn = inspector.post("/api/v1/qa/draw")  # no body: one sample
        assert drawn.status_code == 200, drawn.text
        (sample_id,) = drawn.json()["sample_ids"]
        assert inspector.post("/api/v1/qa/draw", json={"count": 1}).json()["sample_ids"] == []
        card = inspector.get("/api/v1/qa/scorecard").json()
        keys = [i["key"] for i in card["items"]]
        assert sum(i["weight"] for i in card["items"]) == 100

        partial = inspector.post(
            f"/api/v1/qa/samples/{sample_id}/score", json={"items": {keys[0]: 90}}
        )
        assert partial.status_code == 422 and "missing" in partial.json()["detail"]
        points = dict.fromkeys(keys, 100) | {keys[0]: 50}
        scored = inspector.post(
            f"/api/v1/qa/samples/{sample_id}/score",
            json={"items": points, "defects": ["attitude"], "finding": "curt greeting"},
        )
        assert scored.status_code == 200, scored.text
        weight0 = card["items"][0]["weight"]
        assert scored.json()["score_centi"] == 10000 - 50 * weight0
        assert inspector.get("/api/v1/qa/samples").json() == []
        done = inspector.get("/api/v1/qa/samples", params={"scored": True}).json()
        assert done[0]["defects"] == ["attitude"]

        rescored = inspector.post(
            f"/api/v1/qa/samples/{sample_id}/score",
            json={"items": dict.fromkeys(keys, 100), "defects": []},
        )
        assert rescored.status_code == 409, rescored.text
        assert "already scored" in rescored.json()["detail"]
        kept = inspector.get("/api/v1/qa/samples", params={"scored": True}).json()
        assert kept == done


# --- suggestions ---------------------------------------------------------------------------------


def test_a_phone_written_with_invisible_characters_is_masked_and_does_not_leave_the_city(
    console: Console,
) -> None:
    """U+200C between a phone's digits shows the phone all the same: the clerk reads it
    masked (content and label, the classify answer too) and the batch carries it masked."""
    phone = "137\u200c5555\u200c6666"
    with console.api("senior") as op:
        tid = op.post(
            "/api/v1/tickets",
            json=new_ticket(
                kind="suggestion",
                customer_name="Li Wei",
                content=f"li wei asks for a tower, call {phone}",
            ),
        ).json()["id"]
    with console.api("clerk") as clerk:
        (shown,) = clerk.get("/api/v1/suggestions").json()
        assert shown["content"] == "L**** asks for a tower, call 137****6666"
        done = clerk.post(
            f"/api/v1/suggestions/{tid}/classify", json={"label": f"tower Li Wei {phone}"}
        )
        assert done.status_code == 200, done.text
        assert done.json()["label"] == "tower L**** 137****6666"
        assert clerk.post("/api/v1/suggestions/batches").json()["suggestions"] == 1
    with console.engine.connect() as conn:
        (raw,) = conn.execute(
            select(OutboxRow.envelope).where(OutboxRow.kind == "suggestion_batch")
        ).scalars()
    (sent,) = pb.Envelope.FromString(raw).suggestion_batch.suggestions
    assert (sent.content, sent.category) == (
        "L**** asks for a tower, call 137****6666",
        "tower L**** 137****6666 / BILL.DISPUTE",
    )


def test_an_action_that_reads_no_body_refuses_one_and_the_api_refuses_unknown_parameters(
    console: Console,
) -> None:
    with console.api("clerk") as clerk:
        for body, said in (
            (b"{bad", "body: not valid JSON"),
            (b"null", "body: this action reads no body"),
            (b'{"note": "x"}', "body: this action reads no body"),
        ):
            answer = clerk.post(
                "/api/v1/suggestions/batches",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 422 and said in answer.json()["detail"], answer.text
        assert console.outbox_rows("suggestion_batch") == 0
        for body in (b"", b"{}", b" {} "):
            answer = clerk.post("/api/v1/suggestions/batches", content=body)
            assert answer.status_code == 200, (body, answer.text)
        listed = clerk.get("/api/v1/suggestions", params={"classifed": "true"})
        assert listed.status_code == 422
        assert "query.classifed: not a parameter of this request; it takes" in listed.text
        assert "classified" in listed.json()["detail"]
        assert clerk.get("/api/v1/suggestions", params={"lang": "en"}).status_code == 200


def test_suggestions_are_classified_and_sent_through_the_api(console: Console) -> None:
    with console.api("senior") as op:
        ids = [
            op.post(
                "/api/v1/tickets", json=new_ticket(kind="suggestion", content=f"idea {n}")
            ).json()["id"]
            for n in (1, 2)
        ]
        complaint = op.post("/api/v1/tickets", json=new_ticket()).json()["id"]
        assert (
            op.post(f"/api/v1/suggestions/{ids[0]}/classify", json={"label": "x"}).status_code
            == 403
        )
        assert op.get("/api/v1/suggestions").status_code == 403
    with console.api("clerk") as clerk:
        todo = clerk.get("/api/v1/suggestions").json()
        assert [s["ticket_id"] for s in todo] == ids and todo[0]["label"] is None
        refused = {
            "label": ({"label": "  "}, ids[0], 422),
            "suggestion": ({"label": "tariff"}, complaint, 422),
            "body": (None, ids[0], 422),
        }
        for word, (body, tid, status) in refused.items():
            answer = clerk.post(f"/api/v1/suggestions/{tid}/classify", json=body)
            assert answer.status_code == status, (word, answer.text)
            assert word in answer.json()["detail"], (word, answer.text)
        assert (
            clerk.post("/api/v1/suggestions/999/classify", json={"label": "a"}).status_code == 404
        )
        nothing = clerk.post("/api/v1/suggestions/batches")
        assert nothing.status_code == 200 and nothing.json() == {
            "outbox_seq": None,
            "suggestions": 0,
        }

        done = clerk.post(f"/api/v1/suggestions/{ids[0]}/classify", json={"label": "coverage"})
        assert done.status_code == 200, done.text
        assert (done.json()["label"], done.json()["classified_by"]) == ("coverage", "clerk")
        waiting = clerk.get("/api/v1/suggestions", params={"classified": True}).json()
        assert [(s["ticket_id"], s["label"]) for s in waiting] == [(ids[0], "coverage")]
        sent = clerk.post("/api/v1/suggestions/batches")
        assert sent.status_code == 200, sent.text
        assert sent.json()["suggestions"] == 1 and sent.json()["outbox_seq"] >= 1
        assert console.outbox_rows("suggestion_batch") == 1
        assert clerk.get("/api/v1/suggestions", params={"classified": True}).json() == []
        late = clerk.post(f"/api/v1/suggestions/{ids[0]}/classify", json={"label": "tariff"})
        assert late.status_code == 409 and "already sent" in late.json()["detail"]
    with console.api("leader") as leader:
        history = leader.get(f"/api/v1/tickets/{ids[0]}").json()["history"]
        assert [h["action"] for h in history] == ["register", "classify"]
        assert [s["ticket_id"] for s in leader.get("/api/v1/suggestions").json()] == [ids[1]]
    with console.browser("clerk") as c:
        page = c.get("/suggestions", params={"lang": "en"})
        assert page.status_code == 200 and "idea 2" in page.text
        token = csrf_of(page.text)
        c.post(f"/suggestions/{ids[1]}/classify", data={"csrf_token": token, "label": "tariff"})
        assert "Nothing to classify" in c.get("/suggestions", params={"lang": "en"}).text
        c.post("/suggestions/batches", data={"csrf_token": token})
    assert console.outbox_rows("suggestion_batch") == 2


# --- notices -----------------------------------------------------------------------------------


def notice(seq: int, title: str = "Network maintenance") -> pb.Notice:
    n = pb.Notice(
        seq=seq, kind=pb.TASK, priority=pb.HIGH, title=title, body="Tell callers.", sender="hq"
    )
    n.created_at.GetCurrentTime()
    return n


def test_receipts_go_into_the_outbox(console: Console) -> None:
    services.accept_notice(console.engine, notice(7))
    with console.api("leader") as leader, console.api("senior") as op:
        assert [n["notice_seq"] for n in op.get("/api/v1/inbox").json()] == [7]
        by_op = op.post("/api/v1/inbox/7/receipts", json={"action": "read"})
        assert by_op.status_code == 403
        assert leader.post("/api/v1/inbox/7/receipts", json={"action": "read"}).status_code == 201
        bare = leader.post("/api/v1/inbox/7/receipts", json={"action": "objection"})
        assert bare.status_code == 422 and "reason" in bare.json()["detail"]
        assert console.outbox_rows("notice_receipt") == 1
        unknown = leader.post("/api/v1/inbox/7/receipts", json={"action": "shrug"})
        assert unknown.status_code == 422 and "action" in unknown.json()["detail"]
        done = leader.post("/api/v1/inbox/7/receipts", json={"action": "done", "note": "posted"})
        assert done.status_code == 201 and done.json()["outbox_seq"] >= 2
        assert console.outbox_rows("notice_receipt") == 2
        shown = leader.get("/api/v1/inbox").json()[0]
        assert shown["read_at"] and shown["done_note"] == "posted"
        link = leader.get("/api/v1/link").json()
        assert link["backlog"] == 2 and link["state"] == "never"
        assert op.get("/api/v1/link").status_code == 403
        # Recorded again, a read is sent again but the first read time stays.
        first_read = shown["read_at"]
        assert leader.post("/api/v1/inbox/7/receipts", json={"action": "read"}).status_code == 201
        assert leader.get("/api/v1/inbox").json()[0]["read_at"] == first_read
        assert console.outbox_rows("notice_receipt") == 3
    # Done without a read first: the notice reads as read too.
    services.accept_notice(console.engine, notice(8))
    with console.api("leader") as leader:
        r = leader.post("/api/v1/inbox/8/receipts", json={"action": "done", "note": "ok"})
        assert r.status_code == 201
        (eight,) = [n for n in leader.get("/api/v1/inbox").json() if n["notice_seq"] == 8]
        assert eight["read_at"] == eight["done_at"]
    # A phone in the note stays in the city: the receipt that leaves masks it.
    services.accept_notice(console.engine, notice(9))
    with console.api("leader") as leader:
        note = "已回访客户 13800138000，客户满意"
        r = leader.post("/api/v1/inbox/9/receipts", json={"action": "done", "note": note})
        assert r.status_code == 201
    with console.engine.connect() as conn:
        kept = conn.execute(
            select(InboxNotice.done_note).where(InboxNotice.notice_seq == 9)
        ).scalar_one()
        assert kept == note  # the store keeps it as written (the leader reads it masked)
        raw = conn.execute(
            select(OutboxRow.envelope).where(OutboxRow.seq == r.json()["outbox_seq"])
        ).scalar_one()
    sent = pb.Envelope.FromString(raw).notice_receipt
    assert sent.notice_seq == 9 and sent.note == "已回访客户 138****8000，客户满意"


def test_standard_answers_search(console: Console) -> None:
    sa = notice(9, "Double charges")
    sa.kind = pb.STANDARD_ANSWER
    sa.standard_answer.topic = "Double charges in October"
    sa.standard_answer.category = "BILL.DISPUTE"
    sa.standard_answer.answer = "Refund within 3 working days."
    services.accept_notice(console.engine, sa)
    with console.api("junior") as op:
        found = op.get("/api/v1/answers", params={"q": "october"}).json()
        assert [a["answer"] for a in found] == ["Refund within 3 working days."]
        assert op.get("/api/v1/answers", params={"q": "roaming"}).json() == []
        tid = op.post("/api/v1/tickets", json=new_ticket()).json()["id"]
    with console.browser("junior") as c:
        # The ticket page offers the answers of the ticket's category without a search.
        assert "Refund within 3 working days." in c.get(f"/tickets/{tid}").text


# --- pages, languages, menus -------------------------------------------------------------------


def test_pages_render_in_both_languages(console: Console) -> None:
    services.accept_notice(console.engine, notice(3))
    reports.draft(
        console.ctx, "statistics", "day", console.ctx.today() - timedelta(days=1), by="stat"
    )
    with console.api("senior") as op:
        script = "<script>alert(1)</script>"
        tid = op.post("/api/v1/tickets", json=new_ticket(then="answer", content=script)).json()
        tid = tid["id"]
    with console.api("inspector") as inspector:
        inspector.post("/api/v1/qa/draw", json={"count": 1})
    pages = {
        "leader": ["/tickets", f"/tickets/{tid}", "/reports", "/qa", "/inbox", "/link", "/staff"],
        "senior": ["/tickets/new"],
        "inspector": ["/qa"],
        "clerk": ["/suggestions"],
    }
    for who, paths in pages.items():
        with console.browser(who) as c:
            for path in paths:
                zh = c.get(path, params={"lang": "zh"})
                assert zh.status_code == 200, (who, path, zh.text)
                assert 'lang="zh-CN"' in zh.text and "工单" in zh.text
                en = c.get(path, params={"lang": "en"})
                assert en.status_code == 200 and 'lang="en"' in en.text
                assert "Tickets" in en.text and "工单" not in en.text, (who, path)
            # The language sticks (cookie) until changed.
            assert 'lang="en"' in c.get(paths[0]).text
    with console.browser("leader") as c:
        ticket_page = c.get(f"/tickets/{tid}").text
        assert "<script>" not in ticket_page and "&lt;script&gt;alert(1)" in ticket_page
        reports_en = c.get("/reports", params={"lang": "en"}).text
        assert "Approve and send" in reports_en and "complaints_received" in reports_en
        assert "批准并上报" in c.get("/reports", params={"lang": "zh"}).text
        # A language the console does not speak is named, not answered in another one; the
        # page says so in the language kept in the cookie.
        refused = c.get("/reports", params={"lang": "fr"})
        assert refused.status_code == 422 and "lang=&#39;fr&#39; 无效" in refused.text
        assert 'lang="zh-CN"' in refused.text


def test_every_template_label_has_both_languages() -> None:
    keys: set[str] = set()
    for template in [*TEMPLATES.glob("*.html"), *SHARED_TEMPLATES.glob("*.html")]:
        keys |= set(re.findall(r"""\bt\('([a-z_]+)'\)""", template.read_text("utf-8")))
    assert keys, "no labels found"
    missing = sorted(keys - set(LABELS))
    assert not missing, f"labels without a translation: {missing}"
    assert all(zh and en for zh, en in LABELS.values())


def test_menus_and_pages_follow_the_role(console: Console) -> None:
    with console.browser("junior") as c:
        home = c.get("/tickets", params={"lang": "en"}).text
        assert 'href="/tickets/new"' in home
        assert 'href="/reports"' not in home and 'href="/staff"' not in home
        forbidden = c.get("/staff")
        assert forbidden.status_code == 403
        assert "may not use staff; only leader" in forbidden.text
    with console.browser("leader") as c:
        home = c.get("/tickets").text
        assert 'href="/reports"' in home and 'href="/staff"' in home
        assert 'href="/tickets/new"' not in home  # the leader does not take calls
    with console.api("senior") as op:
        tid = op.post("/api/v1/tickets", json=new_ticket(then="answer")).json()["id"]
    with console.browser("surveyor") as c:
        page = c.get(f"/tickets/{tid}").text
        assert 'id="form-survey"' in page
        token = csrf_of(page)
        done = c.post(
            f"/tickets/{tid}/act",
            data={"csrf_token": token, "action": "survey", "outcome": "satisfied"},
        )
        assert done.status_code == 303
    with console.browser("senior") as c:
        page = c.get(f"/tickets/{tid}").text
        assert 'id="form-survey"' not in page
        refused = c.post(
            f"/tickets/{tid}/act", data={"csrf_token": csrf_of(page), "action": "chase"}
        )
        assert refused.status_code == 409
        assert "工单当前状态为“已回访”，不能执行“追单”；此状态下已无可执行的操作" in refused.text


def test_openapi_documents_the_api(console: Console) -> None:
    with console.anonymous() as c:
        doc = c.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/api/v1/tickets",
        "/api/v1/tickets/{ticket_id}",
        "/api/v1/tickets/{ticket_id}/actions",
        "/api/v1/reports/pending",
        "/api/v1/reports/{report_id}/approve",
        "/api/v1/reports/{report_id}/reject",
        "/api/v1/qa/draw",
        "/api/v1/qa/samples/{sample_id}/score",
        "/api/v1/inbox",
        "/api/v1/inbox/{notice_seq}/receipts",
        "/api/v1/link",
        "/api/v1/answers",
    ):
        assert path in paths, path
    assert not any(p.startswith("/tickets") for p in paths)  # pages are not API
    schemas = doc["components"]["schemas"]
    assert {"TicketIn", "TicketDetail", "ActionIn", "ReportOut", "ReceiptIn", "LinkOut"} <= set(
        schemas
    )
    post = paths["/api/v1/tickets"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("TicketIn")
    assert "201" in post["responses"]


# --- the node process serves the console --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_city_node_serves_the_console_until_stopped(
    databases: Any, city_settings_factory: Any, start_city: Any, tmp_path: Path
) -> None:
    import asyncio

    port = _free_port()
    key_file = tmp_path / "keys" / "console.key"
    settings = city_settings_factory(
        CITY,
        databases("node"),
        _free_port(),  # no hub there: the link backs off while the console serves
        http_port=port,
        secret_key_file=key_file,
    )
    city = start_city(settings)
    staff.add(city.engine, staff_id="leader", name="L", role="leader", password=PASSWORD)

    def login_page() -> int:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code
        except httpx.TransportError:
            return 0

    deadline = asyncio.get_running_loop().time() + 15
    while await asyncio.to_thread(login_page) != 200:
        assert asyncio.get_running_loop().time() < deadline, "console never answered"
        await asyncio.sleep(0.05)
    me = await asyncio.to_thread(
        httpx.get, f"http://127.0.0.1:{port}/api/v1/me", auth=("leader", PASSWORD)
    )
    assert me.json()["role"] == "leader"
    assert key_file.stat().st_mode & 0o777 == 0o600
    await city.stop()
    assert await asyncio.to_thread(login_page) == 0  # the port is closed with the node
