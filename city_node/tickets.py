"""Ticket use cases: register, work, survey, escalate; one transaction per call.

The rules live in :mod:`city_node.domain`; this module loads a ticket, lets the domain
decide, and writes the result back in one unit of work: the ticket row (guarded by its
``row_version``, so two people acting on one ticket cannot overwrite each other), the new
history rows, and — for an escalation to the province — the outbox row and the escalation
record. Rows and statements are the repository's (:mod:`city_node.ticket_store`). Refusals
raise a ``CityError`` (:mod:`city_node.errors`) naming what is wrong; nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import Connection, Select, func, insert, select, update

from city_node import domain
from city_node.commands import (
    Command,
    Dispatch,
    RequestExtension,
    Step,
    Survey,
    check_choice,
    check_text,
    command_from,
)
from city_node.context import Actor, CityContext, CityError
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    FollowUp,
    HistoryEntry,
    NoteCode,
    Status,
    Ticket,
    TicketKind,
)
from city_node.history_text import wire_text
from city_node.personal_data import (
    check_name,
    normalise_phone,
    record_access,
    sees_customers,
)
from city_node.store import Escalation
from city_node.ticket_store import (
    HISTORY,
    SELECT_HISTORY,
    TICKETS,
    StoredTicket,
    find_repeats,
    history_entry,
    insert_tickets,
    load_row,
    load_stored,
    load_ticket,
    record_step,
    save_ticket,
)
from sync import outbox
from sync.categories import UnknownCategory
from sync.db import UnitOfWork
from sync.limits import blank
from sync.masking import mask_text
from sync.pb.fedsync.v1 import federation_pb2 as pb

MAX_CONTENT = 10_000
MAX_ID = 2**63 - 1  # the largest BIGINT
MAX_COMPENSATION_FEN = 100_000_000  # one million yuan: anything above is a typing error


def check_ticket_id(number: int) -> int:
    """``number`` if it can be a ticket's id (the store's integer key, 1 to 2^63-1), else
    ``CityError``: the use cases take ids as ints and check them here."""
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_ID:
        raise CityError("ticket.bad_id", value=number, maximum=MAX_ID)
    return number


def parse_ticket_id(text: str) -> int:
    """A ticket id typed by a person (``--id``) or carried as text on the wire
    (``Escalation.ticket_id``, a trace request), as the int the use cases take."""
    try:
        number = int(text.strip())
    except ValueError:
        raise CityError("ticket.id_not_number", value=text) from None
    if not 1 <= number <= MAX_ID:
        raise CityError("ticket.bad_id", value=text, maximum=MAX_ID)
    return number


# --- registration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTicket:
    """What an operator types in; validated by :func:`register`."""

    kind: str
    category: str
    channel: str
    customer_phone: str
    customer_name: str
    tier: str
    content: str


def _validated(ctx: CityContext, new: NewTicket) -> dict[str, Any]:
    kind = check_choice(TicketKind, new.kind, "kind")
    channel = check_choice(Channel, new.channel, "channel")
    tier = check_choice(CustomerTier, new.tier, "tier")
    phone = normalise_phone(
        check_text(new.customer_phone, "customer_phone", required=True, limit=32)
    )
    if new.category not in ctx.categories:
        raise CityError("ticket.category_unknown", value=new.category)
    return {
        "kind": kind,
        "channel": channel,
        "tier": tier,
        "phone": phone,
        "name": check_name(check_text(new.customer_name, "customer_name", limit=200)).strip(),
        "content": check_text(new.content, "content", required=True, limit=MAX_CONTENT),
    }


#: Follow-up actions an operator may take in the same form as the registration.
_FOLLOW_UPS = frozenset(Action(f.value) for f in FollowUp)


@dataclass(frozen=True)
class Intake:
    """One ticket to take in, with the operator's follow-up in the same form."""

    new: NewTicket
    at: datetime | None = None
    then: Action | None = None
    branch: str = ""
    note: str = ""


