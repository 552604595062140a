"""What the desks read: the escalation queue with its ages, one case as the city sent it,
the customers' contact for an export, and the trace requests with the cities' answers.

Ages are working days on the federation's calendar (:class:`~sync.calendar.WorkCalendar`);
customer name and phone are read from the escalation record's body and masked
(:mod:`sync.masking`) unless the reader may see personal data; so are they, and any
phone-like number, inside the free text shown beside them (reason, content, history notes,
the desk's notes and contact log).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, or_, select, tuple_

from province_hub.desk import CaseNotFound, DeskError
from province_hub.escalations import ESCALATION_SUBJECT
from province_hub.store import REPEATED, DeskCase, DeskEntry, Notice, NoticeDelivery, Record
from sync.calendar import WorkCalendar
from sync.masking import mask_name, mask_phone, mask_text
from sync.pb.fedsync.v1 import federation_pb2 as pb

SORTS: Final = ("age", "registered", "city", "category")
STATES: Final = ("open", "resolved", "all")


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive UTC.
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- the queue and one case ---------------------------------------------------------------


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
        raise DeskError("desk.choose", field="state", value=state, allowed=", ".join(STATES))
    if sort not in SORTS:
        raise DeskError("desk.choose", field="sort", value=sort, allowed=", ".join(SORTS))
    query = _case_query()
    if city:
        query = query.where(DeskCase.city_code == city)
    if category:
        # The category or one of its sub-categories, as a person types the code: "net" finds
        # NET and NET.BROADBAND, not NETWORK.
        code = func.upper(DeskCase.category)
        wanted = category.upper()
        query = query.where(or_(code == wanted, code.startswith(wanted + ".", autoescape=True)))
    if state == "open":
        query = query.where(DeskCase.resolved_at.is_(None))
    elif state == "resolved":
        query = query.where(DeskCase.resolved_at.is_not(None))

    # The limit keeps the first cases of the order asked for, so the store orders first: the
    # earlier a case was escalated (registered), the higher its age in working days.
    def by_age(column: Any) -> Any:
        return column.asc() if descending else column.desc()

    def by_text(column: Any) -> Any:
        return column.desc() if descending else column.asc()

    first = {
        "age": (by_age(DeskCase.escalated_at),),
        "registered": (by_age(DeskCase.registered_at),),
        "city": (by_text(DeskCase.city_code), by_age(DeskCase.escalated_at)),
        "category": (by_text(DeskCase.category), by_age(DeskCase.escalated_at)),
    }[sort]
    query = query.order_by(*first, DeskCase.city_code, DeskCase.seq).limit(limit)
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


def _history(entries: Any, hide: Callable[[str], str]) -> list[dict[str, Any]]:
    return [
        {"at": _when(h.at), "actor": h.actor, "action": h.action, "note": hide(h.note)}
        for h in entries
    ]


def _shown(text: str) -> str:
    return text


def _hider(personal: bool, name: str = "", phone: str = "") -> Callable[[str], str]:
    """How free text reaches the reader: as written for one who may see personal data, else
    with the customer's name and phone and any phone-like number masked (an operator's note
    may repeat what the customer said)."""
    if personal:
        return _shown
    return lambda text: mask_text(text, name=name, phone=phone)


def case(engine: Engine, ages: Ages, *, city_code: str, seq: int, personal: bool) -> dict[str, Any]:
    """One case with the escalation as the city sent it (history, reason, content), its
    notes and contact log, the resolution's delivery and the city's follow-up. Customer
    name and phone masked unless ``personal``."""
    with engine.connect() as conn:
        row = conn.execute(
            _case_query().where(DeskCase.city_code == city_code, DeskCase.seq == seq)
        ).first()
        if row is None:
            raise CaseNotFound("desk.case_not_found", city=city_code, seq=seq)
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
        follow_up: bytes | None = None
        data = _row_dict(row, ages)
        if data["follow_up_seq"] is not None:
            raw = conn.execute(
                select(Record.body).where(
                    Record.city_code == city_code, Record.seq == data["follow_up_seq"]
                )
            ).scalar()
            if raw is not None:
                follow_up = raw
    escalation = pb.Escalation.FromString(body)
    name, phone = escalation.customer_name, escalation.customer_phone
    hide = _hider(personal, name, phone)
    if follow_up is not None:
        follow_up_history = _history(pb.Escalation.FromString(follow_up).history, hide)
    data.update(
        resolution=hide(data["resolution"]) if data["resolution"] else data["resolution"],
        reason=hide(escalation.reason),
        content=hide(escalation.content),
        customer_name=name if personal else mask_name(name),
        customer_phone=phone if personal else mask_phone(phone),
        history=_history(escalation.history, hide),
        # The ticket's history as the city sent it last: with the close and the callback.
        follow_up_history=follow_up_history,
        entries=[
            {
                "kind": e.kind,
                "at": _aware(e.at),
                "author": e.author,
                "channel": e.channel,
                "text": hide(e.text),
            }
            for e in entries
        ],
    )
    return data


# --- traces ---------------------------------------------------------------------------------


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
                    # A repeat of the answer (a re-based city answering again) is not it.
                    Record.status != REPEATED,
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
                name, phone = trace.customer_name, trace.customer_phone
                hide: Callable[[str], str] = _shown
                if not personal:
                    known = _trace_name(conn, r.city_code, trace)
                    hide = _hider(False, known, phone)
                item.update(
                    state="answered",
                    answered_at=_aware(answer.received_at),
                    answer={
                        "found": trace.found,
                        "status": trace.status,
                        "category": trace.category,
                        "customer_name": name if personal else mask_name(name),
                        "customer_phone": phone if personal else mask_phone(phone),
                        "history": _history(trace.history, hide),
                    },
                )
            out.append(item)
    return out


def _trace_name(conn: Connection, city_code: str, trace: pb.TicketTrace) -> str:
    """The customer's name to mask in a trace's history: the one the trace carries (a city
    of wire schema 1.3 sends it, in full when the GM hotline asked), else the name of the
    ticket's latest escalation from that city, when the hub holds one (an older city's
    answer carries no name, yet its notes may)."""
    if trace.customer_name:
        # Masked ("李*"), the city masked its notes itself: nothing more to look up.
        return "" if "*" in trace.customer_name else trace.customer_name
    body = conn.execute(
        select(Record.body)
        .where(
            Record.city_code == city_code,
            Record.subject == f"{ESCALATION_SUBJECT}{trace.ticket_id}",
        )
        .order_by(Record.seq.desc())
        .limit(1)
    ).scalar()
    return pb.Escalation.FromString(body).customer_name if body is not None else ""


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
