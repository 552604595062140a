r"""A city's tickets: kinds, statuses, who may do what, time limits and repeat complaints.

Pure Python: no database and no gRPC, so the rules can be tested and reused by the store
and the services alike. Every state change goes through one of the action functions below
(:func:`register`, :func:`answer`, :func:`dispatch`, …). Each takes the acting ``role`` and
``actor`` id and the time ``at``, checks the role may perform the action on this ticket,
checks the transition is legal from the current status, and returns a *new* :class:`Ticket`
with one more :class:`HistoryEntry`; the ticket passed in is left untouched, so a failed
store write never leaves a half-changed object behind.

Lifecycle (docs/domain.md); the authoritative table is :data:`TRANSITIONS`::

    registered / with_senior ── answer ──────────► answered (closed on the spot)
                             ── dispatch ────────► dispatched
    registered ──────────────── hand_to_senior ──► with_senior
    dispatched ── start ─► in_progress ── branch_return (回单) ─► returned
    dispatched ── branch_return ─► returned
    returned ── close ─► closed ── survey ─► surveyed
                                   survey dissatisfied + reopen ─► in_progress
    returned ── rework (退单) ─► in_progress
    any open status before escalation ── escalate_manager ─► escalated_manager ──
        escalate_province ─► escalated_province ── province_resolved ─► returned
        (the city then closes the loop: close, survey)
    escalated_manager ── answer / dispatch / close
    chase (追单) and extension steps keep the status.

Priority tiers (VIP, important, leased line) always go to seniors: a junior operator may
register such a ticket and hand it to a senior, nothing else.

Refusals are :class:`~city_node.errors.DomainError`\ s (PermissionDenied, IllegalTransition,
InvalidTicket), drawn with the rest of the city's errors in :mod:`city_node.errors`. The
words (enums) are in :mod:`city_node.vocabulary`, the ticket and its history as values in
:mod:`city_node.records`, the figures' rules (overtime, in time, repeat, survey tally) in
:mod:`city_node.rules`; all are re-exported here.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from city_node.calendar import WorkCalendar

# Re-exported (mypy: implicit_reexport, ruff: F401 off for this module), so callers keep
# importing the city's words, errors and records from the domain.
from city_node.errors import (
    DomainError,
    IllegalTransition,
    InvalidTicket,
    PermissionDenied,
)
from city_node.records import (
    ExtensionRequest,
    HistoryEntry,
    Ticket,
)
from city_node.vocabulary import (
    CLOSED_STATUSES,
    LIFECYCLE_ACTIONS,
    OPEN_STATUSES,
    PRIORITY_TIERS,
    RECORD_ONLY_ACTIONS,
    STAFF_ROLES,
    Action,
    Channel,
    CustomerTier,
    FollowUp,
    NoteCode,
    NoteParams,
    ReportStatus,
    Role,
    Satisfaction,
    Status,
    TicketKind,
)
from sync.categories import CategoryTree

# --- rules -------------------------------------------------------------------------------------

_OPERATORS = frozenset({Role.OPERATOR_JUNIOR, Role.OPERATOR_SENIOR, Role.MANAGER_HOTLINE})
#: Roles that call customers (operators, the manager hotline, surveyors): they see phones and
#: names in full and may search by phone; every other role sees them masked.
CUSTOMER_CONTACT_ROLES = _OPERATORS | {Role.SURVEYOR}

#: Who may perform each action. Branch steps (start, branch_return) have no branch role in
#: this system: the operator records them on the branch's behalf, naming the branch.
ALLOWED_ROLES: dict[Action, frozenset[Role]] = {
    Action.REGISTER: _OPERATORS,
    Action.ANSWER: _OPERATORS,
    Action.DISPATCH: _OPERATORS,
    Action.HAND_TO_SENIOR: frozenset({Role.OPERATOR_JUNIOR, Role.OPERATOR_SENIOR}),
    Action.START: _OPERATORS,
    Action.BRANCH_RETURN: _OPERATORS,
    Action.CLOSE: _OPERATORS,
    Action.SURVEY: frozenset({Role.SURVEYOR}),
    Action.CHASE: _OPERATORS,
    Action.REWORK: _OPERATORS,
    Action.ESCALATE_MANAGER: _OPERATORS,
    # Only the manager hotline talks to the province's general-manager hotline.
    Action.ESCALATE_PROVINCE: frozenset({Role.MANAGER_HOTLINE}),
    Action.PROVINCE_RESOLVED: frozenset({Role.PROVINCE}),
    Action.REQUEST_EXTENSION: _OPERATORS,
    Action.APPROVE_EXTENSION: frozenset({Role.LEADER}),
    Action.REJECT_EXTENSION: frozenset({Role.LEADER}),
    Action.COMPENSATE: frozenset({Role.MANAGER_HOTLINE}),
    Action.CLASSIFY: frozenset({Role.MATERIALS_CLERK}),
    Action.DRAFT_REPORT: frozenset({Role.STATISTICIAN, Role.QA_INSPECTOR, Role.LEADER}),
    Action.APPROVE_REPORT: frozenset({Role.LEADER}),
    Action.SCORE_QA: frozenset({Role.QA_INSPECTOR}),
    Action.SEND_SUGGESTIONS: frozenset({Role.MATERIALS_CLERK}),
    Action.MANAGE_STAFF: frozenset({Role.LEADER}),
    # docs/domain.md: the leader answers the province's notices for the center.
    Action.RECORD_RECEIPT: frozenset({Role.LEADER}),
    Action.SEARCH_BY_PHONE: CUSTOMER_CONTACT_ROLES,
    Action.READ_ACCESS_LOG: frozenset({Role.LEADER}),
}


def check_may(role: Role, action: Action) -> None:
    """Raise PermissionDenied unless ``role`` may perform ``action`` at all."""
    if role not in ALLOWED_ROLES[action]:
        allowed = ", ".join(sorted(r.value for r in ALLOWED_ROLES[action]))
        raise PermissionDenied("role.may_not", role=role, action=action, roles=allowed)


#: What a junior may still do to a VIP / important / leased-line ticket: take it in and
#: pass it to a senior. Everything else on those tickets is senior (or manager) work.
JUNIOR_PRIORITY_ACTIONS = frozenset({Action.REGISTER, Action.HAND_TO_SENIOR})

_CHASEABLE = frozenset(
    {
        Status.DISPATCHED,
        Status.IN_PROGRESS,
        Status.WITH_SENIOR,
        Status.ESCALATED_MANAGER,
        Status.ESCALATED_PROVINCE,
    }
)
# An extension only makes sense while someone is still working the ticket.
_EXTENDABLE = frozenset(OPEN_STATUSES - {Status.REGISTERED})

#: The steps a person takes on an existing ticket (``act``; registering makes one, and the
#: other actions are the console's, not a ticket's).
STEP_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.ANSWER,
        Action.DISPATCH,
        Action.HAND_TO_SENIOR,
        Action.START,
        Action.BRANCH_RETURN,
        Action.CLOSE,
        Action.CHASE,
        Action.REWORK,
        Action.SURVEY,
        Action.ESCALATE_MANAGER,
        Action.ESCALATE_PROVINCE,
        Action.PROVINCE_RESOLVED,
        Action.REQUEST_EXTENSION,
        Action.APPROVE_EXTENSION,
        Action.REJECT_EXTENSION,
    }
)

#: The lifecycle: for each status, each legal action and the status it leads to. Chase and
#: extension steps keep the status; survey may lead to in_progress instead (see survey()).
TRANSITIONS: dict[Status, dict[Action, Status]] = {
    Status.REGISTERED: {
        Action.ANSWER: Status.ANSWERED,
        Action.DISPATCH: Status.DISPATCHED,
        Action.HAND_TO_SENIOR: Status.WITH_SENIOR,
        Action.ESCALATE_MANAGER: Status.ESCALATED_MANAGER,
    },
    Status.WITH_SENIOR: {
        Action.ANSWER: Status.ANSWERED,
        Action.DISPATCH: Status.DISPATCHED,
        Action.ESCALATE_MANAGER: Status.ESCALATED_MANAGER,
    },
    Status.DISPATCHED: {
        Action.START: Status.IN_PROGRESS,
        Action.BRANCH_RETURN: Status.RETURNED,
        Action.ESCALATE_MANAGER: Status.ESCALATED_MANAGER,
    },
    Status.IN_PROGRESS: {
        Action.BRANCH_RETURN: Status.RETURNED,
        Action.ESCALATE_MANAGER: Status.ESCALATED_MANAGER,
    },
    Status.RETURNED: {
        Action.CLOSE: Status.CLOSED,
        Action.REWORK: Status.IN_PROGRESS,
        Action.ESCALATE_MANAGER: Status.ESCALATED_MANAGER,
    },
    Status.ESCALATED_MANAGER: {
        Action.ANSWER: Status.ANSWERED,
        Action.DISPATCH: Status.DISPATCHED,
        Action.CLOSE: Status.CLOSED,
        Action.ESCALATE_PROVINCE: Status.ESCALATED_PROVINCE,
    },
    Status.ESCALATED_PROVINCE: {
        Action.PROVINCE_RESOLVED: Status.RETURNED,
    },
    Status.ANSWERED: {Action.SURVEY: Status.SURVEYED},
    Status.CLOSED: {Action.SURVEY: Status.SURVEYED},
    Status.SURVEYED: {},
}
for _status in _CHASEABLE:
    TRANSITIONS[_status][Action.CHASE] = _status
for _status in _EXTENDABLE:
    for _action in (
        Action.REQUEST_EXTENSION,
        Action.APPROVE_EXTENSION,
        Action.REJECT_EXTENSION,
    ):
        TRANSITIONS[_status][_action] = _status

#: Time limits in working days for kinds other than complaints (complaints use the
#: category tree). Enquiries are meant to be answered within a day.
DEFAULT_LIMITS: dict[TicketKind, int] = {
    TicketKind.ENQUIRY: 1,
    TicketKind.HELP_REQUEST: 2,
    TicketKind.SUGGESTION: 5,
    TicketKind.PRAISE: 5,
}

REPEAT_WINDOW_DAYS = 30

# --- helpers -----------------------------------------------------------------------------------


def require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTicket("time.naive", field=name, value=value)


#: What settles a ticket escalated to the manager hotline: the manager's work, not the
#: operator's who escalated it (an operator undoing the escalation would hide it).
MANAGER_SETTLES = frozenset({Action.ANSWER, Action.DISPATCH, Action.CLOSE})


def _check_role(
    ticket_tier: CustomerTier, role: Role, action: Action, status: Status | None = None
) -> None:
    check_may(role, action)
    if (
        role is Role.OPERATOR_JUNIOR
        and ticket_tier in PRIORITY_TIERS
        and action not in JUNIOR_PRIORITY_ACTIONS
    ):
        raise PermissionDenied(
            "role.priority_customer", role=role, action=action, tier=ticket_tier.value
        )
    if (
        status is Status.ESCALATED_MANAGER
        and action in MANAGER_SETTLES
        and role is not Role.MANAGER_HOTLINE
    ):
        raise PermissionDenied("role.manager_settles", role=role, action=action)


def _open_now(ticket: Ticket) -> set[Action]:
    """The actions the ticket's state allows now, whoever acts: its status's transitions,
    extension approval/refusal only while a request is pending (and no second request)."""
    result = set(TRANSITIONS[ticket.status])
    if ticket.pending_extension is None:
        result -= {Action.APPROVE_EXTENSION, Action.REJECT_EXTENSION}
    else:
        result.discard(Action.REQUEST_EXTENSION)
    return result


def _check(ticket: Ticket, role: Role, action: Action) -> None:
    """Role first (who you are; a ticket with the manager hotline is the manager's to
    settle), then the transition."""
    _check_role(ticket.tier, role, action, ticket.status)
    if action not in TRANSITIONS[ticket.status]:
        # The refusal names what the ticket allows now, not every action of its status.
        raise IllegalTransition(ticket.status, action, _open_now(ticket))


def allowed_actions(ticket: Ticket, role: Role) -> frozenset[Action]:
    """The actions ``role`` may take on ``ticket`` now (for menus; the functions still check).

    Extension approval/refusal is listed only while a request is pending.
    """
    result: set[Action] = set()
    for action in _open_now(ticket):
        try:
            _check_role(ticket.tier, role, action, ticket.status)
        except PermissionDenied:
            continue
        result.add(action)
    return frozenset(result)


def _step(
    ticket: Ticket,
    action: Action,
    *,
    actor: str,
    role: Role,
    at: datetime,
    note: str,
    to_status: Status | None = None,
    code: NoteCode = NoteCode.NOTE,
    params: NoteParams | None = None,
    **changes: object,
) -> Ticket:
    """Check role and transition, then return a copy with the history entry appended."""
    require_aware("at", at)
    _check(ticket, role, action)
    legal = TRANSITIONS[ticket.status]
    if ticket.history and at < ticket.history[-1].at:
        # History is a log read in order; a step dated before the last one would rewrite it.
        raise InvalidTicket(
            "ticket.step_before_last",
            ticket=ticket.id,
            action=action.value,
            at=at.isoformat(),
            last=ticket.history[-1].at.isoformat(),
        )
    new_status = to_status if to_status is not None else legal[action]
    entry = HistoryEntry(
        at=at,
        actor=actor,
        role=role,
        action=action,
        note=note,
        from_status=ticket.status,
        to_status=new_status,
        code=code,
        params=params or {},
    )
    operator = actor if role in _OPERATORS else ticket.operator
    return dataclasses.replace(
        ticket,
        status=new_status,
        history=[*ticket.history, entry],
        operator=operator,
        **changes,  # type: ignore[arg-type]
    )


# --- time limits ------------------------------------------------------------------------------


def limit_workdays(
    kind: TicketKind, category: str, tier: CustomerTier, categories: CategoryTree
) -> int:
    """The ticket's time limit in working days.

    Complaints take their category's limit (inherited up the tree); other kinds take
    :data:`DEFAULT_LIMITS`. Priority tiers (VIP, important, leased line) get half the
    limit, rounded up, and never less than one working day.
    """
    category_limit = categories.limit_for(category)  # also rejects unknown codes
    base = category_limit if kind is TicketKind.COMPLAINT else DEFAULT_LIMITS[kind]
    if tier in PRIORITY_TIERS:
        return max(1, (base + 1) // 2)
    return base


# --- actions -----------------------------------------------------------------------------------


def register(
    *,
    ticket_id: int,
    kind: TicketKind,
    category: str,
    channel: Channel,
    customer_phone: str,
    customer_name: str,
    tier: CustomerTier,
    content: str,
    registered_at: datetime,
    actor: str,
    role: Role,
    categories: CategoryTree,
    calendar: WorkCalendar,
    note: str = "",
) -> Ticket:
    """Take a ticket in; its deadline is ``calendar.add_workdays(registered_at, limit)``."""
    require_aware("registered_at", registered_at)
    _check_role(tier, role, Action.REGISTER)
    limit = limit_workdays(kind, category, tier, categories)
    entry = HistoryEntry(
        at=registered_at,
        actor=actor,
        role=role,
        action=Action.REGISTER,
        note=note,
        from_status=None,
        to_status=Status.REGISTERED,
    )
    return Ticket(
        id=ticket_id,
        kind=kind,
        category=category,
        channel=channel,
        customer_phone=customer_phone,
        customer_name=customer_name,
        tier=tier,
        content=content,
        registered_at=registered_at,
        deadline=calendar.add_workdays(registered_at, limit),
        history=[entry],
        operator=actor,
    )


def answer(ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = "") -> Ticket:
    """Answer the customer directly: the ticket is closed (status answered) at ``at``."""
    return _step(ticket, Action.ANSWER, actor=actor, role=role, at=at, note=note, closed_at=at)


def dispatch(
    ticket: Ticket, *, branch: str, actor: str, role: Role, at: datetime, note: str = ""
) -> Ticket:
    """Send the ticket to a branch (派单) to work."""
    return _step(
        ticket,
        Action.DISPATCH,
        actor=actor,
        role=role,
        at=at,
        note=note,
        code=NoteCode.DISPATCHED_TO,
        params={"branch": branch},
        branch=branch,
    )


def hand_to_senior(
    ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = ""
) -> Ticket:
    """Pass the ticket to a senior operator (required for priority tiers)."""
    return _step(ticket, Action.HAND_TO_SENIOR, actor=actor, role=role, at=at, note=note)


def start(ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = "") -> Ticket:
    """Record that the branch accepted the work (in progress)."""
    return _step(ticket, Action.START, actor=actor, role=role, at=at, note=note)


def branch_return(
    ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = ""
) -> Ticket:
    """Record the branch's reply (回单); the operator then closes or reworks."""
    return _step(ticket, Action.BRANCH_RETURN, actor=actor, role=role, at=at, note=note)


