"""End to end over real mTLS on SQLite and PostgreSQL: tickets worked at a city become an
approved report at the hub; an escalation comes back resolved and the loop closes; trace
requests are answered (masked unless from the GM hotline); standard answers become
searchable; suggestion batches and QA reports arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.message import Message
from sqlalchemy import select

from city_node import qa, reports, services, suggestions, tickets
from city_node.context import Actor, CityError, Conflict, make_context
from city_node.domain import Action, PermissionDenied, Role, Status
from city_node.store import InboxNotice, QaSample, TicketRow
from province_hub import services as hub_services
from province_hub.store import Record
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests import ticket_steps
from tests.conftest import ROSTER_CODES, wait_until

CODE = "620100"
JUNIOR = Actor("op-j1", Role.OPERATOR_JUNIOR)
SENIOR = Actor("op-s1", Role.OPERATOR_SENIOR)
MANAGER = Actor("mgr-1", Role.MANAGER_HOTLINE)
SURVEYOR = Actor("sv-1", Role.SURVEYOR)
LEADER = Actor("leader-1", Role.LEADER)
INSPECTOR = Actor("qa-1", Role.QA_INSPECTOR)
CLERK = Actor("clerk-1", Role.MATERIALS_CLERK)


def complaint(phone: str = "13800001111", tier: str = "ordinary") -> tickets.NewTicket:
    return tickets.NewTicket(
        "complaint", "NET.BROADBAND", "phone", phone, "Wang Fang", tier, "broadband drops daily"
    )


def _bodies(hub_engine: Any, kind: str) -> list[Any]:
    with hub_engine.connect() as conn:
        rows = conn.execute(
            select(Record.body)
            .where(Record.city_code == CODE, Record.kind == kind, Record.status == "accepted")
            .order_by(Record.seq)
        ).all()
    message: type[Message] = {
        "statistics_report": pb.StatisticsReport,
        "escalation": pb.Escalation,
        "ticket_trace": pb.TicketTrace,
        "suggestion_batch": pb.SuggestionBatch,
        "qa_report": pb.QaReport,
    }[kind]
    return [message.FromString(r.body) for r in rows]


@pytest.fixture
async def federation(
    databases: Any,
    hub_settings_factory: Any,
    city_settings_factory: Any,
    start_hub: Any,
    start_city: Any,
) -> Any:
    hub = await start_hub(hub_settings_factory(databases("hub")))
    city = start_city(city_settings_factory(CODE, databases("city"), hub.port))
    ctx = make_context(city.engine, CODE)
    return hub, city, ctx


async def test_worked_tickets_reach_the_hub_as_an_approved_report(federation: Any) -> None:
    hub, _city, ctx = federation
    now = datetime.now(UTC)
    t1 = tickets.register(ctx, JUNIOR, complaint(), then=Action.DISPATCH, branch="Chengguan")
    ticket_steps.act(ctx, JUNIOR, t1.id, "branch_return", note="line replaced")
    ticket_steps.act(ctx, JUNIOR, t1.id, "close")
    ticket_steps.act(ctx, SURVEYOR, t1.id, "survey", outcome="very_satisfied")
    repeat = tickets.register(ctx, JUNIOR, complaint())  # same phone and category: a repeat
    tickets.register(
        ctx,
        JUNIOR,
        tickets.NewTicket("enquiry", "BILL", "web", "13900002222", "Li", "ordinary", "tariff?"),
        then=Action.ANSWER,
    )
    assert tickets.stored(ctx, repeat.id).is_repeat is True

    today = ctx.today(now)
    draft = reports.draft(ctx, "statistics", "day", today, by="stat-1")
    assert draft.status == "draft" and draft.outbox_seq is None
    with pytest.raises(PermissionDenied):
        reports.approve(ctx, JUNIOR, draft.id)
    approved = reports.approve(ctx, LEADER, draft.id, note="checked")
    assert approved.status == "approved" and approved.outbox_seq is not None

    (stats,) = await wait_until(
        lambda: _bodies(hub.engine, "statistics_report"), what="the approved report at the hub"
    )
    assert stats.approved_by == "leader-1"
    assert stats.period.start == today.isoformat()
    assert (stats.complaints_received, stats.enquiries_received) == (2, 1)
    assert (stats.closed, stats.closed_in_time, stats.repeat_complaints) == (2, 2, 1)
    assert stats.satisfaction.very_satisfied == 1 and stats.satisfaction.surveyed == 1
    assert {s.key: s.complaints for s in stats.by_category} == {"NET.BROADBAND": 2, "BILL": 0}

    # A correction is a new revision; the first one stays sent.
    second = reports.draft(ctx, "statistics", "day", today, by="stat-1")
    assert second.revision == 2
    reports.approve(ctx, LEADER, second.id)
    revisions = await wait_until(
        lambda: [b.revision for b in _bodies(hub.engine, "statistics_report")] == [1, 2],
        what="revision 2 at the hub",
    )
    assert revisions


async def test_escalation_is_resolved_by_the_province_and_the_loop_closes(federation: Any) -> None:
    hub, city, ctx = federation
    vip = tickets.register(
        ctx, JUNIOR, complaint("13700003333", tier="vip"), then=Action.HAND_TO_SENIOR
    )
    with pytest.raises(PermissionDenied):
        ticket_steps.act(ctx, JUNIOR, vip.id, "escalate_manager", note="customer refuses")
    ticket_steps.act(ctx, SENIOR, vip.id, "escalate_manager", note="customer refuses the answer")
    with pytest.raises(CityError):
        ticket_steps.act(ctx, MANAGER, vip.id, "escalate_province")  # no reason given
    ticket_steps.act(ctx, MANAGER, vip.id, "escalate_province", note="needs a province decision")

    (esc,) = await wait_until(lambda: _bodies(hub.engine, "escalation"), what="escalation")
    assert esc.ticket_id == str(vip.id) and esc.reason == "needs a province decision"
    assert [h.action for h in esc.history] == [
        "register",
        "hand_to_senior",
        "escalate_manager",
        "escalate_province",
    ]

    hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(
            kind=pb.ESCALATION_RESOLUTION,
            title=f"Resolution for ticket {vip.id}",
            body="refund one month",
            targets=[CODE],
            escalation_resolution=pb.EscalationResolution(
                ticket_id=str(vip.id), resolution="refund one month", resolved_by="gm-hotline-2"
            ),
        ),
        roster_codes=ROSTER_CODES,
    )
    resolved = await wait_until(
        lambda: tickets.get(ctx, vip.id).status is Status.RETURNED, what="resolution applied"
    )
    assert resolved
    ticket_steps.act(ctx, SENIOR, vip.id, "close", note="customer accepted the refund")
    closed = ticket_steps.act(ctx, SURVEYOR, vip.id, "survey", outcome="satisfied")
    assert closed.status is Status.SURVEYED
    steps = [h.action for h in tickets.history(ctx, vip.id)]
    assert steps[-3:] == ["province_resolved", "close", "survey"]
    with city.engine.connect() as conn:
        note = conn.execute(
            select(InboxNotice.handled_note).where(InboxNotice.kind == "ESCALATION_RESOLUTION")
        ).scalar_one()
    assert "applied" in note


async def test_trace_requests_are_answered_masked_unless_from_the_gm_hotline(
    federation: Any,
) -> None:
    hub, _city, ctx = federation
    t = tickets.register(
        ctx,
        JUNIOR,
        tickets.NewTicket(
            "complaint", "NET.BROADBAND", "phone", "13977665544", "欧阳探针", "ordinary", "断网"
        ),
    )
    ticket_steps.act(ctx, JUNIOR, t.id, "dispatch", branch="B", note="欧阳探针 urgent 13977665544")
    for gm in (False, True):
        hub_services.send_notice(
            hub.engine,
            notice=pb.Notice(
                kind=pb.TRACE_REQUEST,
                title="trace",
                targets=[CODE],
                trace_request=pb.TraceRequest(ticket_id=str(t.id), from_gm_hotline=gm),
            ),
            roster_codes=ROSTER_CODES,
        )
    hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(
            kind=pb.TRACE_REQUEST,
            title="trace",
            targets=[CODE],
            trace_request=pb.TraceRequest(ticket_id="999999"),
        ),
        roster_codes=ROSTER_CODES,
    )
    traces = await wait_until(
        lambda: (b := _bodies(hub.engine, "ticket_trace")) and len(b) == 3 and b, what="traces"
    )
    masked, clear, missing = traces
    assert masked.found and masked.customer_phone == "139****5544"
    assert clear.customer_phone == "13977665544"
    assert (masked.customer_name, clear.customer_name) == ("欧***", "欧阳探针")
    assert [h.action for h in masked.history] == ["register", "dispatch"]
    # Nor does the customer's contact leave the city inside a history note.
    assert "欧*** urgent 139****5544" in masked.history[1].note
    assert not any("13977665544" in h.note or "欧阳探针" in h.note for h in masked.history)
    assert "欧阳探针 urgent 13977665544" in clear.history[1].note
    assert masked.status == "dispatched"
    assert not missing.found


async def test_standard_answers_suggestions_and_qa(federation: Any) -> None:
    hub, _city, ctx = federation
    hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(
            kind=pb.STANDARD_ANSWER,
            title="5G package downgrade",
            standard_answer=pb.StandardAnswer(
                topic="5G package downgrade",
                category="BILL",
                answer="Downgrades take effect on the 1st of next month.",
            ),
        ),
        roster_codes=ROSTER_CODES,
    )
    found = await wait_until(
        lambda: services.search_answers(ctx.engine, "downgrade 5g"), what="standard answer"
    )
    assert found[0].category == "BILL"
    assert services.search_answers(ctx.engine, "roaming") == []

    s1 = tickets.register(
        ctx,
        JUNIOR,
        tickets.NewTicket(
            "suggestion",
            "NET",
            "web",
            "13600000001",
            "Zhao",
            "ordinary",
            "Zhao asks for more towers in Anning, call 13600000001",
        ),
        then=Action.ANSWER,
    )
    with pytest.raises(PermissionDenied):
        suggestions.classify(ctx, JUNIOR, s1.id, "coverage")
    # A clerk's label naming the customer: masked like the content when the batch leaves.
    suggestions.classify(ctx, CLERK, s1.id, "coverage Zhao 13600000001")
    _seq, n = suggestions.send_batch(ctx, CLERK) or (0, 0)
    assert n == 1
    assert suggestions.send_batch(ctx, CLERK) is None  # nothing left to send
    (batch,) = await wait_until(lambda: _bodies(hub.engine, "suggestion_batch"), what="batch")
    assert batch.suggestions[0].ticket_id == str(s1.id)
    assert batch.suggestions[0].category == "coverage Z*** 136****0001 / NET"
    # The customer's name and phone stay in the city: the hub holds the masked text only.
    assert batch.suggestions[0].content == "Z*** asks for more towers in Anning, call 136****0001"

    (sample_id,) = qa.draw(ctx, count=1, how="random", inspector="qa-1", seed=1)
    items = {i.key: 90 for i in qa.SCORECARD}
    with pytest.raises(CityError, match="missing"):
        qa.score(ctx, INSPECTOR, sample_id, items={"greeting": 90}, defects=[])
    with pytest.raises(CityError, match="defect late is listed twice"):
        qa.score(ctx, INSPECTOR, sample_id, items=items, defects=["late", "late"])
    with ctx.engine.connect() as conn:
        customer = conn.execute(
            select(TicketRow.customer_name, TicketRow.customer_phone)
            .join(QaSample, QaSample.ticket_id == TicketRow.id)
            .where(QaSample.id == sample_id)
        ).one()
    # An inspector quoting the customer: the report leaves the city with both masked.
    finding = f"slow reply; {customer.customer_name} asked to be called on 0086-139-0000-1234"
    qa.score(ctx, INSPECTOR, sample_id, items=items, defects=["late"], finding=finding)
    with pytest.raises(Conflict, match="already scored"):
        qa.score(ctx, INSPECTOR, sample_id, items=items, defects=[])
    day = ctx.today()
    draft = reports.draft(ctx, "qa", "day", day, by="qa-1")
    reports.approve(ctx, LEADER, draft.id)
    (qa_report,) = await wait_until(lambda: _bodies(hub.engine, "qa_report"), what="QA report")
    assert (qa_report.sampled, qa_report.passed, qa_report.mean_score_centi) == (1, 0, 9000)
    assert qa_report.defects[0].kind == pb.LATE
    assert "slow reply" in qa_report.findings
    assert "0086-139****1234" in qa_report.findings
    assert customer.customer_name not in qa_report.findings


async def test_bad_requests_change_nothing(federation: Any) -> None:
    _hub, _city, ctx = federation
    before = tickets.count(ctx)
    for bad, message in [
        (
            tickets.NewTicket("complaint", "NOPE", "phone", "13800000000", "x", "ordinary", "c"),
            "category",
        ),
        (tickets.NewTicket("rumour", "BILL", "phone", "13800000000", "x", "ordinary", "c"), "kind"),
        (
            tickets.NewTicket("complaint", "BILL", "phone", "call me", "x", "ordinary", "c"),
            "customer_phone",
        ),
        (
            tickets.NewTicket("complaint", "BILL", "phone", "13800000000", "x", "ordinary", " "),
            "content",
        ),
    ]:
        with pytest.raises(CityError, match=message):
            tickets.register(ctx, JUNIOR, bad)
    assert tickets.count(ctx) == before
    with pytest.raises(CityError, match="first day"):
        reports.draft(ctx, "statistics", "month", "2026-11-05", by="stat-1")
    with pytest.raises(CityError, match="not begun"):
        reports.draft(ctx, "statistics", "year", "2099-01-01", by="stat-1")
    t = tickets.register(ctx, JUNIOR, complaint())
    with pytest.raises(Exception, match="cannot close"):
        ticket_steps.act(ctx, JUNIOR, t.id, "close")
    assert [h.action for h in tickets.history(ctx, t.id)] == ["register"]
    assert datetime.now(UTC) - tickets.get(ctx, t.id).registered_at < timedelta(minutes=5)
