"""Ticket rules: lifecycle, permissions, time limits, repeat complaints, surveys."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from city_node import domain as d
from city_node import rules
from city_node.calendar import WorkCalendar
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    IllegalTransition,
    InvalidTicket,
    PermissionDenied,
    Role,
    Satisfaction,
    Status,
    Ticket,
    TicketKind,
)
from sync.categories import CategoryError, CategoryTree, UnknownCategory

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
TREE = CategoryTree.load()
JUNIOR, SENIOR, MANAGER = Role.OPERATOR_JUNIOR, Role.OPERATOR_SENIOR, Role.MANAGER_HOTLINE


def at(y: int, m: int, dd: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, dd, hh, mm, tzinfo=SH)


MONDAY = at(2024, 6, 3, 9)  # a plain working Monday


def new_ticket(
    *,
    kind: TicketKind = TicketKind.COMPLAINT,
    category: str = "BILL.DISPUTE",
    tier: CustomerTier = CustomerTier.ORDINARY,
    phone: str = "13900000001",
    when: datetime = MONDAY,
    ticket_id: int = 1,
    role: Role = JUNIOR,
) -> Ticket:
    return d.register(
        ticket_id=ticket_id,
        kind=kind,
        category=category,
        channel=Channel.PHONE,
        customer_phone=phone,
        customer_name="张三",
        tier=tier,
        content="话费多扣",
        registered_at=when,
        actor="op1",
        role=role,
        categories=TREE,
        calendar=CAL,
    )


def t(minutes: int) -> datetime:
    return MONDAY + timedelta(minutes=minutes)


def closed_ticket(tier: CustomerTier = CustomerTier.ORDINARY) -> Ticket:
    role = JUNIOR if tier is CustomerTier.ORDINARY else SENIOR
    ticket = new_ticket(tier=tier)
    ticket = d.dispatch(ticket, branch="B1", actor="op1", role=role, at=t(1))
    ticket = d.start(ticket, actor="op1", role=role, at=t(2))
    ticket = d.branch_return(ticket, actor="op1", role=role, at=t(3))
    return d.close(ticket, actor="op1", role=role, at=t(4))


# --- categories --------------------------------------------------------------------------------


def test_packaged_tree_and_inherited_limit(tmp_path: Path) -> None:
    assert TREE.get("NET.BROADBAND").name_en == "Broadband fault"
    assert TREE.limit_for("NET.BROADBAND") == 2
    csv = tmp_path / "cats.csv"
    csv.write_text(
        "code,parent,name_zh,name_en,complaint_limit_workdays\n"
        "A,,甲,A,7\nA.B,A,乙,AB,\nA.B.C,A.B,丙,ABC,\n",
        encoding="utf-8",
    )
    tree = CategoryTree.load(csv)
    assert tree.get("A.B.C").limit_workdays is None
    assert tree.limit_for("A.B.C") == 7


def test_unknown_category_names_the_code() -> None:
    with pytest.raises(UnknownCategory, match=r"NOPE\.X"):
        TREE.limit_for("NOPE.X")
    with pytest.raises(UnknownCategory, match=r"NOPE\.Y"):
        new_ticket(category="NOPE.Y")


def test_limitless_root_is_refused_at_load(tmp_path: Path) -> None:
    csv = tmp_path / "cats.csv"
    csv.write_text(
        "code,parent,name_zh,name_en,complaint_limit_workdays\nA,,甲,A,\n", encoding="utf-8"
    )
    with pytest.raises(CategoryError, match="A has no time limit"):
        CategoryTree.load(csv)


# --- deadlines ---------------------------------------------------------------------------------


def test_complaint_deadline_from_category_across_weekend() -> None:
    # BILL.DISPUTE is 5 workdays: Thursday 6 June 14:00 -> Thursday 13 June 14:00.
    ticket = new_ticket(when=at(2024, 6, 6, 14))
    assert ticket.deadline == at(2024, 6, 13, 14)
    assert ticket.status is Status.REGISTERED
    assert [e.action for e in ticket.history] == [Action.REGISTER]


def test_enquiry_default_limit_is_one_workday() -> None:
    ticket = new_ticket(kind=TicketKind.ENQUIRY, when=at(2024, 6, 7, 17))  # Friday
    assert ticket.deadline == at(2024, 6, 10, 17)


@pytest.mark.parametrize(
    ("category", "tier", "limit"),
    [
        ("BILL.DISPUTE", CustomerTier.ORDINARY, 5),
        ("BILL.DISPUTE", CustomerTier.VIP, 3),
        ("NET.SIGNAL", CustomerTier.IMPORTANT, 5),
        ("NET.BROADBAND", CustomerTier.LEASED_LINE, 1),
        ("BILL.VAS", CustomerTier.VIP, 2),
    ],
)
def test_priority_tiers_get_half_rounded_up(category: str, tier: CustomerTier, limit: int) -> None:
    assert d.limit_workdays(TicketKind.COMPLAINT, category, tier, TREE) == limit
    ticket = new_ticket(category=category, tier=tier, role=SENIOR)
    assert ticket.deadline == CAL.add_workdays(MONDAY, limit)


def test_overtime_and_in_time() -> None:
    ticket = new_ticket(category="NET.BROADBAND")  # 2 workdays: Wednesday 09:00
    assert ticket.deadline == at(2024, 6, 5, 9)
    assert not rules.is_overtime(ticket, at(2024, 6, 5, 9))
    assert rules.is_overtime(ticket, at(2024, 6, 5, 9, 1))
    assert not rules.closed_in_time(ticket)
    late = d.answer(ticket, actor="op1", role=JUNIOR, at=at(2024, 6, 5, 10))
    assert not rules.closed_in_time(late)
    assert rules.is_overtime(late, at(2024, 6, 5, 10))
    on_the_dot = d.answer(ticket, actor="op1", role=JUNIOR, at=at(2024, 6, 5, 9))
    assert rules.closed_in_time(on_the_dot)
    assert not rules.is_overtime(on_the_dot, at(2024, 6, 6))
    early = d.answer(ticket, actor="op1", role=JUNIOR, at=at(2024, 6, 5, 8))
    assert rules.closed_in_time(early)
    assert not rules.is_overtime(early, at(2030, 1, 1))  # closed in time stays in time


# --- lifecycle ---------------------------------------------------------------------------------


def test_full_lifecycle_records_history_and_does_not_mutate_input() -> None:
    ticket = new_ticket()
    dispatched = d.dispatch(ticket, branch="B1", actor="op1", role=JUNIOR, at=t(1))
    assert ticket.status is Status.REGISTERED and len(ticket.history) == 1
    chased = d.chase(dispatched, actor="op2", role=JUNIOR, at=t(2), note="催")
    assert chased.status is Status.DISPATCHED and chased.chase_count == 1
    working = d.start(chased, actor="op1", role=JUNIOR, at=t(3))
    returned = d.branch_return(working, actor="op1", role=JUNIOR, at=t(4))
    reworked = d.rework(returned, actor="op1", role=SENIOR, at=t(5), note="答复不完整")
    assert reworked.status is Status.IN_PROGRESS
    returned = d.branch_return(reworked, actor="op1", role=JUNIOR, at=t(6))
    closed = d.close(returned, actor="op1", role=JUNIOR, at=t(7))
    assert closed.status is Status.CLOSED and closed.closed_at == t(7)
    surveyed = d.survey(closed, Satisfaction.SATISFIED, actor="sv1", role=Role.SURVEYOR, at=t(8))
    assert surveyed.status is Status.SURVEYED
    assert [e.action for e in surveyed.history] == [
        Action.REGISTER,
        Action.DISPATCH,
        Action.CHASE,
        Action.START,
        Action.BRANCH_RETURN,
        Action.REWORK,
        Action.BRANCH_RETURN,
        Action.CLOSE,
        Action.SURVEY,
    ]
    assert surveyed.history[5].from_status is Status.RETURNED
    assert surveyed.history[5].role is SENIOR
    assert surveyed.history[-1].actor == "sv1"


def test_answer_on_the_spot_closes() -> None:
    ticket = d.answer(new_ticket(kind=TicketKind.ENQUIRY), actor="op1", role=JUNIOR, at=t(3))
    assert ticket.status is Status.ANSWERED
    assert not ticket.is_open
    assert ticket.closed_at == t(3)


def test_escalation_to_province_and_back() -> None:
    ticket = d.dispatch(new_ticket(), branch="B1", actor="op1", role=JUNIOR, at=t(1))
    ticket = d.escalate_manager(ticket, actor="op1", role=JUNIOR, at=t(2))
    with pytest.raises(PermissionDenied, match="operator_junior may not escalate_province"):
        d.escalate_province(ticket, actor="op1", role=JUNIOR, at=t(3))
    ticket = d.escalate_province(ticket, actor="m1", role=MANAGER, at=t(3))
    assert ticket.status is Status.ESCALATED_PROVINCE
    with pytest.raises(PermissionDenied):  # nobody at the city can fake the province
        d.province_resolved(ticket, actor="m1", role=MANAGER, at=t(4))
    ticket = d.province_resolved(ticket, actor="province:gm", role=Role.PROVINCE, at=t(4))
    ticket = d.close(ticket, actor="m1", role=MANAGER, at=t(5))
    assert ticket.status is Status.CLOSED


def test_history_cannot_go_backwards_in_time() -> None:
    ticket = new_ticket()
    with pytest.raises(InvalidTicket, match="before the last"):
        d.dispatch(ticket, branch="B1", actor="op1", role=JUNIOR, at=MONDAY - timedelta(1))


def test_naive_time_is_refused() -> None:
    with pytest.raises(InvalidTicket, match="at must be"):
        d.chase(new_ticket(), actor="op1", role=JUNIOR, at=datetime(2024, 6, 3, 10))


#: A role that is allowed to do each action, so only the status can make it fail.
ACTING_ROLE: dict[Action, Role] = {
    action: (
        Role.SURVEYOR
        if action is Action.SURVEY
        else Role.LEADER
        if action in {Action.APPROVE_EXTENSION, Action.REJECT_EXTENSION}
        else Role.PROVINCE
        if action is Action.PROVINCE_RESOLVED
        else MANAGER
    )
    for action in sorted(d.LIFECYCLE_ACTIONS)
    if action is not Action.REGISTER
}


def call(action: Action, ticket: Ticket, role: Role, when: datetime) -> Ticket:
    match action:
        case Action.ANSWER:
            return d.answer(ticket, actor="x", role=role, at=when)
        case Action.DISPATCH:
            return d.dispatch(ticket, branch="B1", actor="x", role=role, at=when)
        case Action.HAND_TO_SENIOR:
            return d.hand_to_senior(ticket, actor="x", role=SENIOR, at=when)
        case Action.START:
            return d.start(ticket, actor="x", role=role, at=when)
        case Action.BRANCH_RETURN:
            return d.branch_return(ticket, actor="x", role=role, at=when)
        case Action.CLOSE:
            return d.close(ticket, actor="x", role=role, at=when)
        case Action.SURVEY:
            return d.survey(ticket, Satisfaction.SATISFIED, actor="x", role=role, at=when)
        case Action.CHASE:
            return d.chase(ticket, actor="x", role=role, at=when)
        case Action.REWORK:
            return d.rework(ticket, actor="x", role=role, at=when)
        case Action.ESCALATE_MANAGER:
            return d.escalate_manager(ticket, actor="x", role=role, at=when)
        case Action.ESCALATE_PROVINCE:
            return d.escalate_province(ticket, actor="x", role=role, at=when)
        case Action.PROVINCE_RESOLVED:
            return d.province_resolved(ticket, actor="x", role=role, at=when)
        case Action.REQUEST_EXTENSION:
            return d.request_extension(ticket, days=1, reason="r", actor="x", role=role, at=when)
        case Action.APPROVE_EXTENSION:
            return d.approve_extension(ticket, calendar=CAL, actor="x", role=role, at=when)
        case Action.REJECT_EXTENSION:
            return d.reject_extension(ticket, actor="x", role=role, at=when)
    raise AssertionError(action)


def in_status(status: Status) -> Ticket:
    # Forge a ticket in each status: the rule under test is the table, not the route there.
    ticket = new_ticket()
    return Ticket(**{**ticket.__dict__, "status": status})


ILLEGAL = [
    (status, action)
    for status in Status
    for action in ACTING_ROLE
    if action not in d.TRANSITIONS[status]
]


def test_every_status_and_action_is_covered() -> None:
    legal = sum(len(v) for v in d.TRANSITIONS.values())
    assert len(ILLEGAL) + legal == len(Status) * len(ACTING_ROLE)
    assert len(ILLEGAL) > 80
    assert d.TRANSITIONS[Status.SURVEYED] == {}


@pytest.mark.parametrize(("status", "action"), ILLEGAL, ids=lambda v: str(v))
def test_illegal_transition_rejected_with_from_status(status: Status, action: Action) -> None:
    ticket = in_status(status)
    with pytest.raises(IllegalTransition) as err:
        call(action, ticket, ACTING_ROLE[action], t(1))
    message = str(err.value)
    assert f"in status {status.value}" in message
    assert action.value in message
    assert err.value.status is status
    # What the ticket allows now: approving or refusing an extension only while one is
    # pending (none is here), every other action of its status.
    assert ticket.pending_extension is None
    now = set(d.TRANSITIONS[status]) - {Action.APPROVE_EXTENSION, Action.REJECT_EXTENSION}
    assert err.value.allowed == tuple(sorted(a.value for a in now))
    named = message.split("allowed from")[1]
    for allowed in now:
        assert allowed.value in named
    assert "approve_extension" not in named and "reject_extension" not in named


def test_a_pending_extension_is_what_may_be_approved() -> None:
    ticket = in_status(Status.DISPATCHED)
    ticket = d.request_extension(ticket, days=1, reason="r", actor="x", role=MANAGER, at=t(0))
    with pytest.raises(IllegalTransition) as err:
        call(Action.SURVEY, ticket, ACTING_ROLE[Action.SURVEY], t(1))
    assert "approve_extension" in err.value.allowed and "reject_extension" in err.value.allowed
    assert "request_extension" not in err.value.allowed


@pytest.mark.parametrize(
    ("status", "action"),
    [(s, a) for s in Status for a in d.TRANSITIONS[s] if a is not Action.APPROVE_EXTENSION],
    ids=lambda v: str(v),
)
def test_every_legal_transition_goes_where_the_table_says(status: Status, action: Action) -> None:
    ticket = in_status(status)
    if action is Action.REJECT_EXTENSION:
        ticket = d.request_extension(ticket, days=1, reason="r", actor="x", role=MANAGER, at=t(0))
    after = call(action, ticket, ACTING_ROLE[action], t(1))
    assert after.status is d.TRANSITIONS[status][action]
    assert after.history[-1].action is action
    assert after.history[-1].from_status is status


# --- permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", sorted(d.PRIORITY_TIERS))
def test_junior_cannot_answer_or_dispatch_priority_customers(tier: CustomerTier) -> None:
    ticket = new_ticket(tier=tier)  # a junior may take the call
    with pytest.raises(PermissionDenied, match=f"operator_junior may not answer.*{tier.value}"):
        d.answer(ticket, actor="op1", role=JUNIOR, at=t(1))
    with pytest.raises(PermissionDenied, match="operator_junior may not dispatch"):
        d.dispatch(ticket, branch="B1", actor="op1", role=JUNIOR, at=t(1))
    ticket = d.hand_to_senior(ticket, actor="op1", role=JUNIOR, at=t(1))
    with pytest.raises(PermissionDenied, match="operator_junior may not chase"):
        d.chase(ticket, actor="op1", role=JUNIOR, at=t(2))
    ticket = d.dispatch(ticket, branch="B1", actor="s1", role=SENIOR, at=t(2))
    assert ticket.status is Status.DISPATCHED
    assert ticket.operator == "s1"


@pytest.mark.parametrize("role", [JUNIOR, SENIOR])
def test_a_ticket_with_the_manager_hotline_is_the_managers_to_settle(role: Role) -> None:
    """README: escalated_manager ── answer / dispatch / close: the manager hotline settles
    it. The operator who escalated it may chase it, not undo the escalation."""
    ticket = d.escalate_manager(new_ticket(), actor="op1", role=role, at=t(1))
    assert d.allowed_actions(ticket, role) & d.MANAGER_SETTLES == frozenset()
    assert d.allowed_actions(ticket, MANAGER) >= d.MANAGER_SETTLES
    with pytest.raises(PermissionDenied, match="manager hotline's to settle"):
        d.answer(ticket, actor="op1", role=role, at=t(2))
    with pytest.raises(PermissionDenied, match="manager hotline's to settle"):
        d.dispatch(ticket, branch="B1", actor="op1", role=role, at=t(2))
    with pytest.raises(PermissionDenied, match="manager hotline's to settle"):
        d.close(ticket, actor="op1", role=role, at=t(2))
    chased = d.chase(ticket, actor="op1", role=role, at=t(2))
    assert chased.status is Status.ESCALATED_MANAGER
    settled = d.close(chased, actor="m1", role=MANAGER, at=t(3))
    assert settled.status is Status.CLOSED


def test_junior_may_answer_ordinary_customer() -> None:
    ticket = d.answer(new_ticket(), actor="op1", role=JUNIOR, at=t(1))
    assert ticket.status is Status.ANSWERED


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.LEADER])
def test_only_leader_approves_extensions(role: Role) -> None:
    ticket = d.dispatch(new_ticket(), branch="B1", actor="op1", role=JUNIOR, at=t(1))
    ticket = d.request_extension(ticket, days=2, reason="等备件", actor="op1", role=JUNIOR, at=t(2))
    with pytest.raises(PermissionDenied, match=f"{role.value} may not approve_extension"):
        d.approve_extension(ticket, calendar=CAL, actor="x", role=role, at=t(3))
    with pytest.raises(PermissionDenied, match=f"{role.value} may not reject_extension"):
        d.reject_extension(ticket, actor="x", role=role, at=t(3))


def test_leader_approval_moves_the_deadline() -> None:
    ticket = d.dispatch(new_ticket(), branch="B1", actor="op1", role=JUNIOR, at=t(1))
    assert ticket.deadline == at(2024, 6, 10, 9)  # Monday + 5 workdays
    with pytest.raises(InvalidTicket, match="no extension request"):
        d.approve_extension(ticket, calendar=CAL, actor="boss", role=Role.LEADER, at=t(2))
    ticket = d.request_extension(ticket, days=2, reason="等备件", actor="op1", role=JUNIOR, at=t(2))
    assert ticket.deadline == at(2024, 6, 10, 9)  # not until approved
    with pytest.raises(InvalidTicket, match="already pending"):
        d.request_extension(ticket, days=1, reason="x", actor="op1", role=JUNIOR, at=t(3))
    ticket = d.approve_extension(ticket, calendar=CAL, actor="boss", role=Role.LEADER, at=t(3))
    assert ticket.deadline == at(2024, 6, 12, 9)
    assert ticket.pending_extension is None
    assert ticket.history[-1].role is Role.LEADER


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.SURVEYOR])
def test_only_surveyor_records_satisfaction(role: Role) -> None:
    with pytest.raises(PermissionDenied, match=f"{role.value} may not survey"):
        d.survey(closed_ticket(), Satisfaction.SATISFIED, actor="x", role=role, at=t(9))


@pytest.mark.parametrize("role", [Role.QA_INSPECTOR, Role.STATISTICIAN, Role.MATERIALS_CLERK])
def test_back_office_roles_cannot_register(role: Role) -> None:
    with pytest.raises(PermissionDenied, match=f"{role.value} may not register"):
        new_ticket(role=role)


def test_allowed_actions_menu() -> None:
    vip = new_ticket(tier=CustomerTier.VIP)
    assert d.allowed_actions(vip, JUNIOR) == {Action.HAND_TO_SENIOR}
    assert Action.ANSWER in d.allowed_actions(vip, SENIOR)
    assert d.allowed_actions(closed_ticket(), Role.SURVEYOR) == {Action.SURVEY}
    working = d.dispatch(new_ticket(), branch="B1", actor="op1", role=JUNIOR, at=t(1))
    assert d.allowed_actions(working, Role.LEADER) == set()
    assert Action.REQUEST_EXTENSION in d.allowed_actions(working, JUNIOR)
    asked = d.request_extension(working, days=1, reason="r", actor="op1", role=JUNIOR, at=t(2))
    assert d.allowed_actions(asked, Role.LEADER) == {
        Action.APPROVE_EXTENSION,
        Action.REJECT_EXTENSION,
    }
    assert Action.REQUEST_EXTENSION not in d.allowed_actions(asked, JUNIOR)


# --- surveys -----------------------------------------------------------------------------------


def test_dissatisfied_survey_reopens() -> None:
    ticket = d.survey(
        closed_ticket(),
        Satisfaction.DISSATISFIED,
        actor="sv1",
        role=Role.SURVEYOR,
        at=t(9),
        reopen=True,
    )
    assert ticket.status is Status.IN_PROGRESS
    assert ticket.is_open
    assert ticket.closed_at is None
    assert ticket.reopen_count == 1
    assert ticket.satisfaction is Satisfaction.DISSATISFIED
    assert not rules.closed_in_time(ticket)
    # ...and it can be worked and closed again.
    ticket = d.branch_return(ticket, actor="op1", role=JUNIOR, at=t(10))
    ticket = d.close(ticket, actor="op1", role=JUNIOR, at=t(11))
    assert ticket.closed_at == t(11)


def test_only_dissatisfied_may_reopen() -> None:
    with pytest.raises(InvalidTicket, match="only a dissatisfied"):
        d.survey(
            closed_ticket(),
            Satisfaction.NEUTRAL,
            actor="s",
            role=Role.SURVEYOR,
            at=t(9),
            reopen=True,
        )


def test_unreachable_is_not_in_the_denominator() -> None:
    outcomes = [
        Satisfaction.VERY_SATISFIED,
        Satisfaction.SATISFIED,
        Satisfaction.DISSATISFIED,
        Satisfaction.NEUTRAL,
        Satisfaction.UNREACHABLE,
        Satisfaction.UNREACHABLE,
    ]
    tickets = [
        d.survey(closed_ticket(), o, actor="sv", role=Role.SURVEYOR, at=t(9)) for o in outcomes
    ]
    tickets.append(closed_ticket())  # not surveyed yet: not counted at all
    tally = rules.tally_surveys(tickets)
    assert tally.surveyed == 4
    assert tally.unreachable == 2
    assert tally.satisfaction_rate == 0.5
    assert rules.tally_surveys([]).satisfaction_rate is None


# --- repeat complaints -------------------------------------------------------------------------


def test_repeat_at_the_window_edge() -> None:
    first = new_ticket(ticket_id=1, when=MONDAY)
    on_edge = new_ticket(ticket_id=2, when=MONDAY + timedelta(days=30))
    past_edge = new_ticket(ticket_id=3, when=MONDAY + timedelta(days=30, seconds=1))
    assert rules.is_repeat(on_edge, [first])
    assert not rules.is_repeat(past_edge, [first])
    assert rules.is_repeat(past_edge, [first], window_days=31)


def test_repeat_needs_same_phone_category_and_complaint_kind() -> None:
    first = new_ticket(ticket_id=1)
    later = MONDAY + timedelta(days=3)
    assert not rules.is_repeat(new_ticket(ticket_id=2, when=later, phone="13911111111"), [first])
    assert not rules.is_repeat(new_ticket(ticket_id=2, when=later, category="BILL.VAS"), [first])
    enquiry = new_ticket(ticket_id=2, when=later, kind=TicketKind.ENQUIRY)
    assert not rules.is_repeat(enquiry, [first])
    assert not rules.is_repeat(new_ticket(ticket_id=2, when=later), [enquiry])
    assert rules.is_repeat(new_ticket(ticket_id=2, when=later), [enquiry, first])


def test_repeat_only_looks_backwards_and_ignores_itself() -> None:
    first = new_ticket(ticket_id=1)
    later = new_ticket(ticket_id=2, when=MONDAY + timedelta(days=1))
    assert not rules.is_repeat(first, [later])
    assert not rules.is_repeat(first, [first])
    assert rules.is_repeat(later, [first, later])


def test_holiday_calendar_flows_into_deadline() -> None:
    cal = WorkCalendar(holidays=frozenset({date(2024, 6, 10)}))  # Dragon Boat, Monday
    ticket = d.register(
        ticket_id=8,
        kind=TicketKind.ENQUIRY,
        category="OTH",
        channel=Channel.WEB,
        customer_phone="1",
        customer_name="李四",
        tier=CustomerTier.ORDINARY,
        content="?",
        registered_at=at(2024, 6, 7, 11),
        actor="op1",
        role=JUNIOR,
        categories=TREE,
        calendar=cal,
    )
    assert ticket.deadline == at(2024, 6, 11, 11)
