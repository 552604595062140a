"""Ticket use cases: register, work, survey, escalate; one transaction per call.

The rules live in :mod:`city_node.domain`; this module loads a ticket, lets the domain
decide, and writes the result back in one unit of work: the ticket row (guarded by its
``row_version``, so two people acting on one ticket cannot overwrite each other), the new
history rows, and — for an escalation to the province — the outbox row and the escalation
record. Refusals raise :class:`~city_node.context.CityError` (bad input, unknown ticket,
stale write) or :class:`~city_node.domain.DomainError` (role or transition), each with a
message naming what is wrong; nothing is written then.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, exists, func, insert, select, update

from city_node import domain, rules
from city_node.categories import UnknownCategory
from city_node.context import Actor, CityContext, CityError, Conflict, NotFound
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    FollowUp,
    HistoryEntry,
    NoteCode,
    NoteParams,
    Role,
    Satisfaction,
    Status,
    Ticket,
    TicketKind,
)
from city_node.history_text import wire_text
from city_node.store import Escalation, HistoryRow, TicketRow
from sync import outbox
from sync.db import UnitOfWork, UtcDateTime
from sync.pb.fedsync.v1 import federation_pb2 as pb

_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,30}$")
MAX_CONTENT = 10_000
MAX_ID = 2**63 - 1  # the largest BIGINT
MAX_EXTENSION_DAYS = 60
MAX_COMPENSATION_FEN = 100_000_000  # one million yuan: anything above is a typing error
MAX_NOTE = 4_000

_T: Table = TicketRow.__table__  # type: ignore[assignment]
_H: Table = HistoryRow.__table__  # type: ignore[assignment]


def _enum(enum: Any, value: Any, field: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(e.value for e in enum)
        raise CityError(f"{field} {value!r} is not one of: {choices}") from None


def _text(value: str, field: str, *, required: bool = False, limit: int = MAX_NOTE) -> str:
    if not isinstance(value, str):
        raise CityError(f"{field} must be text")
    if required and not value.strip():
        raise CityError(f"{field} is required")
    if len(value) > limit:
        raise CityError(f"{field} is {len(value)} characters; at most {limit}")
    return value


def parse_ticket_id(value: str | int) -> int:
    """Ticket ids are the store's integer keys; accept them as text from people."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise CityError(f"ticket id {value!r} is not a number") from None
    if not 1 <= number <= MAX_ID:
        raise CityError(f"ticket id {value!r} is not a ticket (ids are 1 to {MAX_ID})")
    return number


# --- row <-> domain --------------------------------------------------------------------------


def _to_domain(row: Any, history: list[HistoryEntry]) -> Ticket:
    pending = None
    if row.ext_days is not None:
        pending = domain.ExtensionRequest(
            row.ext_days, row.ext_reason or "", row.ext_by, row.ext_at
        )
    return Ticket(
        id=str(row.id),
        kind=TicketKind(row.kind),
        category=row.category,
        channel=Channel(row.channel),
        customer_phone=row.customer_phone,
        customer_name=row.customer_name,
        tier=CustomerTier(row.tier),
        content=row.content,
        registered_at=row.registered_at,
        deadline=row.deadline,
        status=Status(row.status),
        history=history,
        operator=row.operator,
        branch=row.branch,
        closed_at=row.closed_at,
        satisfaction=Satisfaction(row.satisfaction) if row.satisfaction else None,
        surveyed_at=row.surveyed_at,
        surveyed_by=row.surveyed_by,
        reopen_count=row.reopen_count,
        chase_count=row.chase_count,
        pending_extension=pending,
    )


def _history_entry(row: Any) -> HistoryEntry:
    return HistoryEntry(
        at=row.at,
        actor=row.actor,
        role=Role(row.role),
        action=Action(row.action),
        note=row.note,
        from_status=Status(row.from_status) if row.from_status else None,
        to_status=Status(row.to_status) if row.to_status else None,
        code=NoteCode(row.code),
        params=row.params or {},
    )


