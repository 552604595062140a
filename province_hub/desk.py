"""The province's desks' use cases about one city's ticket: the general-manager hotline's
escalation desk (take, notes, contact log, resolve) and ticket trace requests.

Every function that changes something runs in one transaction with its audit row
(:func:`province_hub.audit.record`); the web and ``fedsync hub resolve|trace`` call the same
functions. A refusal raises :class:`DeskError` naming the field, before anything is stored.

What the desks read (the queue, one case, traces) is :mod:`province_hub.desk_views`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, insert, select, update

from province_hub import audit, staff
from province_hub.audit import Action
from province_hub.escalations import ESCALATION_SUBJECT
from province_hub.refusals import HubRefusal
from province_hub.services import send_notice_in
from province_hub.staff import HubRole
from province_hub.store import REPEATED, DeskCase, DeskEntry, Record
from sync.db import UnitOfWork
from sync.limits import blank, refuse_characters
from sync.pb.fedsync.v1 import federation_pb2 as pb

#: How the province settled an escalated complaint.
OUTCOMES: Final = ("upheld", "partly_upheld", "not_upheld", "withdrawn")
#: How the desk reached the customer (contact log).
CONTACT_CHANNELS: Final = ("phone", "sms", "visit", "other")
#: Longest note, contact line or resolution (the city keeps 4000 characters of a step).
MAX_TEXT: Final = 4000


class DeskError(HubRefusal, ValueError):
    """A refused desk action; ``field`` names the input that is wrong (the message starts
    with it, as the web's other 422s do)."""


class UnknownEscalation(DeskError):
    """A resolution names an escalation this hub does not hold (most likely a typo)."""


class CaseNotFound(HubRefusal, LookupError):
    """No desk case with that city and seq."""


class CaseResolved(DeskError):
    """The case is resolved already: it cannot be taken or resolved again."""


def _now() -> datetime:
    return datetime.now(UTC)


def _target(city_code: str, seq: int) -> str:
    return f"escalation:{city_code}/{seq}"


def _text(value: str, field: str) -> str:
    value = value.strip()
    if blank(value):  # white space or invisible characters alone (U+200B) read as nothing
        raise DeskError("text.required", field=field)
    # The web's edge refuses these before; the command line reaches here with them.
    refuse_characters(value, field, DeskError)
    if len(value) > MAX_TEXT:
        raise DeskError("text.too_long", field=field, length=len(value), maximum=MAX_TEXT)
    return value


def _to_one_city(city_code: str, ticket_id: str, roster_codes: Sequence[str]) -> None:
    if city_code not in roster_codes:
        raise DeskError("desk.not_roster_city", field="city_code", city=city_code)
    if blank(ticket_id):  # a U+200B alone names no ticket: the city's answer would be refused
        raise DeskError("desk.ticket_missing", field="ticket_id")


# --- resolving (web and CLI) ----------------------------------------------------------------


def escalation_seq(engine: Engine, city_code: str, ticket_id: str) -> int | None:
    """The seq of the latest escalation ``city_code`` sent for ``ticket_id``, if held
    (follow-ups are not escalations)."""
    with engine.connect() as conn:
        return _escalation_seq(conn, city_code, ticket_id)


def _escalation_seq(conn: Connection, city_code: str, ticket_id: str) -> int | None:
    seq = conn.execute(
        select(func.max(Record.seq)).where(
            Record.city_code == city_code,
            Record.subject == f"{ESCALATION_SUBJECT}{ticket_id}",
            # A repeat (a re-based city escalating again) has no case of its own.
            Record.status != REPEATED,
        )
    ).scalar()
    return int(seq) if seq is not None else None


def _envelope_of(conn: Connection, city_code: str, seq: int | None) -> Any:
    """(epoch, digest) of the record ``city_code`` sent as ``seq``, or None: what names the
    envelope itself to a city whose restored store may hold another under that seq."""
    if seq is None:
        return None
    return conn.execute(
        select(Record.epoch, Record.digest).where(Record.city_code == city_code, Record.seq == seq)
    ).first()


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
    if blank(resolution):
        raise DeskError("desk.resolution_missing", field="resolution")
    resolution = _text(resolution, "resolution")
    if outcome is not None and outcome not in OUTCOMES:
        raise DeskError("desk.choose", field="outcome", value=outcome, allowed=", ".join(OUTCOMES))
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        conn = uow.conn
        seq = case_seq or _escalation_seq(conn, city_code, ticket_id)
        if seq is None and not force:
            raise UnknownEscalation(
                "desk.unknown_escalation", field="ticket_id", city=city_code, ticket=ticket_id
            )
        case = None
        if seq is not None:
            case = conn.execute(
                select(DeskCase.resolved_at)
                .where(DeskCase.city_code == city_code, DeskCase.seq == seq)
                .with_for_update()
            ).first()
        if case is not None and case.resolved_at is not None and not force:
            raise CaseResolved("desk.ticket_resolved", field="ticket_id", ticket=ticket_id)
        answered = _envelope_of(conn, city_code, seq)
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
                escalation_epoch=answered.epoch if answered else "",
                escalation_digest=bytes(answered.digest) if answered else b"",
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
                    # A caller without an outcome (a service caller: the web, the API and the
                    # CLI ask for one) keeps the case's.
                    outcome=DeskCase.outcome if outcome is None else outcome,
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
        raise CaseNotFound("desk.case_not_found", city=city_code, seq=seq)
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
        select(DeskCase.ticket_id, DeskCase.resolved_at, DeskCase.assignee)
        .where(DeskCase.city_code == city_code, DeskCase.seq == seq)
        .with_for_update()
    ).first()
    if row is None:
        raise CaseNotFound("desk.case_not_found", city=city_code, seq=seq)
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
        raise DeskError("desk.not_gm_hotline", field="assignee", value=assignee)
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        case = _open_case(uow.conn, city_code, seq)
        if case.resolved_at is not None:
            raise CaseResolved("desk.case_resolved", field="seq", city=city_code, seq=seq)
        if case.assignee == member.id:
            # Taken by the same person again (a second click): nothing changes, the time
            # it was taken stays, and the audit log says it once.
            return
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
        raise DeskError("desk.entry_kind", field="kind", value=kind)
    if kind == "contact" and channel not in CONTACT_CHANNELS:
        raise DeskError(
            "desk.choose", field="channel", value=channel, allowed=", ".join(CONTACT_CHANNELS)
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
        raise DeskError("desk.longer_than", field="ticket_id", maximum=64)
    control = next((ch for ch in ticket_id if unicodedata.category(ch) in ("Cc", "Cs")), None)
    if control is not None:
        # A ticket id is one line: a newline or tab would travel to the city in the notice's
        # title and land in the audit log's target.
        raise DeskError("desk.ticket_control", field="ticket_id", code=f"{ord(control):04X}")
    request = pb.TraceRequest(ticket_id=ticket_id, from_gm_hotline=from_gm_hotline)
    notice = pb.Notice(
        kind=pb.TRACE_REQUEST,
        priority=pb.NORMAL,
        title=f"Trace request: ticket {ticket_id}",
        body="Send the ticket's history.",
        sender=requested_by,
        targets=[city_code],
    )
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        # The escalated ticket of that number, when the hub holds one: the city answers with
        # its ticket only if that escalation is its own (a restored store may have given the
        # number to another customer).
        seq = _escalation_seq(uow.conn, city_code, ticket_id)
        held = _envelope_of(uow.conn, city_code, seq)
        if seq is not None and held is not None:
            request.escalation_seq = seq
            request.escalation_epoch = held.epoch
            request.escalation_digest = bytes(held.digest)
        notice.trace_request.CopyFrom(request)
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
