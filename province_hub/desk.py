"""The province's desks' use cases about one city's ticket: the general-manager hotline's
escalation desk (queue, take, notes, contact log, resolve) and ticket traces.

Every function that changes something runs in one transaction with its audit row
(:func:`province_hub.audit.record`); the web and ``fedsync hub resolve|trace`` call the same
functions. A refusal raises :class:`DeskError` naming the field, before anything is stored.

Customer contact is read from the escalation record's body only for the one case shown,
and masked (:mod:`sync.masking`) unless the caller may see personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, insert, select, tuple_, update

from province_hub import audit, staff
from province_hub.audit import Action
from province_hub.escalations import ESCALATION_SUBJECT
from province_hub.services import send_notice_in
from province_hub.staff import HubRole
from province_hub.store import DeskCase, DeskEntry, Notice, NoticeDelivery, Record
from sync.calendar import WorkCalendar
from sync.db import UnitOfWork
from sync.masking import mask_name, mask_phone
from sync.pb.fedsync.v1 import federation_pb2 as pb

#: How the province settled an escalated complaint.
OUTCOMES: Final = ("upheld", "partly_upheld", "not_upheld", "withdrawn")
#: How the desk reached the customer (contact log).
CONTACT_CHANNELS: Final = ("phone", "sms", "visit", "other")
SORTS: Final = ("age", "registered", "city", "category")
STATES: Final = ("open", "resolved", "all")
#: Longest note, contact line or resolution (the city keeps 4000 characters of a step).
MAX_TEXT: Final = 4000


class DeskError(ValueError):
    """A refused desk action; ``field`` names the input that is wrong."""

    def __init__(self, message: str, *, field: str = "") -> None:
        # The message starts with the field's name, as the web's other 422s do.
        if field and not message.startswith(field):
            message = f"{field}: {message}"
        super().__init__(message)
        self.field = field


class UnknownEscalation(DeskError):
    """A resolution names an escalation this hub does not hold (most likely a typo)."""


class CaseNotFound(LookupError):
    """No desk case with that city and seq."""


class CaseResolved(DeskError):
    """The case is resolved already: it cannot be taken or resolved again."""


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive UTC.
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _target(city_code: str, seq: int) -> str:
    return f"escalation:{city_code}/{seq}"


def _text(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise DeskError(f"{field} is required", field=field)
    if len(value) > MAX_TEXT:
        raise DeskError(f"{field} is {len(value)} characters; at most {MAX_TEXT}", field=field)
    return value


def _to_one_city(city_code: str, ticket_id: str, roster_codes: Sequence[str]) -> None:
    if city_code not in roster_codes:
        raise DeskError(f"city {city_code!r} is not a city of the roster", field="city_code")
    if not ticket_id.strip():
        raise DeskError("name the city's ticket", field="ticket_id")


# --- resolving (web and CLI) ----------------------------------------------------------------


def escalation_seq(engine: Engine, city_code: str, ticket_id: str) -> int | None:
    """The seq of the latest escalation ``city_code`` sent for ``ticket_id``, if held
    (follow-ups are not escalations)."""
    with engine.connect() as conn:
        return _escalation_seq(conn, city_code, ticket_id)


def _escalation_seq(conn: Connection, city_code: str, ticket_id: str) -> int | None:
    seq = conn.execute(
        select(func.max(Record.seq)).where(
            Record.city_code == city_code, Record.subject == f"{ESCALATION_SUBJECT}{ticket_id}"
        )
    ).scalar()
    return int(seq) if seq is not None else None


def resolve_escalation(
    engine: Engine,
    *,
    city_code: str,
    ticket_id: str,
    resolution: str,
    resolved_by: str,
    roster_codes: Sequence[str],
    force: bool = False,
    outcome: str | None = None,
    role: str = "",
    address: str = audit.CLI_ADDRESS,
    now: datetime | None = None,
    case_seq: int | None = None,
) -> pb.Notice:
    """Send ``city_code`` the province's resolution of a complaint it escalated, close the
    ticket's desk case with ``outcome``, and audit it, in one transaction.

    Refused (:class:`UnknownEscalation`) when the city sent this hub no escalation of that
    ticket, unless ``force``: the city applies the resolution to whatever ticket it names.
    Refused (:class:`CaseResolved`) when the ticket's latest case is resolved already,
    unless ``force`` (a second word to the city, from the command line). ``case_seq``
    names the desk case answered (the desk); by default the ticket's latest escalation.
    """
    _to_one_city(city_code, ticket_id, roster_codes)
    if not resolution.strip():
        raise DeskError("say how the province resolved the complaint", field="resolution")
    resolution = _text(resolution, "resolution")
    if outcome is not None and outcome not in OUTCOMES:
        raise DeskError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}", field="outcome")
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        conn = uow.conn
        seq = case_seq or _escalation_seq(conn, city_code, ticket_id)
        if seq is None and not force:
            raise UnknownEscalation(
                f"city {city_code} has sent no escalation of ticket {ticket_id} to this hub",
                field="ticket_id",
            )
        case = None
        if seq is not None:
            case = conn.execute(
                select(DeskCase.resolved_at)
                .where(DeskCase.city_code == city_code, DeskCase.seq == seq)
                .with_for_update()
            ).first()
        if case is not None and case.resolved_at is not None and not force:
            raise CaseResolved(
                f"the escalation of ticket {ticket_id} is resolved already", field="ticket_id"
            )
        notice = pb.Notice(
            kind=pb.ESCALATION_RESOLUTION,
            priority=pb.HIGH,
            title=f"Escalation of ticket {ticket_id} resolved",
            body=resolution,
            sender=resolved_by,
            targets=[city_code],
            escalation_resolution=pb.EscalationResolution(
                ticket_id=ticket_id,
                escalation_seq=seq or 0,
                resolution=resolution,
                resolved_by=resolved_by,
            ),
        )
        send_notice_in(conn, notice=notice, roster_codes=roster_codes, now=moment)
        if case is not None:
            conn.execute(
                update(DeskCase)
                .where(DeskCase.city_code == city_code, DeskCase.seq == seq)
                .values(
                    resolved_at=moment,
                    resolved_by=resolved_by[:64],
                    outcome=outcome,
                    resolution=resolution,
                    resolution_notice_seq=notice.seq,
                )
            )
        audit.record(
            conn,
            actor=resolved_by,
            role=role,
            action=Action.ESCALATION_RESOLVED,
            target=_target(city_code, seq) if seq else f"ticket:{city_code}/{ticket_id}",
            detail=f"notice {notice.seq}; outcome {outcome or '-'}",
            address=address,
            at=moment,
        )
        uow.commit()
    return notice


def resolve_case(
    engine: Engine,
    *,
    city_code: str,
    seq: int,
    outcome: str,
    resolution: str,
    resolved_by: str,
    roster_codes: Sequence[str],
    role: str,
    address: str,
) -> pb.Notice:
    """Resolve one desk case (the web's way in to :func:`resolve_escalation`)."""
    with engine.connect() as conn:
        ticket_id = conn.execute(
            select(DeskCase.ticket_id).where(DeskCase.city_code == city_code, DeskCase.seq == seq)
        ).scalar()
    if ticket_id is None:
        raise CaseNotFound(f"no escalation {city_code}/{seq} on the desk")
    return resolve_escalation(
        engine,
        city_code=city_code,
        ticket_id=ticket_id,
        resolution=resolution,
        resolved_by=resolved_by,
        roster_codes=roster_codes,
        outcome=outcome,
        role=role,
        address=address,
        case_seq=seq,
    )


# --- working a case (web) -------------------------------------------------------------------


def _open_case(conn: Connection, city_code: str, seq: int) -> Any:
    row = conn.execute(
        select(DeskCase.ticket_id, DeskCase.resolved_at)
        .where(DeskCase.city_code == city_code, DeskCase.seq == seq)
        .with_for_update()
    ).first()
    if row is None:
        raise CaseNotFound(f"no escalation {city_code}/{seq} on the desk")
    return row


def take(
    engine: Engine,
    *,
    city_code: str,
    seq: int,
    assignee: str,
    actor: str,
    role: str,
    address: str,
    now: datetime | None = None,
) -> None:
    """Assign an open case to ``assignee`` (oneself or a colleague of the GM hotline)."""
    member = staff.get_staff(engine, assignee) if assignee else None
    if member is None or not member.active or member.role is not HubRole.GM_HOTLINE:
        raise DeskError(
            f"assignee {assignee!r} is not an active general-manager hotline account",
            field="assignee",
        )
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        case = _open_case(uow.conn, city_code, seq)
        if case.resolved_at is not None:
            raise CaseResolved(f"escalation {city_code}/{seq} is resolved already", field="seq")
        uow.conn.execute(
            update(DeskCase)
            .where(DeskCase.city_code == city_code, DeskCase.seq == seq)
            .values(assignee=member.id, taken_at=moment)
        )
        audit.record(
            uow.conn,
            actor=actor,
            role=role,
            action=Action.ESCALATION_TAKEN,
            target=_target(city_code, seq),
            detail=f"assigned to {member.id}",
            address=address,
            at=moment,
        )
        uow.commit()


def add_entry(
    engine: Engine,
    *,
    city_code: str,
    seq: int,
    kind: str,
    text: str,
    actor: str,
    role: str,
    address: str,
    channel: str = "",
    now: datetime | None = None,
) -> None:
    """An internal note (``kind="note"``) or a contact-log line (``"contact"``, with the
    ``channel`` used) on a case, open or resolved."""
    if kind not in ("note", "contact"):
        raise DeskError(f"kind {kind!r}: note or contact", field="kind")
    if kind == "contact" and channel not in CONTACT_CHANNELS:
        raise DeskError(
            f"channel {channel!r} is not one of {', '.join(CONTACT_CHANNELS)}", field="channel"
        )
    body = _text(text, "text")
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        _open_case(uow.conn, city_code, seq)
        uow.conn.execute(
            insert(DeskEntry).values(
                city_code=city_code,
                seq=seq,
                kind=kind,
                at=moment,
                author=actor,
                channel=channel if kind == "contact" else "",
                text=body,
            )
        )
        audit.record(
            uow.conn,
            actor=actor,
            role=role,
            action=Action.ESCALATION_NOTED if kind == "note" else Action.ESCALATION_CONTACTED,
            target=_target(city_code, seq),
            # What was written may name the customer: only its size goes to the log.
            detail=f"{kind}, {len(body)} characters" + (f", by {channel}" if channel else ""),
            address=address,
            at=moment,
        )
        uow.commit()


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ages:
    """How the desk judges age: working days on this calendar, overdue past the limit."""

    calendar: WorkCalendar
    now: datetime
    limit_days: int


def _row_dict(row: Any, ages: Ages) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: _aware(v) if isinstance(v, datetime) else v for k, v in row._mapping.items()
    }
    escalated, registered = data["escalated_at"], data["registered_at"]
    end = data["resolved_at"] or ages.now
    data["age_escalated"] = ages.calendar.workdays_between(escalated, end)
    data["age_registered"] = ages.calendar.workdays_between(registered, end)
    data["overdue"] = data["resolved_at"] is None and data["age_escalated"] > ages.limit_days
    data["state"] = "resolved" if data["resolved_at"] else ("taken" if data["assignee"] else "new")
    return data


