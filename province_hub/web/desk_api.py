"""``/api/v1`` for the province's desks: the escalation desk (queue, case, take, notes,
contact log, resolve, export), ticket traces, and the audit log (JSON and CSV).

Thin edges over :mod:`province_hub.desk` and :mod:`province_hub.audit`: the role table is
asked first, the body is validated by its model (422 naming the field), the use case runs
with its audit row. Customer name and phone come masked unless the caller is the GM hotline.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from province_hub import audit, desk, desk_views
from province_hub.audit import Action
from province_hub.staff import HubMember
from province_hub.web import exports, views
from province_hub.web.access import acting, api_user, personal
from province_hub.web.api import ERRORS, Problem
from province_hub.web.context import HubWeb, hub_of
from province_hub.web.desk_tables import ages, audit_table, queue_table, traces_table
from province_hub.web.tables import Column
from sync.masking import mask_text
from sync.web.auth import area, client_address
from sync.web.params import Day, RequestModel
from sync.zones import in_zone

router = APIRouter(
    prefix="/api/v1",
    tags=["desks"],
    responses={
        **ERRORS,
        404: {"model": Problem, "description": "no such case"},
        409: {"model": Problem, "description": "the case is resolved already"},
    },
)
Caller = Annotated[HubMember, Depends(api_user)]
CityPath = Annotated[str, Path(pattern=r"^\d{6}$", description="the escalating city's code")]
SeqPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="the escalation's seq")]
Text = Annotated[str, Field(min_length=1, max_length=desk.MAX_TEXT)]


class TakeRequest(RequestModel):
    """Whom to assign the case to: a GM hotline account id (oneself or a colleague)."""

    assignee: str = Field(min_length=2, max_length=64)


class NoteRequest(RequestModel):
    text: Text


class ContactRequest(RequestModel):
    channel: Literal["phone", "sms", "visit", "other"]
    text: Text


class ResolveRequest(RequestModel):
    outcome: Literal["upheld", "partly_upheld", "not_upheld", "withdrawn"]
    resolution: Text


class Resolved(BaseModel):
    notice_seq: int


class TraceAsk(RequestModel):
    city_code: str = Field(pattern=r"^\d{6}$")
    ticket_id: str = Field(min_length=1, max_length=64)


class Done(BaseModel):
    ok: bool = True


def _json(data: Any, zone: tzinfo) -> Response:
    """JSON with every instant in the federation's zone (as the pages show it)."""
    body = json.dumps(
        in_zone(data, zone), ensure_ascii=False, default=_default, separators=(",", ":")
    )
    return Response(body, media_type="application/json")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


# --- escalation desk ------------------------------------------------------------------------

CityQ = Annotated[str | None, Query(pattern=r"^\d{6}$")]
CategoryQ = Annotated[str | None, Query(max_length=64)]
StateQ = Annotated[Literal["open", "resolved", "all"], Query()]
SortQ = Annotated[Literal["age", "registered", "city", "category"], Query()]
OrderQ = Annotated[Literal["asc", "desc"], Query()]


def queue_of(
    hub: HubWeb,
    *,
    city: str | None,
    category: str | None,
    state: str,
    sort: str,
    order: str,
    personal: bool,
) -> list[dict[str, Any]]:
    """The desk's queue as the page, the API and the export filter it: a city not on the
    roster is refused naming ``city`` (it would only ever show an empty queue). The GM
    hotline's resolution text has the customer's name and phone, and any phone-like number,
    masked unless ``personal``."""
    if city and city not in hub.roster_codes:
        raise desk.DeskError("desk.city_unknown", field="city", city=city)
    rows = desk_views.queue(
        hub.engine,
        ages(hub),
        city=city or None,
        category=views.category_code(category),
        state=state,
        sort=sort,
        descending=order == "desc",
    )
    if not personal:
        resolved = [(r["city_code"], r["seq"]) for r in rows if r.get("resolution")]
        customers = desk_views.contacts(hub.engine, resolved, personal=True)
        for r in rows:
            if r.get("resolution"):
                name, phone = customers.get((r["city_code"], r["seq"]), ("", ""))
                r["resolution"] = mask_text(r["resolution"], name=name, phone=phone)
    return rows


@router.get("/desk", response_model=list[dict[str, Any]])
@area("desk")
def get_desk(
    request: Request,
    user: Caller,
    city: CityQ = None,
    category: CategoryQ = None,
    state: StateQ = "open",
    sort: SortQ = "age",
    order: OrderQ = "desc",
) -> Any:
    """Escalated complaints: ages in working days since escalated and since registered,
    ``overdue`` past the hub's limit, who took it, the outcome, and the city's side (when
    it received the resolution, closed the ticket, the callback's satisfaction)."""
    hub = hub_of(request)
    return _json(
        queue_of(
            hub,
            city=city,
            category=category,
            state=state,
            sort=sort,
            order=order,
            personal=personal(user),
        ),
        hub.zone,
    )