def _history_values(
    ticket_id: int,
    entries: Sequence[HistoryEntry],
    *,
    since: datetime | None,
    deadline: datetime,
    after: Ticket,
) -> list[dict[str, Any]]:
    """History rows for ``entries``, each with what the report figures judge it by: the
    deadline in force when it was taken, since when the ticket had been in the state it
    found (``since``: the ticket's ``state_since`` before the first entry; None for a new
    ticket) and a survey's outcome. Returns the rows; the ticket's new ``state_since`` is
    :func:`_state_since_after`."""
    rows = []
    for e in entries:
        if e.action is Action.REGISTER:
            since = e.at
        rows.append(
            {
                "ticket_id": ticket_id,
                "at": e.at,
                "actor": e.actor,
                "role": e.role.value,
                "action": e.action.value,
                "note": e.note,
                "from_status": e.from_status.value if e.from_status else None,
                "to_status": e.to_status.value if e.to_status else None,
                "code": e.code.value,
                "params": e.params or None,
                "deadline": deadline,
                "state_since": since,
                "outcome": (
                    after.satisfaction.value
                    if e.action is Action.SURVEY and after.satisfaction is not None
                    else None
                ),
            }
        )
        if _starts_state(e):
            since = e.at
        if e.action is Action.APPROVE_EXTENSION:
            deadline = after.deadline
    return rows


def _starts_state(e: HistoryEntry) -> bool:
    """Whether after ``e`` the ticket is open or closed anew, or under another deadline:
    registration, a closure, a reopening survey, an approved extension."""
    if e.action in (Action.REGISTER, Action.APPROVE_EXTENSION):
        return True
    was_open = e.from_status in domain.OPEN_STATUSES
    return e.to_status is not None and was_open != (e.to_status in domain.OPEN_STATUSES)


def _state_since_after(since: datetime | None, entries: Sequence[HistoryEntry]) -> datetime | None:
    for e in entries:
        if _starts_state(e):
            since = e.at
    return since


def _state_values(t: Ticket) -> dict[str, Any]:
    """The columns an action may change (the rest are fixed at registration)."""
    ext = t.pending_extension
    return {
        "status": t.status.value,
        "deadline": t.deadline,
        "operator": t.operator,
        "branch": t.branch,
        "closed_at": t.closed_at,
        "satisfaction": t.satisfaction.value if t.satisfaction else None,
        "surveyed_at": t.surveyed_at,
        "surveyed_by": t.surveyed_by,
        "reopen_count": t.reopen_count,
        "chase_count": t.chase_count,
        "ext_days": ext.days if ext else None,
        "ext_reason": ext.reason if ext else None,
        "ext_by": ext.requested_by if ext else None,
        "ext_at": ext.requested_at if ext else None,
    }


_SELECT_TICKET = select(_T).where(_T.c.id == bindparam("id"))
_SELECT_HISTORY = select(_H).where(_H.c.ticket_id == bindparam("id")).order_by(_H.c.id)
# The rules only look at the last step (time order); loading one row keeps busy operators'
# actions cheap however long a ticket's history grows.
_SELECT_LAST_STEP = (
    select(_H).where(_H.c.ticket_id == bindparam("id")).order_by(_H.c.id.desc()).limit(1)
)


def load_ticket(conn: Connection, ticket_id: int, *, full_history: bool) -> tuple[Any, Ticket]:
    """The row and the domain ticket, with its whole history or only its last step."""
    row = load_row(conn, ticket_id)
    query = _SELECT_HISTORY if full_history else _SELECT_LAST_STEP
    history = [_history_entry(h) for h in conn.execute(query, {"id": ticket_id})]
    return row, _to_domain(row, history)


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