def _case_query() -> Any:
    return select(
        *DeskCase.__table__.columns,
        NoticeDelivery.delivered_at.label("resolution_delivered_at"),
        NoticeDelivery.read_at.label("resolution_read_at"),
    ).outerjoin(
        NoticeDelivery,
        (NoticeDelivery.notice_seq == DeskCase.resolution_notice_seq)
        & (NoticeDelivery.city_code == DeskCase.city_code),
    )


def queue(
    engine: Engine,
    ages: Ages,
    *,
    city: str | None = None,
    category: str | None = None,
    state: str = "open",
    sort: str = "age",
    descending: bool = True,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """The desk's cases, filtered and sorted (``age``: working days since escalated)."""
    if state not in STATES:
        raise DeskError(f"state {state!r} is not one of {', '.join(STATES)}", field="state")
    if sort not in SORTS:
        raise DeskError(f"sort {sort!r} is not one of {', '.join(SORTS)}", field="sort")
    query = _case_query()
    if city:
        query = query.where(DeskCase.city_code == city)
    if category:
        query = query.where(DeskCase.category.startswith(category, autoescape=True))
    if state == "open":
        query = query.where(DeskCase.resolved_at.is_(None))
    elif state == "resolved":
        query = query.where(DeskCase.resolved_at.is_not(None))
    query = query.order_by(DeskCase.escalated_at, DeskCase.city_code, DeskCase.seq).limit(limit)
    with engine.connect() as conn:
        rows = [_row_dict(r, ages) for r in conn.execute(query)]
    key = {
        "age": lambda r: (r["age_escalated"], r["age_registered"]),
        "registered": lambda r: (r["age_registered"], r["age_escalated"]),
        "city": lambda r: (r["city_code"], r["age_escalated"]),
        "category": lambda r: (r["category"], r["age_escalated"]),
    }[sort]
    rows.sort(key=key, reverse=descending)
    return rows


def _when(ts: Any) -> datetime | None:
    return ts.ToDatetime(UTC) if ts.ByteSize() else None


def _history(entries: Any) -> list[dict[str, Any]]:
    return [
        {"at": _when(h.at), "actor": h.actor, "action": h.action, "note": h.note} for h in entries
    ]


def case(engine: Engine, ages: Ages, *, city_code: str, seq: int, personal: bool) -> dict[str, Any]:
    """One case with the escalation as the city sent it (history, reason, content), its
    notes and contact log, the resolution's delivery and the city's follow-up. Customer
    name and phone masked unless ``personal``."""
    with engine.connect() as conn:
        row = conn.execute(
            _case_query().where(DeskCase.city_code == city_code, DeskCase.seq == seq)
        ).first()
        if row is None:
            raise CaseNotFound(f"no escalation {city_code}/{seq} on the desk")
        body = conn.execute(
            select(Record.body).where(Record.city_code == city_code, Record.seq == seq)
        ).scalar_one()
        entries = conn.execute(
            select(
                DeskEntry.kind, DeskEntry.at, DeskEntry.author, DeskEntry.channel, DeskEntry.text
            )
            .where(DeskEntry.city_code == city_code, DeskEntry.seq == seq)
            .order_by(DeskEntry.id)
        ).all()
        follow_up_history: list[dict[str, Any]] = []
        data = _row_dict(row, ages)
        if data["follow_up_seq"] is not None:
            raw = conn.execute(
                select(Record.body).where(
                    Record.city_code == city_code, Record.seq == data["follow_up_seq"]
                )
            ).scalar()
            if raw is not None:
                follow_up_history = _history(pb.Escalation.FromString(raw).history)
    escalation = pb.Escalation.FromString(body)
    name, phone = escalation.customer_name, escalation.customer_phone
    data.update(
        reason=escalation.reason,
        content=escalation.content,
        customer_name=name if personal else mask_name(name),
        customer_phone=phone if personal else mask_phone(phone),
        history=_history(escalation.history),
        # The ticket's history as the city sent it last: with the close and the callback.
        follow_up_history=follow_up_history,
        entries=[
            {
                "kind": e.kind,
                "at": _aware(e.at),
                "author": e.author,
                "channel": e.channel,
                "text": e.text,
            }
            for e in entries
        ],
    )
    return data


# --- traces ---------------------------------------------------------------------------------


def request_trace(
    engine: Engine,
    *,
    city_code: str,
    ticket_id: str,
    requested_by: str,
    roster_codes: Sequence[str],
    from_gm_hotline: bool = False,
    role: str = "",
    address: str = audit.CLI_ADDRESS,
    now: datetime | None = None,
) -> pb.Notice:
    """Ask ``city_code`` for one ticket's history; the city answers with a TicketTrace, the
    customer's phone masked unless the general-manager hotline asks."""
    _to_one_city(city_code, ticket_id, roster_codes)
    if len(ticket_id) > 64:
        raise DeskError("ticket_id is longer than 64 characters", field="ticket_id")
    notice = pb.Notice(
        kind=pb.TRACE_REQUEST,
        priority=pb.NORMAL,
        title=f"Trace request: ticket {ticket_id}",
        body="Send the ticket's history.",
        sender=requested_by,
        targets=[city_code],
        trace_request=pb.TraceRequest(ticket_id=ticket_id, from_gm_hotline=from_gm_hotline),
    )
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        send_notice_in(uow.conn, notice=notice, roster_codes=roster_codes, now=moment)
        audit.record(
            uow.conn,
            actor=requested_by,
            role=role,
            action=Action.TRACE_REQUESTED,
            target=f"ticket:{city_code}/{ticket_id}",
            detail=f"notice {notice.seq}" + ("; for the GM hotline" if from_gm_hotline else ""),
            address=address,
            at=moment,
        )
        uow.commit()
    return notice


def traces(
    engine: Engine, *, personal: bool, notice_seq: int | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Trace requests, newest first, each with its state (requested → delivered →
    answered) and, once the city's trace arrived, the answer (phone masked unless
    ``personal``). The answers are the city's records, kept like every record."""
    query = (
        select(
            Notice.seq,
            Notice.created_at,
            Notice.sender,
            Notice.payload,
            NoticeDelivery.city_code,
            NoticeDelivery.delivered_at,
        )
        .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
        .where(Notice.kind == pb.NoticeKind.Name(pb.TRACE_REQUEST))
        .order_by(Notice.seq.desc())
        .limit(limit)
    )
    if notice_seq is not None:
        query = query.where(Notice.seq == notice_seq)
    out: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for r in conn.execute(query).all():
            request = pb.Notice.FromString(r.payload).trace_request
            answer = conn.execute(
                select(Record.body, Record.received_at, Record.status)
                .where(
                    Record.city_code == r.city_code,
                    Record.subject == f"ticket_trace/{r.seq}",
                )
                .order_by(Record.seq.desc())
                .limit(1)
            ).first()
            item: dict[str, Any] = {
                "notice_seq": int(r.seq),
                "city_code": r.city_code,
                "ticket_id": request.ticket_id,
                "requested_by": r.sender,
                "requested_at": _aware(r.created_at),
                "from_gm_hotline": request.from_gm_hotline,
                "delivered_at": _aware(r.delivered_at),
                "answered_at": None,
                "state": "delivered" if r.delivered_at else "requested",
                "answer": None,
            }
            if answer is not None and answer.status == "accepted":
                trace = pb.TicketTrace.FromString(answer.body)
                phone = trace.customer_phone
                item.update(
                    state="answered",
                    answered_at=_aware(answer.received_at),
                    answer={
                        "found": trace.found,
                        "status": trace.status,
                        "category": trace.category,
                        "customer_phone": phone if personal else mask_phone(phone),
                        "history": _history(trace.history),
                    },
                )
            out.append(item)
    return out


def contacts(
    engine: Engine, keys: Sequence[tuple[str, int]], *, personal: bool
) -> dict[tuple[str, int], tuple[str, str]]:
    """The customer's (name, phone) of each case, masked unless ``personal`` (for an
    export of the queue)."""
    out: dict[tuple[str, int], tuple[str, str]] = {}
    with engine.connect() as conn:
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            for r in conn.execute(
                select(Record.city_code, Record.seq, Record.body).where(
                    tuple_(Record.city_code, Record.seq).in_(part)
                )
            ):
                e = pb.Escalation.FromString(r.body)
                name, phone = e.customer_name, e.customer_phone
                out[(r.city_code, int(r.seq))] = (
                    (name, phone) if personal else (mask_name(name), mask_phone(phone))
                )
    return out


def record_personal_export(
    engine: Engine, *, actor: str, role: str, address: str, what: str, rows: int
) -> None:
    """An export that carries customers' personal data leaves a trace (how many rows, never
    which customers)."""
    audit.record_alone(
        engine,
        actor=actor,
        role=role,
        action=Action.PERSONAL_DATA_EXPORTED,
        target=what,
        detail=f"{rows} rows with customer name and phone",
        address=address,
    )