@router.get(
    "/desk/export",
    response_class=Response,
    responses=exports.responses("the queue as a file (CSV or XLSX)"),
)
@area("desk")
def get_desk_export(
    request: Request,
    user: Caller,
    format: Annotated[exports.Format, Query()] = "csv",
    city: CityQ = None,
    category: CategoryQ = None,
    state: StateQ = "open",
    sort: SortQ = "age",
    order: OrderQ = "desc",
) -> Response:
    """The queue as CSV or XLSX, filtered and sorted as ``GET /desk`` (the page's export link
    carries its filters), with each customer's name and phone (masked unless the caller is
    the GM hotline, whose export is recorded in the audit log)."""
    hub = hub_of(request)
    unmasked = personal(user)
    rows = queue_of(
        hub,
        city=city,
        category=category,
        state=state,
        sort=sort,
        order=order,
        personal=unmasked,
    )
    found = desk_views.contacts(
        hub.engine, [(r["city_code"], r["seq"]) for r in rows], personal=unmasked
    )
    for r in rows:
        r["customer_name"], r["customer_phone"] = found.get((r["city_code"], r["seq"]), ("", ""))
    table = queue_table(rows, hub, "zh", hub.names("zh"))
    table.columns += [
        Column("customer_name", "客户姓名", "Customer", "text"),
        Column("customer_phone", "客户电话", "Phone", "text"),
    ]
    answer = exports.attachment(table, format, hub.local_now())
    if unmasked and rows:
        desk.record_personal_export(
            hub.engine,
            **acting(request, user),
            what=f"desk:{state}",
            rows=len(rows),
        )
    return answer


@router.get("/desk/{city}/{seq}", response_model=dict[str, Any])
@area("desk")
def get_case(request: Request, user: Caller, city: CityPath, seq: SeqPath) -> Any:
    """One case: the escalation as the city sent it (history, reason, content, customer),
    notes and contact log, the resolution and the city's follow-up."""
    hub = hub_of(request)
    return _json(
        desk_views.case(hub.engine, ages(hub), city_code=city, seq=seq, personal=personal(user)),
        hub.zone,
    )


@router.post("/desk/{city}/{seq}/take", response_model=Done)
@area("desk.work")
def post_take(
    request: Request, user: Caller, city: CityPath, seq: SeqPath, body: TakeRequest
) -> Done:
    """Assign the case to oneself or a colleague of the GM hotline."""
    desk.take(
        hub_of(request).engine,
        city_code=city,
        seq=seq,
        assignee=body.assignee,
        **acting(request, user),
    )
    return Done()


@router.post("/desk/{city}/{seq}/notes", response_model=Done)
@area("desk.work")
def post_note(
    request: Request, user: Caller, city: CityPath, seq: SeqPath, body: NoteRequest
) -> Done:
    """An internal note (never sent to the city)."""
    desk.add_entry(
        hub_of(request).engine,
        city_code=city,
        seq=seq,
        kind="note",
        text=body.text,
        **acting(request, user),
    )
    return Done()


@router.post("/desk/{city}/{seq}/contacts", response_model=Done)
@area("desk.work")
def post_contact(
    request: Request, user: Caller, city: CityPath, seq: SeqPath, body: ContactRequest
) -> Done:
    """A line of the contact log: how the customer was reached, and what was said."""
    desk.add_entry(
        hub_of(request).engine,
        city_code=city,
        seq=seq,
        kind="contact",
        channel=body.channel,
        text=body.text,
        **acting(request, user),
    )
    return Done()


def resolve_case(
    request: Request, user: HubMember, city: str, seq: int, outcome: str, text: str
) -> int:
    """Resolve through the same service as ``fedsync hub resolve``; the notice's seq."""
    hub = hub_of(request)
    sent = desk.resolve_case(
        hub.engine,
        city_code=city,
        seq=seq,
        outcome=outcome,
        resolution=text,
        resolved_by=user.id,
        roster_codes=hub.roster_codes,
        role=user.role.value,
        address=client_address(request),
    )
    return int(sent.seq)


@router.post("/desk/{city}/{seq}/resolve", response_model=Resolved)
@area("desk.work")
def post_resolve(
    request: Request, user: Caller, city: CityPath, seq: SeqPath, body: ResolveRequest
) -> Resolved:
    """Resolve with an outcome and a note: the resolution goes to the city as an
    ESCALATION_RESOLUTION notice."""
    return Resolved(
        notice_seq=resolve_case(request, user, city, seq, body.outcome, body.resolution)
    )