# Statements built once with bind parameters: building them per call (values inlined)
# cost more than the database work itself on the register path.
_REPEAT = select(
    exists().where(
        and_(
            _T.c.customer_phone == bindparam("phone"),
            _T.c.category == bindparam("category"),
            _T.c.kind == TicketKind.COMPLAINT.value,
            _T.c.registered_at >= bindparam("since", type_=UtcDateTime),
            _T.c.registered_at < bindparam("until", type_=UtcDateTime),
        )
    )
)
_INSERT_TICKET = insert(_T).returning(_T.c.id)
# Multi-row: SQLAlchemy's "insertmanyvalues" sends one INSERT … RETURNING for the batch and
# hands the ids back in the order of the rows.
_INSERT_TICKETS = insert(_T).returning(_T.c.id, sort_by_parameter_order=True)
_INSERT_HISTORY = insert(_H)
_STATE_COLUMNS = (
    "status",
    "deadline",
    "operator",
    "branch",
    "closed_at",
    "closed_by",
    "satisfaction",
    "surveyed_at",
    "surveyed_by",
    "reopen_count",
    "chase_count",
    "ext_days",
    "ext_reason",
    "ext_by",
    "ext_at",
    "row_version",
    "state_since",
)
_UPDATE_STATE = (
    update(_T)
    .where(_T.c.id == bindparam("_id"), _T.c.row_version == bindparam("_version"))
    .values({c: bindparam(c, type_=_T.c[c].type) for c in _STATE_COLUMNS})
)