def register(
    ctx: CityContext,
    actor: Actor,
    new: NewTicket,
    *,
    at: datetime | None = None,
    then: Action | None = None,
    branch: str = "",
    note: str = "",
) -> Ticket:
    """Take a ticket in (repeat complaints are flagged here) and, with ``then``, answer,
    dispatch to ``branch``, hand to a senior or escalate to the manager in the same
    transaction — the usual operator form. Returns the stored ticket."""
    return register_many(ctx, actor, [Intake(new, at, then, branch, note)])[0]


def register_many(ctx: CityContext, actor: Actor, intakes: Sequence[Intake]) -> list[Ticket]:
    """Register several tickets in one transaction (bulk intake: web forms, letters, the
    traffic simulator): all are stored or, if any is refused, none. Repeats are judged in
    time order, so a repeat of an earlier ticket in the same call is flagged too.

    Three statements whatever the batch size — one query for the repeat candidates, one
    multi-row INSERT … RETURNING for the tickets, one for their history — so a batch costs
    a few round trips, not a few per ticket.
    """
    prepared = [_prepare(ctx, actor, i) for i in intakes]
    if not prepared:
        return []
    with UnitOfWork(ctx.engine) as uow:
        repeats = find_repeats(uow.conn, ctx.repeat_window_days, prepared)
        ids = insert_tickets(uow.conn, actor, prepared, repeats)
        uow.commit()
    return [_with_id(t, i) for t, i in zip(prepared, ids, strict=True)]


def _prepare(ctx: CityContext, actor: Actor, intake: Intake) -> Ticket:
    new, then, branch, note = intake.new, intake.then, intake.branch, intake.note
    v = _validated(ctx, new)
    moment = intake.at or ctx.now()
    if then is not None and then not in _FOLLOW_UPS:
        raise CityError(
            "ticket.follow_up",
            action=then.value,
            actions=", ".join(sorted(a.value for a in _FOLLOW_UPS)),
        )
    if then is Action.DISPATCH and not branch.strip():
        raise CityError("ticket.dispatch_needs_branch")
    if branch.strip() and then is not Action.DISPATCH:
        raise CityError("ticket.branch_then_dispatch")
    check_text(note, "note")
    try:
        ticket = domain.register(
            ticket_id=0,
            kind=v["kind"],
            category=new.category,
            channel=v["channel"],
            customer_phone=v["phone"],
            customer_name=v["name"],
            tier=v["tier"],
            content=v["content"],
            registered_at=moment,
            actor=actor.id,
            role=actor.role,
            categories=ctx.categories,
            calendar=ctx.calendar,
            note=note if then is None else "",
        )
    except UnknownCategory as exc:
        raise CityError("ticket.category_code_unknown", code=exc.code) from None
    if then is not None:
        ticket = _run(ticket, actor, command_from(then, branch=branch, note=note), moment, ctx)
    return ticket


def _with_id(ticket: Ticket, ticket_id: int) -> Ticket:
    return dataclasses.replace(ticket, id=ticket_id)


# --- actions ---------------------------------------------------------------------------------


_SIMPLE: dict[Action, Callable[..., Ticket]] = {
    Action.ANSWER: domain.answer,
    Action.HAND_TO_SENIOR: domain.hand_to_senior,
    Action.START: domain.start,
    Action.BRANCH_RETURN: domain.branch_return,
    Action.CLOSE: domain.close,
    Action.CHASE: domain.chase,
    Action.REWORK: domain.rework,
    Action.ESCALATE_MANAGER: domain.escalate_manager,
    Action.ESCALATE_PROVINCE: domain.escalate_province,
    Action.PROVINCE_RESOLVED: domain.province_resolved,
    Action.REJECT_EXTENSION: domain.reject_extension,
}


def _action_of(command: Command) -> Action:
    if isinstance(command, Dispatch):
        return Action.DISPATCH
    if isinstance(command, Survey):
        return Action.SURVEY
    if isinstance(command, RequestExtension):
        return Action.REQUEST_EXTENSION
    return command.action


