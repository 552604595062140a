"""What the node does by itself with some province notices, in the transaction that stores
them: standard answers become searchable, a trace request is answered with the ticket's
history, and an escalation's resolution is applied to the ticket.

A notice is always kept, even when it cannot be applied (unknown ticket, ticket no longer
escalated): the reason is written to the inbox row's ``handled_note`` for staff to see,
and the subscriber never stops on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, or_, select, update

from city_node import domain
from city_node.context import Actor, CityError
from city_node.domain import Role
from city_node.records import Ticket
from city_node.store import Escalation, InboxNotice, StandardAnswer, TicketRow
from city_node.ticket_store import load_ticket, save_ticket
from city_node.tickets import parse_ticket_id, pb_history
from sync import outbox
from sync.masking import mask_name, mask_phone, mask_text
from sync.pb.fedsync.v1 import federation_pb2 as pb

_A: Table = StandardAnswer.__table__  # type: ignore[assignment]


def acts_on(notice: pb.Notice) -> bool:
    """Whether ``apply`` does anything with ``notice`` (an announcement, a task... need not)."""
    return (
        (notice.kind == pb.STANDARD_ANSWER and notice.HasField("standard_answer"))
        or (notice.kind == pb.TRACE_REQUEST and notice.HasField("trace_request"))
        or (notice.kind == pb.ESCALATION_RESOLUTION and notice.HasField("escalation_resolution"))
    )


def apply(conn: Connection, notice: pb.Notice, now: datetime) -> str | None:
    """Act on a freshly stored notice; return a note for the inbox row, if any."""
    if notice.kind == pb.STANDARD_ANSWER and notice.HasField("standard_answer"):
        return _store_answer(conn, notice, now)
    if notice.kind == pb.TRACE_REQUEST and notice.HasField("trace_request"):
        return _answer_trace(conn, notice, now)
    if notice.kind == pb.ESCALATION_RESOLUTION and notice.HasField("escalation_resolution"):
        return _apply_resolution(conn, notice, now)
    return None


def answer_key(sa: pb.StandardAnswer, title: str = "") -> str:
    """The key versions of one standard answer share: the province's, else category/topic
    (what notices from hubs before keys existed are filed under)."""
    return sa.key or f"{sa.category[:32]}/{sa.topic or title}"


def _store_answer(conn: Connection, notice: pb.Notice, now: datetime) -> str | None:
    sa = notice.standard_answer
    key = answer_key(sa, notice.title)
    version = max(1, sa.version)
    # The newest version of this key the node holds as current. Notices arrive in seq order,
    # so a newer version normally supersedes it; one that is not newer (a replayed or
    # mis-numbered version) is kept, but as superseded at once: the current answer stays.
    current = conn.execute(
        select(_A.c.notice_seq, _A.c.version)
        .where(_A.c.answer_key == key, _A.c.superseded_by.is_(None))
        .order_by(_A.c.version.desc(), _A.c.notice_seq.desc())
    ).all()
    newest = current[0] if current else None
    stale = newest is not None and newest.version >= version
    conn.execute(
        insert(_A).values(
            notice_seq=notice.seq,
            topic=sa.topic or notice.title,
            category=sa.category[:32],
            answer=sa.answer or notice.body,
            published_at=notice.created_at.ToDatetime(now.tzinfo),
            answer_key=key,
            version=version,
            superseded_by=newest.notice_seq if stale and newest is not None else None,
        )
    )
    if stale and newest is not None:
        return f"standard answer {key} v{version} kept as superseded: v{newest.version} is current"
    if current:
        conn.execute(
            update(_A)
            .where(_A.c.notice_seq.in_([row.notice_seq for row in current]))
            .values(superseded_by=notice.seq)
        )
        older = ", ".join(f"v{row.version}" for row in current)
        return f"standard answer {key} v{version} is current; supersedes {older}"
    return None


def superseded(conn: Connection, seqs: list[int]) -> dict[int, int]:
    """For those of ``seqs`` that are standard answers replaced by a newer version: the seq
    of the version that replaced each."""
    if not seqs:
        return {}
    rows = conn.execute(
        select(_A.c.notice_seq, _A.c.superseded_by).where(
            _A.c.notice_seq.in_(seqs), _A.c.superseded_by.is_not(None)
        )
    )
    return {int(row.notice_seq): int(row.superseded_by) for row in rows}


def _answer_trace(conn: Connection, notice: pb.Notice, now: datetime) -> str:
    request = notice.trace_request
    trace = pb.TicketTrace(request_notice_seq=notice.seq, ticket_id=request.ticket_id)
    try:
        number = parse_ticket_id(request.ticket_id)
        _row, ticket = load_ticket(conn, number, full_history=True)
    except CityError:
        trace.found = False
        note = f"trace answered: ticket {request.ticket_id} not found"
    else:
        if request.escalation_digest and not _escalated_here(conn, number, request):
            # The province asks for the ticket it holds an escalation of; this store's ticket
            # of that number is another customer's (a restored store gave the number again).
            trace.found = False
            note = (
                f"trace answered: ticket {number} here is not the escalated ticket the province "
                f"holds (escalation seq {request.escalation_seq}; a store restored from an older "
                "copy gave its number again)"
            )
        else:
            _fill_trace(trace, ticket, from_gm_hotline=request.from_gm_hotline)
            note = f"trace answered automatically ({len(ticket.history)} steps)"
    outbox.append(conn, trace, now=now)
    return note


def _fill_trace(trace: pb.TicketTrace, ticket: Ticket, *, from_gm_hotline: bool) -> None:
    trace.found = True
    trace.status = ticket.status.value
    trace.category = ticket.category
    # Personal data stays in the city unless the general-manager hotline works the case:
    # the phone, and the customer's name and any phone-like number in the history notes
    # (an operator's note may repeat what the customer said).
    history = pb_history(ticket.history)
    if from_gm_hotline:
        trace.customer_phone = ticket.customer_phone
        trace.customer_name = ticket.customer_name
    else:
        trace.customer_phone = mask_phone(ticket.customer_phone)
        trace.customer_name = mask_name(ticket.customer_name)
        for entry in history:
            entry.note = mask_text(
                entry.note, name=ticket.customer_name, phone=ticket.customer_phone
            )
    trace.history.extend(history)


def _apply_resolution(conn: Connection, notice: pb.Notice, now: datetime) -> str:
    res = notice.escalation_resolution
    try:
        number = parse_ticket_id(res.ticket_id)
        # Lock the ticket first: an operator's chase at the same moment must wait, not make
        # this write stale (a lost resolution would never be retried).
        conn.execute(select(TicketRow.id).where(TicketRow.id == number).with_for_update())
        row, ticket = load_ticket(conn, number, full_history=False)
        answered = _answered_escalation(conn, number, res)
        if isinstance(answered, str):
            return answered
        latest = conn.execute(
            select(func.max(Escalation.id)).where(Escalation.ticket_id == number)
        ).scalar()
        if answered is not None and answered != latest:
            # An answer to an earlier escalation of the ticket (resolved again from the
            # hub's shell while the ticket was escalated once more): it belongs to that
            # escalation; the ticket and its open escalation wait for their own answer.
            _record_resolution(conn, answered, notice, now)
            return (
                f"resolution recorded on escalation seq {res.escalation_seq} of ticket {number}; "
                "its latest escalation is another one: the ticket is not changed"
            )
        who = f"province:{res.resolved_by or notice.sender or 'gm-hotline'}"[:64]
        at = max(now, ticket.history[-1].at) if ticket.history else now
        after = domain.province_resolved(
            ticket,
            actor=who,
            role=Role.PROVINCE,
            at=at,
            resolution=res.resolution[:4000],
        )
        save_ticket(
            conn, row, ticket, after, Actor(who, Role.PROVINCE), domain.Action.PROVINCE_RESOLVED
        )
    except CityError as exc:
        return f"resolution not applied: {exc}"
    if latest is not None:
        _record_resolution(conn, latest, notice, now)
    return f"resolution applied to ticket {number}: returned for the callback"


def _record_resolution(
    conn: Connection, escalation_id: int, notice: pb.Notice, now: datetime
) -> None:
    res = notice.escalation_resolution
    conn.execute(
        update(Escalation)
        .where(Escalation.id == escalation_id)
        .values(
            resolved_at=now,
            resolution=res.resolution,
            resolved_by=res.resolved_by,
            resolution_notice_seq=notice.seq,
        )
    )


def _escalated_here(conn: Connection, number: int, request: pb.TraceRequest) -> bool:
    """Whether this store sent the escalation of ticket ``number`` the request names."""
    sent = conn.execute(
        select(Escalation.id).where(
            Escalation.ticket_id == number, Escalation.outbox_seq == request.escalation_seq
        )
    ).first()
    return sent is not None and outbox.holds_envelope(
        conn,
        seq=request.escalation_seq,
        epoch=request.escalation_epoch,
        digest=request.escalation_digest,
    )


def _answered_escalation(
    conn: Connection, number: int, res: pb.EscalationResolution
) -> int | str | None:
    """The escalation row a resolution answers: the one this store sent as
    ``escalation_seq``; None when the hub names none (a resolution sent with ``--force``,
    or from a hub before wire schema 1.1): the ticket's latest. A note saying why it is not
    applied when this store sent no such escalation of the ticket: a store restored from an
    older copy gives the lost ticket's number to a new ticket, and the province's answer to
    the lost customer must not land on the new one's case. The restored copy may even hold
    its own escalation of that number under the same epoch and seq, not sent yet: from wire
    schema 1.6 the hub names the envelope it answers (epoch and digest), and this store's
    envelope at that seq must be that one (``sync.outbox.holds_envelope``, as a rejection
    is matched)."""
    escalation_seq = res.escalation_seq
    if not escalation_seq:
        return None
    sent = dict(
        conn.execute(
            select(Escalation.outbox_seq, Escalation.id).where(Escalation.ticket_id == number)
        ).all()
    )
    if (
        escalation_seq in sent
        and res.escalation_digest
        and not outbox.holds_envelope(
            conn, seq=escalation_seq, epoch=res.escalation_epoch, digest=res.escalation_digest
        )
    ):
        return (
            f"resolution not applied: it answers escalation seq {escalation_seq} as the "
            f"hub holds it, and this store's escalation of ticket {number} under that seq "
            "is another one (a store restored from an older copy: the ticket's number "
            "was given again)"
        )
    if escalation_seq in sent:
        return int(sent[escalation_seq])
    ours = ", ".join(str(seq) for seq in sorted(sent)) or "-"
    return (
        f"resolution not applied: it answers escalation seq {escalation_seq}, which this store "
        f"never sent for ticket {number} (its escalations: seq {ours}; a store restored from "
        "an older copy?)"
    )


def search_answers(
    conn: Connection,
    text: str,
    category: str | None = None,
    limit: int = 20,
    *,
    include_superseded: bool = False,
) -> list[Any]:
    """Standard answers whose topic or answer contains ``text`` (all words), newest first;
    only the current version of each key unless ``include_superseded``."""
    query = select(_A).order_by(_A.c.notice_seq.desc()).limit(max(1, min(limit, 200)))
    if not include_superseded:
        query = query.where(_A.c.superseded_by.is_(None))
    for word in text.split():
        pattern = f"%{word.lower()}%"
        query = query.where(
            or_(func.lower(_A.c.topic).like(pattern), func.lower(_A.c.answer).like(pattern))
        )
    if category:
        query = query.where(_A.c.category == category)
    return list(conn.execute(query))


def mark_handled(conn: Connection, seq: int, note: str) -> None:
    conn.execute(update(InboxNotice).where(InboxNotice.notice_seq == seq).values(handled_note=note))