def close(ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = "") -> Ticket:
    """Close the ticket at ``at`` (the time that decides in-time closure)."""
    return _step(ticket, Action.CLOSE, actor=actor, role=role, at=at, note=note, closed_at=at)


def chase(ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = "") -> Ticket:
    """Chase whoever holds the ticket (追单); the status does not change."""
    return _step(
        ticket,
        Action.CHASE,
        actor=actor,
        role=role,
        at=at,
        note=note,
        chase_count=ticket.chase_count + 1,
    )


def rework(ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = "") -> Ticket:
    """Send the branch's reply back for rework (退单): returned → in progress."""
    return _step(ticket, Action.REWORK, actor=actor, role=role, at=at, note=note)


def escalate_manager(
    ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = ""
) -> Ticket:
    """Pass a complaint the customer will not accept to the manager hotline."""
    return _step(ticket, Action.ESCALATE_MANAGER, actor=actor, role=role, at=at, note=note)


def escalate_province(
    ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = ""
) -> Ticket:
    """Escalate from the manager hotline to the province general-manager hotline."""
    return _step(ticket, Action.ESCALATE_PROVINCE, actor=actor, role=role, at=at, note=note)


def province_resolved(
    ticket: Ticket,
    *,
    actor: str,
    role: Role,
    at: datetime,
    note: str = "",
    resolution: str | None = None,
) -> Ticket:
    """Record the province's resolution; the city then closes the loop (close, survey)."""
    if resolution is None:
        return _step(ticket, Action.PROVINCE_RESOLVED, actor=actor, role=role, at=at, note=note)
    return _step(
        ticket,
        Action.PROVINCE_RESOLVED,
        actor=actor,
        role=role,
        at=at,
        note=note,
        code=NoteCode.PROVINCE_RESOLUTION,
        params={"resolution": resolution},
    )