def _validated(ctx: CityContext, new: NewTicket) -> dict[str, Any]:
    kind = _enum(TicketKind, new.kind, "kind")
    channel = _enum(Channel, new.channel, "channel")
    tier = _enum(CustomerTier, new.tier, "tier")
    phone = _text(new.customer_phone, "customer_phone", required=True, limit=32).strip()
    if not _PHONE.match(phone):
        raise CityError(f"customer_phone {phone!r} is not a phone number")
    if new.category not in ctx.categories:
        raise CityError(f"category {new.category!r} is not in this city's category tree")
    return {
        "kind": kind,
        "channel": channel,
        "tier": tier,
        "phone": phone,
        "name": _text(new.customer_name, "customer_name", limit=200).strip(),
        "content": _text(new.content, "content", required=True, limit=MAX_CONTENT),
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
        repeats = _repeats(uow.conn, ctx, prepared)
        rows = []
        for ticket, repeat in zip(prepared, repeats, strict=True):
            values = _state_values(ticket)
            values.update(
                kind=ticket.kind.value,
                category=ticket.category,
                channel=ticket.channel.value,
                customer_phone=ticket.customer_phone,
                customer_name=ticket.customer_name,
                tier=ticket.tier.value,
                content=ticket.content,
                registered_at=ticket.registered_at,
                registered_by=actor.id,
                is_repeat=repeat,
                closed_by=actor.id if ticket.closed_at is not None else None,
                compensation_fen=0,
                row_version=1,
                state_since=_state_since_after(None, ticket.history),
            )
            rows.append(values)
        # One operator form is the common call: a plain INSERT … RETURNING and the EXISTS
        # repeat check (in _repeats) keep it clearly cheaper than the batch statements
        # (benchmarks.city_register, mode form, dropped by about a quarter without them).
        if len(rows) == 1:
            ids = [uow.conn.execute(_INSERT_TICKET, rows[0]).scalar_one()]
        else:
            ids = list(uow.conn.execute(_INSERT_TICKETS, rows).scalars())
        history = [
            entry
            for new_id, ticket in zip(ids, prepared, strict=True)
            for entry in _history_values(
                new_id, ticket.history, since=None, deadline=ticket.deadline, after=ticket
            )
        ]
        uow.conn.execute(_INSERT_HISTORY, history)
        uow.commit()
    return [_with_id(t, i) for t, i in zip(prepared, ids, strict=True)]


def _repeats(conn: Connection, ctx: CityContext, batch: Sequence[Ticket]) -> list[bool]:
    """For each ticket: is it a repeat complaint (same phone and category, registered in the
    window before it), against the store and the earlier tickets of the batch?"""
    complaints = [t for t in batch if t.kind is TicketKind.COMPLAINT]
    if not complaints:
        return [False] * len(batch)
    window = timedelta(days=ctx.repeat_window_days)
    if len(complaints) == 1:
        t = complaints[0]
        params = {
            "phone": t.customer_phone,
            "category": t.category,
            "since": t.registered_at - window,
            "until": t.registered_at,
        }
        known = bool(conn.execute(_REPEAT, params).scalar())
        return [known if x is t else False for x in batch]
    earliest = min(t.registered_at for t in complaints) - window
    latest = max(t.registered_at for t in complaints)
    seen: dict[tuple[str, str], list[datetime]] = {}
    for phone, category, at in conn.execute(
        select(_T.c.customer_phone, _T.c.category, _T.c.registered_at).where(
            _T.c.kind == TicketKind.COMPLAINT.value,
            _T.c.customer_phone.in_(sorted({t.customer_phone for t in complaints})),
            _T.c.registered_at >= earliest,
            _T.c.registered_at < latest,
        )
    ):
        seen.setdefault((phone, category), []).append(at)
    for t in complaints:
        seen.setdefault((t.customer_phone, t.category), []).append(t.registered_at)
    out = []
    for t in batch:
        if t.kind is not TicketKind.COMPLAINT:
            out.append(False)
            continue
        since = t.registered_at - window
        earlier = seen[(t.customer_phone, t.category)]
        out.append(any(since <= at < t.registered_at for at in earlier))
    return out


def _prepare(ctx: CityContext, actor: Actor, intake: Intake) -> Ticket:
    new, then, branch, note = intake.new, intake.then, intake.branch, intake.note
    v = _validated(ctx, new)
    moment = intake.at or ctx.now()
    if then is not None and then not in _FOLLOW_UPS:
        raise CityError(
            f"then={then.value}: register can be followed by "
            + ", ".join(sorted(a.value for a in _FOLLOW_UPS))
        )
    if then is Action.DISPATCH and not branch.strip():
        raise CityError("dispatch needs the branch to send the ticket to")
    _text(note, "note")
    try:
        ticket = domain.register(
            ticket_id="0",
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
        raise CityError(str(exc)) from None
    if then is not None:
        ticket = _apply(ticket, actor, then, moment, {"branch": branch, "note": note}, ctx)
    return ticket


def _with_id(ticket: Ticket, ticket_id: int) -> Ticket:
    return dataclasses.replace(ticket, id=str(ticket_id))


# --- actions ---------------------------------------------------------------------------------

_Params = dict[str, Any]


def _int_param(params: _Params, name: str, *, low: int, high: int) -> int:
    try:
        value = int(params.get(name, 0))
    except (TypeError, ValueError):
        raise CityError(f"{name} must be a whole number, got {params.get(name)!r}") from None
    if not low <= value <= high:
        raise CityError(f"{name} must be {low} to {high}, got {value}")
    return value


def _apply(
    ticket: Ticket,
    actor: Actor,
    action: Action,
    at: datetime,
    params: _Params,
    ctx: CityContext,
) -> Ticket:
    note = _text(str(params.get("note") or ""), "note")
    common: dict[str, Any] = {"actor": actor.id, "role": actor.role, "at": at}
    if action is Action.DISPATCH:
        branch = _text(str(params.get("branch") or ""), "branch", required=True, limit=200)
        return domain.dispatch(ticket, branch=branch, note=note, **common)
    if action is Action.SURVEY:
        outcome = _enum(Satisfaction, params.get("outcome"), "outcome")
        return domain.survey(
            ticket, outcome, reopen=bool(params.get("reopen")), note=note, **common
        )
    if action is Action.REQUEST_EXTENSION:
        reason = _text(str(params.get("reason") or note), "reason", required=True)
        return domain.request_extension(
            ticket,
            days=_int_param(params, "days", low=1, high=MAX_EXTENSION_DAYS),
            reason=reason,
            **common,
        )
    if action is Action.APPROVE_EXTENSION:
        return domain.approve_extension(ticket, calendar=ctx.calendar, note=note, **common)
    if action in (Action.ESCALATE_PROVINCE, Action.ESCALATE_MANAGER) and not note.strip():
        raise CityError(f"{action.value} needs the reason (note)")
    simple: dict[Action, Callable[..., Ticket]] = {
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
    if action not in simple:  # REGISTER
        raise CityError(f"{action.value} is not an action on an existing ticket")
    return simple[action](ticket, note=note, **common)


def act(
    ctx: CityContext,
    actor: Actor,
    ticket_id: int | str,
    action: Action | str,
    *,
    at: datetime | None = None,
    **params: Any,
) -> Ticket:
    """Perform ``action`` on a ticket (params: ``note``; ``branch`` for dispatch; ``outcome``
    and ``reopen`` for survey; ``days`` and ``reason`` for an extension request).

    An escalation to the province also queues the Escalation (with the ticket's full
    history) for the hub, in the same transaction.
    """
    number = parse_ticket_id(ticket_id)
    step = _enum(Action, action, "action")
    moment = at or ctx.now()
    with UnitOfWork(ctx.engine) as uow:
        full = step is Action.ESCALATE_PROVINCE
        row, before = load_ticket(uow.conn, number, full_history=full)
        after = _apply(before, actor, step, moment, params, ctx)
        save_ticket(uow.conn, row, before, after, actor, step)
        if step is Action.ESCALATE_PROVINCE:
            _queue_escalation(uow.conn, after, row, actor, str(params.get("note") or ""), moment)
        uow.commit()
    return after


def save_ticket(
    conn: Connection, row: Any, before: Ticket, after: Ticket, actor: Actor, step: Action
) -> None:
    """Write ``after`` over ``row`` (refused with Conflict if the row changed since it was
    read) and append the history entries ``before`` did not have."""
    values = _state_values(after)
    if after.closed_at is None:
        values["closed_by"] = None
    elif before.closed_at is None:
        values["closed_by"] = actor.id
    else:
        values["closed_by"] = row.closed_by
    new_entries = after.history[len(before.history) :]
    values.update(
        row_version=row.row_version + 1,
        state_since=_state_since_after(row.state_since, new_entries),
        _id=row.id,
        _version=row.row_version,
    )
    done = conn.execute(_UPDATE_STATE, values)
    if done.rowcount != 1:
        raise Conflict(f"ticket {row.id} was changed by someone else meanwhile; reload it")
    history = _history_values(
        row.id, new_entries, since=row.state_since, deadline=before.deadline, after=after
    )
    conn.execute(_INSERT_HISTORY, history)


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
        ticket_id=ticket.id,
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
    conn.execute(update(_T).where(_T.c.id == row.id).values(escalated_at=at))
    conn.execute(
        insert(Escalation).values(
            ticket_id=row.id, escalated_at=at, escalated_by=actor.id, reason=reason, outbox_seq=seq
        )
    )


def record_compensation(
    ctx: CityContext,
    actor: Actor,
    ticket_id: int | str,
    *,
    fen: int,
    note: str,
    at: datetime | None = None,
) -> None:
    """The manager hotline records compensation paid for an overtime complaint (in fen)."""
    domain.check_may(actor.role, Action.COMPENSATE)
    if not isinstance(fen, int) or not 0 <= fen <= MAX_COMPENSATION_FEN:
        raise CityError(
            f"compensation {fen!r}: give a whole number of fen, 0 to {MAX_COMPENSATION_FEN}"
        )
    _text(note, "note", required=True)
    number = parse_ticket_id(ticket_id)
    moment = at or ctx.now()
    with UnitOfWork(ctx.engine) as uow:
        record_step(
            uow.conn,
            load_row(uow.conn, number),
            actor,
            Action.COMPENSATE,
            note,
            moment,
            code=NoteCode.COMPENSATION,
            params={"fen": fen},
            compensation_fen=fen,
            compensation_note=note,
            compensated_at=moment,
        )
        uow.commit()


def load_row(conn: Connection, ticket_id: int) -> Any:
    """The ticket's row, or NotFound."""
    row = conn.execute(_SELECT_TICKET, {"id": ticket_id}).first()
    if row is None:
        raise NotFound(f"ticket {ticket_id} does not exist in this city's store")
    return row


def record_step(
    conn: Connection,
    row: Any,
    actor: Actor,
    action: Action,
    note: str,
    at: datetime,
    *,
    code: NoteCode = NoteCode.NOTE,
    params: NoteParams | None = None,
    **changes: Any,
) -> None:
    """A step that is not a lifecycle transition (compensation, classification): columns
    change, the status does not, and the history gets its row — in the caller's transaction."""
    conn.execute(
        update(_T).where(_T.c.id == row.id).values(**changes, row_version=_T.c.row_version + 1)
    )
    conn.execute(
        _INSERT_HISTORY,
        [
            {
                "ticket_id": row.id,
                "at": at,
                "actor": actor.id,
                "role": actor.role.value,
                "action": action.value,
                "note": note,
                "from_status": row.status,
                "to_status": row.status,
                "code": code.value,
                "params": params or None,
                "deadline": row.deadline,
                "state_since": row.state_since,
                "outcome": None,
            }
        ],
    )


# --- reading ---------------------------------------------------------------------------------


def get(ctx: CityContext, ticket_id: int | str) -> tuple[Ticket, dict[str, Any]]:
    """The ticket with its whole history, and the stored extras (repeat flag, compensation,
    who registered and closed it, suggestion classification)."""
    number = parse_ticket_id(ticket_id)
    with ctx.engine.connect() as conn:
        row, ticket = load_ticket(conn, number, full_history=True)
    extras = {
        "is_repeat": row.is_repeat,
        "registered_by": row.registered_by,
        "closed_by": row.closed_by,
        "compensation_fen": row.compensation_fen,
        "compensation_note": row.compensation_note,
        "suggestion_class": row.suggestion_class,
        "escalated_at": row.escalated_at,
        "overtime": rules.is_overtime(ticket, ctx.now()),
    }
    return ticket, extras


def history(ctx: CityContext, ticket_id: int | str) -> list[HistoryEntry]:
    """Every step of a ticket including non-lifecycle ones (compensation), in order."""
    number = parse_ticket_id(ticket_id)
    with ctx.engine.connect() as conn:
        rows = conn.execute(_SELECT_HISTORY, {"id": number}).all()
    return [_history_entry(r) for r in rows]


def search(
    ctx: CityContext,
    *,
    status: str | None = None,
    kind: str | None = None,
    phone: str | None = None,
    operator: str | None = None,
    open_only: bool = False,
    overtime_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[Any]:
    """Ticket rows for lists and queues, newest first."""
    query = select(_T)
    if status:
        query = query.where(_T.c.status == _enum(Status, status, "status").value)
    if kind:
        query = query.where(_T.c.kind == _enum(TicketKind, kind, "kind").value)
    if phone:
        query = query.where(_T.c.customer_phone == phone.strip())
    if operator:
        query = query.where(_T.c.operator == operator)
    if open_only or overtime_only:
        query = query.where(_T.c.status.in_([s.value for s in domain.OPEN_STATUSES]))
    if overtime_only:
        query = query.where(_T.c.deadline < ctx.now())
    limit = max(1, min(int(limit), 500))
    offset = max(0, min(int(offset), 10_000_000))
    query = query.order_by(_T.c.id.desc()).limit(limit).offset(offset)
    with ctx.engine.connect() as conn:
        return list(conn.execute(query))


def count(ctx: CityContext) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(_T)).scalar_one())