# --- traces ---------------------------------------------------------------------------------


@router.get("/traces", response_model=list[dict[str, Any]])
@area("traces")
def get_traces(request: Request, user: Caller) -> Any:
    """Trace requests, newest first, with their state and the city's answer once it came."""
    hub = hub_of(request)
    return _json(desk_views.traces(hub.engine, personal=personal(user)), hub.zone)


#: The newest trace requests an export carries (the page shows the newest 200).
TRACES_EXPORT_ROWS = 5_000


@router.get(
    "/traces/export",
    response_class=Response,
    responses=exports.responses("the trace requests as a file (CSV or XLSX)"),
)
@area("traces")
def get_traces_export(
    request: Request, user: Caller, format: Annotated[exports.Format, Query()] = "csv"
) -> Response:
    """The trace requests as the page lists them, newest first (at most 5,000), with the
    customer's name and phone of each answer (masked unless the caller is the GM hotline,
    whose export is recorded in the audit log)."""
    hub = hub_of(request)
    unmasked = personal(user)
    rows = desk_views.traces(hub.engine, personal=unmasked, limit=TRACES_EXPORT_ROWS)
    table = traces_table(rows, hub, "zh", hub.names("zh"))
    answer = exports.attachment(table, format, hub.local_now())
    answered = sum(1 for r in rows if r["answer"] is not None)
    if unmasked and answered:
        desk.record_personal_export(
            hub.engine, **acting(request, user), what="traces", rows=answered
        )
    return answer


def ask_trace(hub: HubWeb, request: Request, user: HubMember, city: str, ticket: str) -> int:
    sent = desk.request_trace(
        hub.engine,
        city_code=city,
        ticket_id=ticket.strip(),
        requested_by=user.id,
        roster_codes=hub.roster_codes,
        from_gm_hotline=personal(user),
        role=user.role.value,
        address=client_address(request),
    )
    return int(sent.seq)


@router.post("/traces", response_model=Resolved)
@area("traces.request")
def post_trace(request: Request, user: Caller, body: TraceAsk) -> Resolved:
    """Ask a city for one ticket's history (a TRACE_REQUEST notice to that city)."""
    return Resolved(
        notice_seq=ask_trace(hub_of(request), request, user, body.city_code, body.ticket_id)
    )


# --- audit ----------------------------------------------------------------------------------


def audit_filters(hub: HubWeb, date_from: date | None, date_to: date | None) -> dict[str, Any]:
    """Dates in the federation's zone as UTC instants (SQLite compares the stored UTC text,
    so a local-time bound would be off by the zone's offset); ``date_to`` is inclusive."""

    def start_of(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=hub.zone).astimezone(UTC)

    since = start_of(date_from) if date_from else None
    until = start_of(date_to + timedelta(days=1)) if date_to else None
    if since and until and until <= since:
        raise desk.DeskError("desk.range_reversed", field="to")
    return {"since": since, "until": until}


ActorQ = Annotated[str | None, Query(max_length=64)]
ActionQ = Annotated[Action | None, Query()]
FromQ = Annotated[Day | None, Query(alias="from")]
ToQ = Annotated[Day | None, Query(alias="to")]


@router.get("/audit", response_model=list[dict[str, Any]])
@area("audit")
def get_audit(
    request: Request,
    user: Caller,
    actor: ActorQ = None,
    action: ActionQ = None,
    date_from: FromQ = None,
    date_to: ToQ = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Any:
    """Who did what at the hub, newest first (admins only)."""
    hub = hub_of(request)
    found = audit.entries(
        hub.engine,
        actor=actor or None,
        action=action,
        limit=limit,
        **audit_filters(hub, date_from, date_to),
    )
    return _json([{**e.__dict__, "action": e.action.value} for e in found], hub.zone)


@router.get(
    "/audit/export",
    response_class=Response,
    responses=exports.responses("the audit log as a file (CSV or XLSX)"),
)
@area("audit")
def get_audit_export(
    request: Request,
    user: Caller,
    format: Annotated[exports.Format, Query()] = "csv",
    actor: ActorQ = None,
    action: ActionQ = None,
    date_from: FromQ = None,
    date_to: ToQ = None,
) -> Response:
    """The filtered audit log as CSV or XLSX (at most 50,000 rows)."""
    hub = hub_of(request)
    found = audit.entries(
        hub.engine,
        actor=actor or None,
        action=action,
        limit=50_000,
        **audit_filters(hub, date_from, date_to),
    )
    return exports.attachment(audit_table(found, hub, "zh"), format, hub.local_now())