def survey(
    ticket: Ticket,
    outcome: Satisfaction,
    *,
    actor: str,
    role: Role,
    at: datetime,
    reopen: bool = False,
    note: str = "",
) -> Ticket:
    """Record the satisfaction callback. ``reopen=True`` with a dissatisfied outcome puts the
    ticket back in progress (the customer's problem is not solved); otherwise surveyed."""
    _check(ticket, role, Action.SURVEY)
    if reopen and outcome is not Satisfaction.DISSATISFIED:
        raise InvalidTicket("ticket.reopen_needs_dissatisfied", ticket=ticket.id)
    if reopen:
        return _step(
            ticket,
            Action.SURVEY,
            actor=actor,
            role=role,
            at=at,
            note=note,
            code=NoteCode.SURVEYED,
            params={"outcome": outcome.value, "reopened": True},
            to_status=Status.IN_PROGRESS,
            satisfaction=outcome,
            surveyed_at=at,
            surveyed_by=actor,
            closed_at=None,
            reopen_count=ticket.reopen_count + 1,
        )
    return _step(
        ticket,
        Action.SURVEY,
        actor=actor,
        role=role,
        at=at,
        note=note,
        code=NoteCode.SURVEYED,
        params={"outcome": outcome.value, "reopened": False},
        satisfaction=outcome,
        surveyed_at=at,
        surveyed_by=actor,
    )