def _run(ticket: Ticket, actor: Actor, command: Command, at: datetime, ctx: CityContext) -> Ticket:
    common: dict[str, Any] = {"actor": actor.id, "role": actor.role, "at": at}
    if isinstance(command, Dispatch):
        return domain.dispatch(ticket, branch=command.branch, note=command.note, **common)
    if isinstance(command, Survey):
        return domain.survey(
            ticket, command.outcome, reopen=command.reopen, note=command.note, **common
        )
    if isinstance(command, RequestExtension):
        return domain.request_extension(ticket, days=command.days, reason=command.reason, **common)
    action, note = command.action, command.note
    if action is Action.APPROVE_EXTENSION:
        return domain.approve_extension(ticket, calendar=ctx.calendar, note=note, **common)
    if action in (Action.ESCALATE_PROVINCE, Action.ESCALATE_MANAGER) and blank(note):
        raise CityError("ticket.reason_needed", action=action.value)
    if action not in _SIMPLE:  # REGISTER
        raise CityError("ticket.not_an_action", action=action.value)
    return _SIMPLE[action](ticket, note=note, **common)


def perform(
    ctx: CityContext,
    actor: Actor,
    ticket_id: int,
    command: Command,
    *,
    at: datetime | None = None,
) -> Ticket:
    """Carry out ``command`` on a ticket in one transaction. An escalation to the province
    also queues the Escalation (with the ticket's full history) for the hub, in the same
    transaction.

    A step given no time ``at`` happens now: it is dated once the ticket is loaded, and never
    before the ticket's last step, so a step another person (or another console process,
    whose clock may run a little ahead) stored while this request waited does not make it
    look like one going back in time. Two writes from the same read still meet the row
    version: the second is a :class:`~city_node.errors.Conflict`."""
    number = check_ticket_id(ticket_id)
    step = _action_of(command)
    with UnitOfWork(ctx.engine) as uow:
        full = step is Action.ESCALATE_PROVINCE
        row, before = load_ticket(uow.conn, number, full_history=full)
        moment = at or _now_after(ctx, before)
        after = _run(before, actor, command, moment, ctx)
        save_ticket(uow.conn, row, before, after, actor, step)
        if isinstance(command, Step) and step is Action.ESCALATE_PROVINCE:
            _queue_escalation(uow.conn, after, row, actor, command.note, moment)
        elif step in (Action.CLOSE, Action.SURVEY):
            _queue_follow_up(uow.conn, after, row.id, moment)
        uow.commit()
    return after


def _now_after(ctx: CityContext, ticket: Ticket) -> datetime:
    """Now, or the ticket's last step's time if that is later (a clock ahead of ours)."""
    now = ctx.now()
    return max(now, ticket.history[-1].at) if ticket.history else now


def pb_history(entries: Sequence[HistoryEntry]) -> list[pb.HistoryEntry]:
    """A ticket's history as it travels to the province (escalations, traces)."""
    out = []
    for e in entries:
        h = pb.HistoryEntry(actor=e.actor, action=e.action.value, note=wire_text(e))
        h.at.FromDatetime(e.at)
        out.append(h)
    return out


_PB_KIND = {k: pb.TicketKind.Value(k.value.upper()) for k in TicketKind}
_PB_TIER = {t: pb.CustomerTier.Value(t.value.upper()) for t in CustomerTier}


def _queue_escalation(
    conn: Connection, ticket: Ticket, row: Any, actor: Actor, reason: str, at: datetime
) -> None:
    body = pb.Escalation(
        ticket_id=str(ticket.id),  # the wire carries the city's id as text
        kind=_PB_KIND[ticket.kind],
        category=ticket.category,
        channel=ticket.channel.value,
        tier=_PB_TIER[ticket.tier],
        reason=reason,
        content=ticket.content,
        # The province works the complaint itself: it needs to reach the customer.
        customer_name=ticket.customer_name,
        customer_phone=ticket.customer_phone,
        history=pb_history(ticket.history),
    )
    body.registered_at.FromDatetime(ticket.registered_at)
    seq = outbox.append(conn, body, now=at)
    conn.execute(update(TICKETS).where(TICKETS.c.id == row.id).values(escalated_at=at))
    conn.execute(
        insert(Escalation).values(
            ticket_id=row.id, escalated_at=at, escalated_by=actor.id, reason=reason, outbox_seq=seq
        )
    )


