"""Promises about who may do what, held by the services whichever edge asks (real stores,
SQLite and PostgreSQL).

- Every service entry point that acts for a person asks the domain's role table
  (``domain.ALLOWED_ROLES``): walked with every staff role, each one is refused exactly for
  the roles the table leaves out, and allowed (past the role check) for the others.
- ``fedsync city receipt --actor <junior operator>`` gets the console's refusal: only the
  leader answers a province notice for the center.
- The console's menu offers registering to exactly the roles the domain lets register.
- Separation of duties: with ``approver_not_drafter`` set (a node setting), a leader cannot
  approve a report they drafted themselves; another leader can.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from city_node import personal_data, qa, reports, services, staff, suggestions, tickets
from city_node.app import context_for
from city_node.context import Actor, CityContext, make_context
from city_node.domain import ALLOWED_ROLES, STAFF_ROLES, Action, PermissionDenied, Role
from city_node.settings import CitySettings
from city_node.store import create_schema
from city_node.tickets import NewTicket
from city_node.web.auth import AREAS
from sync.cli import main
from sync.db import make_engine
from sync.outbox import OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests import ticket_steps
from tests.security.conftest import PASSWORD, Console

CITY = "620100"
JUNIOR = Actor("junior-0", Role.OPERATOR_JUNIOR)


def _notice(seq: int) -> pb.Notice:
    n = pb.Notice(seq=seq, kind=pb.TASK, priority=pb.HIGH, title="t", body="b", sender="hq")
    n.created_at.GetCurrentTime()
    return n


def _ticket(ctx: CityContext, kind: str = "complaint") -> int:
    new = NewTicket(
        kind=kind,
        category="BILL.DISPUTE",
        channel="phone",
        customer_phone="13812345678",
        customer_name="Li",
        tier="ordinary",
        content="charged twice",
    )
    return int(tickets.register(ctx, JUNIOR, new).id)


@pytest.fixture
def ctx(databases: Any) -> Any:
    engine = make_engine(databases("rules"))
    create_schema(engine)
    services.open_store(engine, CITY)
    staff.add(engine, staff_id="target", name="T", role="surveyor", password=PASSWORD)
    yield make_context(engine, CITY)
    engine.dispose()


def entry_points(ctx: CityContext) -> dict[Action, Callable[[Actor], object]]:
    """One call per action, on records that exist, for a person acting as ``actor``."""
    ticket = _ticket(ctx)
    suggestion = _ticket(ctx, "suggestion")
    services.accept_notice(ctx.engine, _notice(5))
    draft = reports.draft(ctx, "statistics", "day", ctx.today(), by="stat-0")

    def act(action: Action, **params: Any) -> Callable[[Actor], object]:
        return lambda a: ticket_steps.act(ctx, a, ticket, action, **params)

    calls: dict[Action, Callable[[Actor], object]] = {
        action: act(action)
        for action in (
            Action.ANSWER,
            Action.HAND_TO_SENIOR,
            Action.START,
            Action.BRANCH_RETURN,
            Action.CLOSE,
            Action.CHASE,
            Action.REWORK,
            Action.PROVINCE_RESOLVED,
            Action.APPROVE_EXTENSION,
            Action.REJECT_EXTENSION,
        )
    }
    calls.update(
        {
            Action.REGISTER: lambda a: tickets.register(
                ctx,
                a,
                NewTicket("enquiry", "BILL.DISPUTE", "phone", "13812345678", "Li", "ordinary", "?"),
            ),
            Action.DISPATCH: act(Action.DISPATCH, branch="Chengguan"),
            Action.ESCALATE_MANAGER: act(Action.ESCALATE_MANAGER, note="will not accept"),
            Action.ESCALATE_PROVINCE: act(Action.ESCALATE_PROVINCE, note="will not accept"),
            Action.SURVEY: act(Action.SURVEY, outcome="satisfied"),
            Action.REQUEST_EXTENSION: act(Action.REQUEST_EXTENSION, days=2, reason="parts"),
            Action.COMPENSATE: lambda a: tickets.record_compensation(
                ctx, a, ticket, fen=100, note="late"
            ),
            Action.CLASSIFY: lambda a: suggestions.classify(ctx, a, suggestion, "network"),
            Action.SEND_SUGGESTIONS: lambda a: suggestions.send_batch(ctx, a),
            Action.DRAFT_REPORT: lambda a: reports.draft(
                ctx,
                "qa" if a.role is Role.QA_INSPECTOR else "statistics",
                "day",
                ctx.today(),
                by=a.id,
                role=a.role,
            ),
            Action.APPROVE_REPORT: lambda a: reports.approve(ctx, a, draft.id),
            Action.SCORE_QA: lambda a: qa.draw(ctx, actor=a, count=1, how="random"),
            Action.MANAGE_STAFF: lambda a: staff.set_role(ctx.engine, "target", "surveyor", by=a),
            Action.RECORD_RECEIPT: lambda a: services.record_receipt(
                ctx.engine, notice_seq=5, action="read", actor=a
            ),
            Action.SEARCH_BY_PHONE: lambda a: tickets.find_tickets(ctx, a, phone="13812345678"),
            Action.READ_ACCESS_LOG: lambda a: personal_data.access_log(ctx, a),
        }
    )
    return calls


def test_every_service_entry_point_asks_the_domain_for_every_role(ctx: CityContext) -> None:
    calls = entry_points(ctx)
    assert set(calls) == set(Action), "an action without a service entry point in this walk"
    wrong: list[str] = []
    for action, call in calls.items():
        for role in STAFF_ROLES:
            refused = False
            try:
                call(Actor(f"{role.value}-1", role))
            except PermissionDenied as exc:
                refused = exc.action is action
            except Exception:  # past the role check: a state or input refusal
                refused = False
            expected = role not in ALLOWED_ROLES[action]
            if refused != expected:
                wrong.append(f"{action.value} by {role.value}: refused={refused}")
    assert wrong == []
    # The same extra rules hold: a QA inspector drafts QA reports only.
    with pytest.raises(PermissionDenied):
        reports.draft(ctx, "statistics", "day", ctx.today(), by="qa-1", role=Role.QA_INSPECTOR)


def test_the_cli_refuses_a_receipt_a_junior_operator_records(databases: Any, capsys) -> None:
    url = databases("cli-receipt")
    engine = make_engine(url)
    create_schema(engine)
    services.open_store(engine, CITY)
    staff.add(engine, staff_id="op-1", name="Op", role="operator_junior", password=PASSWORD)
    staff.add(engine, staff_id="lead-1", name="Lead", role="leader", password=PASSWORD)
    services.accept_notice(engine, _notice(9))
    base = ["city", "receipt", "--code", CITY, "--database-url", url, "--notice", "9"]
    refused = main([*base, "--action", "read", "--actor", "op-1"])
    err = capsys.readouterr().err
    with engine.connect() as conn:
        queued = conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one()
    assert refused == 2 and "may not record_receipt" in err and "only leader" in err
    assert queued == 0
    assert main([*base, "--action", "read", "--actor", "lead-1"]) == 0
    engine.dispose()


def test_the_menu_offers_registering_to_the_domains_roles(console: Console) -> None:
    assert AREAS["register"] == ALLOWED_ROLES[Action.REGISTER]
    for who, role in (("junior", "operator_junior"), ("stat", "statistician")):
        with console.browser(who) as b:
            shown = 'href="/tickets/new"' in b.get("/tickets").text
        assert shown == (Role(role) in ALLOWED_ROLES[Action.REGISTER]), who


def test_an_approver_must_not_be_the_drafter_when_the_node_says_so(
    databases: Any, city_settings_factory: Any
) -> None:
    settings: CitySettings = city_settings_factory(
        CITY, databases("duties"), 1, approver_not_drafter=True
    )
    engine = make_engine(settings.database_url)
    create_schema(engine)
    services.open_store(engine, CITY)
    ctx = context_for(settings, engine)
    assert ctx.approver_not_drafter
    first, second = Actor("lead-1", Role.LEADER), Actor("lead-2", Role.LEADER)
    draft = reports.draft(ctx, "statistics", "day", ctx.today(), by=first.id, role=first.role)
    with pytest.raises(PermissionDenied, match="drafted report"):
        reports.approve(ctx, first, draft.id)
    assert reports.get(ctx, draft.id).status == "draft"
    assert reports.approve(ctx, second, draft.id).status == "approved"
    # Without the setting the drafter may approve (a one-leader center).
    plain = make_context(engine, CITY)
    own = reports.draft(plain, "overtime", "day", plain.today(), by=first.id, role=first.role)
    assert reports.approve(plain, first, own.id).status == "approved"
    engine.dispose()


def test_the_console_answers_403_to_a_drafter_approving(databases: Any) -> None:
    import httpx

    from tests.conftest import serving
    from tests.security.conftest import make_console

    engine, _, app = make_console(databases("duties-web"), context={"approver_not_drafter": True})
    with serving(app) as url:
        with httpx.Client(base_url=url, auth=("leader", PASSWORD), timeout=30) as c:
            draft = c.post(
                "/api/v1/reports",
                json={"kind": "statistics", "period_kind": "month", "start": "2025-01-01"},
            ).json()
            own = c.post(f"/api/v1/reports/{draft['id']}/approve", json={})
        with httpx.Client(base_url=url, auth=("leader2", PASSWORD), timeout=30) as c:
            other = c.post(f"/api/v1/reports/{draft['id']}/approve", json={})
    engine.dispose()
    assert own.status_code == 403 and "separation of duties" in own.json()["detail"]
    assert other.status_code == 200