def request_extension(
    ticket: Ticket, *, days: int, reason: str, actor: str, role: Role, at: datetime
) -> Ticket:
    """Ask the leader for ``days`` more working days; the deadline moves only on approval."""
    _check(ticket, role, Action.REQUEST_EXTENSION)
    if days < 1:
        raise InvalidTicket("extension.days", ticket=ticket.id, days=days)
    if ticket.pending_extension is not None:
        raise InvalidTicket("extension.pending", ticket=ticket.id)
    return _step(
        ticket,
        Action.REQUEST_EXTENSION,
        actor=actor,
        role=role,
        at=at,
        note=reason,
        code=NoteCode.EXTENSION_REQUESTED,
        params={"days": days},
        pending_extension=ExtensionRequest(days, reason, actor, at),
    )


def approve_extension(
    ticket: Ticket,
    *,
    calendar: WorkCalendar,
    actor: str,
    role: Role,
    at: datetime,
    note: str = "",
) -> Ticket:
    """Leader approval: the deadline moves by the requested working days."""
    _check(ticket, role, Action.APPROVE_EXTENSION)  # role and status before the content
    pending = ticket.pending_extension
    if pending is None:
        raise InvalidTicket("extension.none_pending", ticket=ticket.id)
    new_deadline = calendar.add_workdays(ticket.deadline, pending.days)
    return _step(
        ticket,
        Action.APPROVE_EXTENSION,
        actor=actor,
        role=role,
        at=at,
        note=note,
        code=NoteCode.DEADLINE_MOVED,
        # Both in UTC, as every time the history stores (the calendar answers in its zone).
        params={
            "from": ticket.deadline.astimezone(UTC).isoformat(),
            "to": new_deadline.astimezone(UTC).isoformat(),
        },
        deadline=new_deadline,
        pending_extension=None,
    )


def reject_extension(
    ticket: Ticket, *, actor: str, role: Role, at: datetime, note: str = ""
) -> Ticket:
    """Leader refusal: the request is dropped and the deadline stays."""
    _check(ticket, role, Action.REJECT_EXTENSION)
    if ticket.pending_extension is None:
        raise InvalidTicket("extension.none_pending", ticket=ticket.id)
    return _step(
        ticket,
        Action.REJECT_EXTENSION,
        actor=actor,
        role=role,
        at=at,
        note=note,
        pending_extension=None,
    )
