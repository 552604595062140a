"""The ticket repository: tickets and their history in the city's store, typed records in
and out.

Maps rows to domain values (:class:`~city_node.records.Ticket`,
:class:`~city_node.records.HistoryEntry`) and back, with the statements built once with
bind parameters (building them per call cost more than the database work itself on the
register path). Every function works in the
caller's transaction (``conn``); the use cases (:mod:`city_node.tickets`) own the unit
of work. A write guarded by the ticket's ``row_version`` refuses a stale one with
:class:`~city_node.errors.Conflict`; a missing ticket is :class:`~city_node.errors.NotFound`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, exists, insert, select, update

from city_node import domain
from city_node.context import Actor, Conflict, NotFound
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    HistoryEntry,
    NoteCode,
    NoteParams,
    Role,
    Satisfaction,
    Status,
    Ticket,
    TicketKind,
)
from city_node.store import HistoryRow, TicketRow
from sync.db import UtcDateTime

TICKETS: Table = TicketRow.__table__  # type: ignore[assignment]
HISTORY: Table = HistoryRow.__table__  # type: ignore[assignment]

# --- row <-> domain --------------------------------------------------------------------------


def _to_domain(row: Any, history: list[HistoryEntry]) -> Ticket:
    pending = None
    if row.ext_days is not None:
        pending = domain.ExtensionRequest(
            row.ext_days, row.ext_reason or "", row.ext_by, row.ext_at
        )
    return Ticket(
        id=row.id,
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


def history_entry(row: Any) -> HistoryEntry:
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


_SELECT_TICKET = select(TICKETS).where(TICKETS.c.id == bindparam("id"))
SELECT_HISTORY = (
    select(HISTORY).where(HISTORY.c.ticket_id == bindparam("id")).order_by(HISTORY.c.id)
)
# The rules only look at the last step (time order); loading one row keeps busy operators'
# actions cheap however long a ticket's history grows.
_SELECT_LAST_STEP = (
    select(HISTORY)
    .where(HISTORY.c.ticket_id == bindparam("id"))
    .order_by(HISTORY.c.id.desc())
    .limit(1)
)


def load_ticket(conn: Connection, ticket_id: int, *, full_history: bool) -> tuple[Any, Ticket]:
    """The row and the domain ticket, with its whole history or only its last step."""
    row = load_row(conn, ticket_id)
    query = SELECT_HISTORY if full_history else _SELECT_LAST_STEP
    history = [history_entry(h) for h in conn.execute(query, {"id": ticket_id})]
    return row, _to_domain(row, history)


# Statements built once with bind parameters: building them per call (values inlined)
# cost more than the database work itself on the register path.
_REPEAT = select(
    exists().where(
        and_(
            TICKETS.c.customer_phone == bindparam("phone"),
            TICKETS.c.category == bindparam("category"),
            TICKETS.c.kind == TicketKind.COMPLAINT.value,
            TICKETS.c.registered_at >= bindparam("since", type_=UtcDateTime),
            TICKETS.c.registered_at < bindparam("until", type_=UtcDateTime),
        )
    )
)
_INSERT_TICKET = insert(TICKETS).returning(TICKETS.c.id)
# Multi-row: SQLAlchemy's "insertmanyvalues" sends one INSERT … RETURNING for the batch and
# hands the ids back in the order of the rows.
_INSERT_TICKETS = insert(TICKETS).returning(TICKETS.c.id, sort_by_parameter_order=True)
_INSERT_HISTORY = insert(HISTORY)
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
    update(TICKETS)
    .where(TICKETS.c.id == bindparam("_id"), TICKETS.c.row_version == bindparam("_version"))
    .values({c: bindparam(c, type_=TICKETS.c[c].type) for c in _STATE_COLUMNS})
)


def insert_tickets(
    conn: Connection, actor: Actor, prepared: Sequence[Ticket], repeats: Sequence[bool]
) -> list[int]:
    """Store newly registered tickets with their history (in the caller's transaction);
    returns their ids, in order."""
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
    # repeat check (in find_repeats) keep it clearly cheaper than the batch statements
    # (benchmarks.city_register, mode form, dropped by about a quarter without them).
    if len(rows) == 1:
        ids = [conn.execute(_INSERT_TICKET, rows[0]).scalar_one()]
    else:
        ids = list(conn.execute(_INSERT_TICKETS, rows).scalars())
    history = [
        entry
        for new_id, ticket in zip(ids, prepared, strict=True)
        for entry in _history_values(
            new_id, ticket.history, since=None, deadline=ticket.deadline, after=ticket
        )
    ]
    conn.execute(_INSERT_HISTORY, history)
    return ids


def find_repeats(conn: Connection, window_days: int, batch: Sequence[Ticket]) -> list[bool]:
    """For each ticket: is it a repeat complaint (same phone and category, registered in the
    window before it), against the store and the earlier tickets of the batch?"""
    complaints = [t for t in batch if t.kind is TicketKind.COMPLAINT]
    if not complaints:
        return [False] * len(batch)
    window = timedelta(days=window_days)
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
        select(TICKETS.c.customer_phone, TICKETS.c.category, TICKETS.c.registered_at).where(
            TICKETS.c.kind == TicketKind.COMPLAINT.value,
            TICKETS.c.customer_phone.in_(sorted({t.customer_phone for t in complaints})),
            TICKETS.c.registered_at >= earliest,
            TICKETS.c.registered_at < latest,
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
        raise Conflict("ticket.changed", ticket=row.id)
    history = _history_values(
        row.id, new_entries, since=row.state_since, deadline=before.deadline, after=after
    )
    conn.execute(_INSERT_HISTORY, history)


def load_row(conn: Connection, ticket_id: int) -> Any:
    """The ticket's row, or NotFound."""
    row = conn.execute(_SELECT_TICKET, {"id": ticket_id}).first()
    if row is None:
        raise NotFound("ticket.not_found", ticket=ticket_id)
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
        update(TICKETS)
        .where(TICKETS.c.id == row.id)
        .values(**changes, row_version=TICKETS.c.row_version + 1)
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


@dataclass(frozen=True)
class StoredTicket:
    """A ticket as the store holds it: the domain ticket with its whole history, and what
    only the store keeps about it (who registered and closed it, the repeat flag,
    compensation, a suggestion's class, when it was escalated)."""

    ticket: Ticket
    is_repeat: bool
    registered_by: str
    closed_by: str | None
    compensation_fen: int
    compensation_note: str | None
    suggestion_class: str | None
    escalated_at: datetime | None


def load_stored(conn: Connection, ticket_id: int) -> StoredTicket:
    """The ticket with its whole history and its stored facts, or NotFound."""
    row, ticket = load_ticket(conn, ticket_id, full_history=True)
    return StoredTicket(
        ticket=ticket,
        is_repeat=bool(row.is_repeat),
        registered_by=row.registered_by,
        closed_by=row.closed_by,
        compensation_fen=row.compensation_fen or 0,
        compensation_note=row.compensation_note,
        suggestion_class=row.suggestion_class,
        escalated_at=row.escalated_at,
    )