def _queue_follow_up(conn: Connection, ticket: Ticket, ticket_id: int, at: datetime) -> None:
    """Tell the province what came of its resolution (Escalation.follow_up): a ticket whose
    latest escalation was resolved is closed or surveyed. Sent with the step, through the
    outbox, so the hub's desk learns it even after an outage; no customer contact rides
    along (the province already has it)."""
    latest = conn.execute(
        select(Escalation.reason, Escalation.resolution_notice_seq)
        .where(Escalation.ticket_id == ticket_id)
        .order_by(Escalation.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.resolution_notice_seq is None:
        return
    # Read after the step was saved: the whole history, this step included.
    _row, ticket = load_ticket(conn, ticket_id, full_history=True)
    follow_up = pb.EscalationFollowUp(
        resolution_notice_seq=latest.resolution_notice_seq,
        status=ticket.status.value,
        satisfaction=ticket.satisfaction.value if ticket.satisfaction else "",
    )
    if ticket.closed_at is not None:
        follow_up.closed_at.FromDatetime(ticket.closed_at)
    if ticket.surveyed_at is not None:
        follow_up.surveyed_at.FromDatetime(ticket.surveyed_at)

    # No customer contact at all: the name and phone (and any phone-like number) typed in
    # the reason or a step's note are masked as for the roles that never call customers.
    def hide(text: str) -> str:
        return mask_text(text, name=ticket.customer_name, phone=ticket.customer_phone)

    history = pb_history(ticket.history)
    for entry in history:
        entry.note = hide(entry.note)
    body = pb.Escalation(
        ticket_id=str(ticket.id),  # the wire carries the city's id as text
        kind=_PB_KIND[ticket.kind],
        category=ticket.category,
        channel=ticket.channel.value,
        tier=_PB_TIER[ticket.tier],
        reason=hide(latest.reason),
        history=history,
        follow_up=follow_up,
    )
    body.registered_at.FromDatetime(ticket.registered_at)
    outbox.append(conn, body, now=at)


def record_compensation(
    ctx: CityContext,
    actor: Actor,
    ticket_id: int,
    *,
    fen: int,
    note: str,
    at: datetime | None = None,
) -> None:
    """The manager hotline records compensation paid for an overtime complaint (in fen).
    Each payment is a step of its own; the ticket keeps their sum (and the last one's note
    and time), and the overtime report counts each payment in the period it was made."""
    domain.check_may(actor.role, Action.COMPENSATE)
    # A payment of nothing is no payment: it would add a step and replace the last note.
    if not isinstance(fen, int) or not 1 <= fen <= MAX_COMPENSATION_FEN:
        raise CityError("compensation.fen", fen=fen, maximum=MAX_COMPENSATION_FEN)
    check_text(note, "note", required=True)
    number = check_ticket_id(ticket_id)
    moment = at or ctx.now()
    with UnitOfWork(ctx.engine) as uow:
        row = load_row(uow.conn, number)
        if row.kind != TicketKind.COMPLAINT.value:
            raise CityError("compensation.not_complaint", ticket=number, kind=row.kind)
        if not _ever_overtime(uow.conn, row, moment):
            raise CityError("compensation.not_overtime", ticket=number)
        record_step(
            uow.conn,
            row,
            actor,
            Action.COMPENSATE,
            note,
            moment,
            code=NoteCode.COMPENSATION,
            params={"fen": fen},
            compensation_fen=TICKETS.c.compensation_fen + fen,
            compensation_note=note,
            compensated_at=moment,
        )
        uow.commit()


def _ever_overtime(conn: Connection, row: Any, moment: datetime) -> bool:
    """The complaint is open past its deadline now, or a step was taken on it while it was
    open past the deadline in force then (closed late, extended late…): what compensation
    is paid for (docs/domain.md), and what makes it an overtime report's case."""
    if row.status in _OPEN_VALUES and row.deadline is not None and row.deadline < moment:
        return True
    late = conn.execute(
        select(HISTORY.c.id)
        .where(
            HISTORY.c.ticket_id == row.id,
            HISTORY.c.from_status.in_(_OPEN_VALUES),
            HISTORY.c.deadline.is_not(None),
            HISTORY.c.at > HISTORY.c.deadline,
        )
        .limit(1)
    ).first()
    return late is not None


_OPEN_VALUES = sorted(s.value for s in domain.OPEN_STATUSES)


# --- reading ---------------------------------------------------------------------------------


def get(ctx: CityContext, ticket_id: int) -> Ticket:
    """The ticket with its whole history (record-only steps such as compensation too)."""
    return stored(ctx, ticket_id).ticket


def stored(ctx: CityContext, ticket_id: int) -> StoredTicket:
    """The ticket with its whole history and what the store keeps about it."""
    number = check_ticket_id(ticket_id)
    with ctx.engine.connect() as conn:
        return load_stored(conn, number)


def history(ctx: CityContext, ticket_id: int) -> list[HistoryEntry]:
    """Every step of a ticket including non-lifecycle ones (compensation), in order."""
    number = check_ticket_id(ticket_id)
    with ctx.engine.connect() as conn:
        rows = conn.execute(SELECT_HISTORY, {"id": number}).all()
    return [history_entry(r) for r in rows]


class Filters(TypedDict, total=False):
    """What a ticket list may be narrowed by (each value is checked: status and kind against
    their words, the phone normalised)."""

    status: str | None
    kind: str | None
    phone: str | None
    operator: str | None
    open_only: bool
    overtime_only: bool
    extension_pending: bool


#: Where an extension request waits for the leader: the statuses it may be decided in.
_DECIDABLE = [
    s.value for s, steps in domain.TRANSITIONS.items() if Action.APPROVE_EXTENSION in steps
]


def search(
    ctx: CityContext, *, limit: int = 50, offset: int = 0, **filters: Unpack[Filters]
) -> list[Any]:
    """Ticket rows for lists and queues, newest first."""
    query = _filtered(ctx, select(TICKETS), **filters)
    limit = max(1, min(int(limit), 500))
    offset = max(0, min(int(offset), 10_000_000))
    query = query.order_by(TICKETS.c.id.desc()).limit(limit).offset(offset)
    with ctx.engine.connect() as conn:
        return list(conn.execute(query))


def count(ctx: CityContext, **filters: Unpack[Filters]) -> int:
    """How many tickets match ``filters`` (all tickets without any): the list's total."""
    query = _filtered(ctx, select(func.count()).select_from(TICKETS), **filters)
    with ctx.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _filtered(
    ctx: CityContext,
    query: Select[Any],
    *,
    status: str | None = None,
    kind: str | None = None,
    phone: str | None = None,
    operator: str | None = None,
    open_only: bool = False,
    overtime_only: bool = False,
    extension_pending: bool = False,
) -> Select[Any]:
    if status:
        query = query.where(TICKETS.c.status == check_choice(Status, status, "status").value)
    if kind:
        query = query.where(TICKETS.c.kind == check_choice(TicketKind, kind, "kind").value)
    if phone:
        query = query.where(TICKETS.c.customer_phone == normalise_phone(phone, "phone"))
    if operator:
        query = query.where(TICKETS.c.operator == operator)
    if open_only or overtime_only:
        query = query.where(TICKETS.c.status.in_([s.value for s in domain.OPEN_STATUSES]))
    if overtime_only:
        query = query.where(TICKETS.c.deadline < ctx.now())
    if extension_pending:
        query = query.where(TICKETS.c.ext_days.is_not(None), TICKETS.c.status.in_(_DECIDABLE))
    return query


def find_tickets(
    ctx: CityContext,
    actor: Actor,
    *,
    limit: int = 50,
    offset: int = 0,
    **filters: Unpack[Filters],
) -> list[Any]:
    """:func:`search` for a person: a phone search is only for roles that call customers
    and is logged (one row per ticket found; one with no ticket when none was); a list that
    shows a role customers' phones and names in full is logged too (one row per ticket
    shown), so the access log answers "who was shown this customer's number" for lists as
    for details."""
    phone = filters.get("phone")
    if phone:
        domain.check_may(actor.role, Action.SEARCH_BY_PHONE)
        phone = normalise_phone(phone, "phone")
    filters["phone"] = phone or None
    rows = search(ctx, limit=limit, offset=offset, **filters)
    if phone:
        record_access(ctx.engine, actor, [r.id for r in rows] or [None], "phone search")
    elif sees_customers(actor.role):
        record_access(ctx.engine, actor, [r.id for r in rows], "ticket list")
    return rows
