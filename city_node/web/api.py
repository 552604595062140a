"""The console's JSON API under ``/api/v1``: thin routes that call one service each, on the
request models and presenters it shares with the pages (:mod:`city_node.web.models`).
Tickets and reports are shown through :mod:`city_node.views` (also used by the pages and by
``fedsync city … --json``), so what a person sees and what a script gets are the same data.

Routes are plain ``def``: FastAPI runs them in its thread pool, so database work never
blocks the node's event loop (the link to the province runs on it).

Request models are strict (:mod:`city_node.web.models`); ids in paths are 1..2^63-1. Every
refusal is ``{"detail": "<message>"}`` with the status the OpenAPI document declares
(:data:`ERRORS`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from city_node import personal_data, qa, reports, services, staff, suggestions, tickets
from city_node.context import CityContext
from city_node.domain import (
    Role,
    Status,
    TicketKind,
)
from city_node.staff import StaffMember
from city_node.views import (
    ReportOut,
    TicketDetail,
    TicketSummary,
    report_out,
)
from city_node.web.auth import AREAS, api_user, may
from city_node.web.i18n import DEFAULT_LANG, Lang
from city_node.web.models import (
    ActionIn,
    AnswerOut,
    BatchOut,
    ClassifyIn,
    CompensationIn,
    DecisionIn,
    DraftIn,
    DrawIn,
    LinkOut,
    ReceiptIn,
    RowId,
    ScoreIn,
    SuggestionOut,
    TicketIn,
    act_on_ticket,
    actor_of,
    draw_samples,
    find_tickets,
    link_status,
    record_receipt,
    register_ticket,
    search_answers,
    send_suggestions,
    show_ticket,
)
from sync.web.auth import area


class Problem(BaseModel):
    """A refusal: what is wrong, naming the parameter or field when it is one."""

    detail: str
    error_id: str | None = Field(
        None, description="500 only: quote it to the administrator (it is in the node's log)"
    )


#: Every refusal the API gives, with the same body (``sync.web.app`` and ``sync.web.edge``).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the request could not be read"},
    401: {"model": Problem, "description": "no or wrong credentials, or the session ended"},
    403: {"model": Problem, "description": "the role may not do this (the detail names who may)"},
    404: {"model": Problem, "description": "no such ticket, report, sample or notice"},
    409: {
        "model": Problem,
        "description": "not allowed from the current status, or changed meanwhile",
    },
    413: {"model": Problem, "description": "the request body is over the limit (1 MiB default)"},
    422: {"model": Problem, "description": "a value is invalid (the detail names it)"},
    429: {"model": Problem, "description": "too many failed logins"},
    500: {"model": Problem, "description": "an internal error, with its error id"},
    503: {"model": Problem, "description": "the store is busy; retry after Retry-After seconds"},
}

router = APIRouter(prefix="/api/v1", tags=["city console"], responses=ERRORS)


User = Annotated[StaffMember, Depends(api_user)]


def context(request: Request) -> CityContext:
    ctx: CityContext = request.app.state.ctx
    return ctx


Ctx = Annotated[CityContext, Depends(context)]


def _request_lang(request: Request) -> Lang:
    """The language the history is rendered in: ``?lang=``, the cookie, else Chinese."""
    lang: Lang = getattr(request.state, "lang", DEFAULT_LANG)
    return lang


ReaderLang = Annotated[Lang, Depends(_request_lang)]


# --- who am I ----------------------------------------------------------------------------------


class StaffOut(BaseModel):
    id: str
    name: str
    role: Role
    active: bool


class MeOut(StaffOut):
    areas: list[str] = Field(description="console areas this role may open")


@router.get("/me", response_model=MeOut, summary="The signed-in staff member")
def me(user: User) -> MeOut:
    areas = [area for area in AREAS if may(user.role, area)]
    return MeOut(id=user.id, name=user.name, role=user.role, active=user.active, areas=areas)


@router.get("/staff", response_model=list[StaffOut], summary="Staff accounts (leader)")
@area("staff")
def list_staff(user: User, ctx: Ctx) -> list[StaffOut]:
    return [StaffOut(**vars(m)) for m in staff.all_staff(ctx.engine)]


class CategoryOut(BaseModel):
    code: str
    parent: str | None
    name_zh: str
    name_en: str
    limit_workdays: int = Field(description="complaint time limit, working days (inherited)")


@router.get("/categories", response_model=list[CategoryOut], summary="The category tree")
def categories(user: User, ctx: Ctx) -> list[CategoryOut]:
    return [
        CategoryOut(
            code=c.code,
            parent=c.parent,
            name_zh=c.name_zh,
            name_en=c.name_en,
            limit_workdays=ctx.categories.limit_for(c.code),
        )
        for c in ctx.categories
    ]


# --- tickets -----------------------------------------------------------------------------------


@router.get("/tickets", response_model=list[TicketSummary], summary="Find tickets")
def list_tickets(
    user: User,
    ctx: Ctx,
    status: Status | None = None,
    kind: TicketKind | None = None,
    phone: Annotated[
        str | None,
        Query(max_length=40, description="operators, manager hotline and surveyors only"),
    ] = None,
    operator: Annotated[str | None, Query(max_length=64)] = None,
    open_only: bool = False,
    overtime_only: bool = False,
    extension_pending: Annotated[
        bool, Query(description="only tickets whose extension request waits for the leader")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[TicketSummary]:
    return find_tickets(
        ctx,
        user,
        status=status.value if status else None,
        kind=kind.value if kind else None,
        phone=phone or None,
        operator=operator or None,
        open_only=open_only,
        overtime_only=overtime_only,
        extension_pending=extension_pending,
        limit=limit,
        offset=offset,
    )


@router.post("/tickets", response_model=TicketDetail, status_code=201, summary="Register a ticket")
def create_ticket(body: TicketIn, user: User, ctx: Ctx, lang: ReaderLang) -> TicketDetail:
    return show_ticket(ctx, user, register_ticket(ctx, user, body), lang)


@router.get("/tickets/{ticket_id}", response_model=TicketDetail, summary="One ticket")
def get_ticket(ticket_id: RowId, user: User, ctx: Ctx, lang: ReaderLang) -> TicketDetail:
    return show_ticket(ctx, user, ticket_id, lang)


@router.post(
    "/tickets/{ticket_id}/actions",
    response_model=TicketDetail,
    summary="Act on a ticket (dispatch, close, survey…)",
)
def ticket_action(
    ticket_id: RowId, body: ActionIn, user: User, ctx: Ctx, lang: ReaderLang
) -> TicketDetail:
    act_on_ticket(ctx, user, ticket_id, body)
    return show_ticket(ctx, user, ticket_id, lang)


@router.post(
    "/tickets/{ticket_id}/compensation",
    response_model=TicketDetail,
    summary="Record compensation paid (manager hotline)",
)
def ticket_compensation(
    ticket_id: RowId, body: CompensationIn, user: User, ctx: Ctx, lang: ReaderLang
) -> TicketDetail:
    tickets.record_compensation(ctx, actor_of(user), ticket_id, fen=body.fen, note=body.note)
    return show_ticket(ctx, user, ticket_id, lang)


# --- standard answers --------------------------------------------------------------------------


@router.get("/answers", response_model=list[AnswerOut], summary="Search standard answers")
def answers(
    user: User,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=4000, description="at most 20 words")] = "",
    category: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AnswerOut]:
    return search_answers(ctx, q, category)


# --- reports -----------------------------------------------------------------------------------


@router.get("/reports/pending", response_model=list[ReportOut], summary="Approval queue")
@area("reports")
def pending_reports(user: User, ctx: Ctx) -> list[ReportOut]:
    return [report_out(r) for r in reports.pending(ctx)]


@router.get("/reports", response_model=list[ReportOut], summary="Recent reports")
@area("reports")
def recent_reports(
    user: User, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[ReportOut]:
    return [report_out(r) for r in reports.recent(ctx, limit=limit)]


@router.post("/reports", response_model=ReportOut, status_code=201, summary="Draft a report")
@area("reports")
def draft_report(body: DraftIn, user: User, ctx: Ctx) -> ReportOut:
    return report_out(
        reports.draft(ctx, body.kind, body.period_kind, body.start, by=user.id, role=user.role)
    )


@router.get("/reports/{report_id}", response_model=ReportOut, summary="One report")
@area("reports")
def get_report(report_id: RowId, user: User, ctx: Ctx) -> ReportOut:
    return report_out(reports.get(ctx, report_id))


@router.post(
    "/reports/{report_id}/approve",
    response_model=ReportOut,
    summary="Approve a draft and queue it for the province (leader)",
)
def approve_report(
    report_id: RowId, user: User, ctx: Ctx, body: DecisionIn | None = None
) -> ReportOut:
    body = body or DecisionIn()
    return report_out(reports.approve(ctx, actor_of(user), report_id, body.note))


@router.post(
    "/reports/{report_id}/reject", response_model=ReportOut, summary="Reject a draft (leader)"
)
def reject_report(
    report_id: RowId, user: User, ctx: Ctx, body: DecisionIn | None = None
) -> ReportOut:
    body = body or DecisionIn()
    return report_out(reports.reject(ctx, actor_of(user), report_id, body.note))


# --- QA ------------------------------------------------------------------------------------------


class ScoreItemOut(BaseModel):
    key: str
    en: str
    zh: str
    weight: int = Field(description="percent of the total; the weights add up to 100")


class ScorecardOut(BaseModel):
    items: list[ScoreItemOut]
    defect_kinds: list[str]


class QaSampleOut(BaseModel):
    id: int
    ticket_id: int
    operator: str
    sampled_at: datetime
    how: str
    inspector: str | None
    scored_at: datetime | None
    score_centi: int | None = Field(description="weighted score in hundredths (0..10000)")
    items: dict[str, int]
    defects: list[str]
    finding: str


class DrawOut(BaseModel):
    sample_ids: list[int]


@router.get("/qa/scorecard", response_model=ScorecardOut, summary="Scorecard and defect kinds")
@area("qa")
def scorecard(user: User) -> ScorecardOut:
    return ScorecardOut(
        items=[ScoreItemOut.model_validate(i, from_attributes=True) for i in qa.SCORECARD],
        defect_kinds=list(qa.DEFECT_KINDS),
    )


@router.get("/qa/samples", response_model=list[QaSampleOut], summary="QA worklist")
@area("qa")
def qa_samples(
    user: User,
    ctx: Ctx,
    scored: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[QaSampleOut]:
    return [
        QaSampleOut.model_validate(s, from_attributes=True)
        for s in qa.worklist(ctx, scored=scored, limit=limit)
    ]


@router.post("/qa/draw", response_model=DrawOut, summary="Draw a random QA sample (inspector)")
def qa_draw(user: User, ctx: Ctx, body: DrawIn | None = None) -> DrawOut:
    body = body or DrawIn()
    return DrawOut(sample_ids=draw_samples(ctx, user, body.count))


@router.post(
    "/qa/samples/{sample_id}/score",
    response_model=QaSampleOut,
    summary="Score a sample (inspector)",
)
def qa_score(sample_id: RowId, body: ScoreIn, user: User, ctx: Ctx) -> QaSampleOut:
    view = qa.score(
        ctx,
        actor_of(user),
        sample_id,
        items=body.items,
        defects=body.defects,
        finding=body.finding,
    )
    return QaSampleOut.model_validate(view, from_attributes=True)


# --- suggestions ---------------------------------------------------------------------------------


@router.get(
    "/suggestions",
    response_model=list[SuggestionOut],
    summary="Suggestions not yet sent: to classify, or classified and waiting for the batch",
)
@area("suggestions")
def suggestion_list(
    user: User,
    ctx: Ctx,
    classified: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SuggestionOut]:
    return [
        SuggestionOut.model_validate(s, from_attributes=True)
        for s in suggestions.worklist(ctx, classified=classified, limit=limit, role=user.role)
    ]


@router.post(
    "/suggestions/{ticket_id}/classify",
    response_model=SuggestionOut,
    summary="Classify a suggestion (materials clerk); again to change it before it is sent",
)
def suggestion_classify(ticket_id: RowId, body: ClassifyIn, user: User, ctx: Ctx) -> SuggestionOut:
    suggestions.classify(ctx, actor_of(user), ticket_id, body.label)
    view = suggestions.get(ctx, ticket_id, role=user.role)
    return SuggestionOut.model_validate(view, from_attributes=True)


@router.post(
    "/suggestions/batches",
    response_model=BatchOut,
    summary="Send every classified, unsent suggestion to the province as one batch (clerk)",
)
def suggestion_batch(user: User, ctx: Ctx) -> BatchOut:
    return send_suggestions(ctx, user)


# --- province notices ----------------------------------------------------------------------------


class NoticeOut(BaseModel):
    notice_seq: int
    kind: str
    priority: str
    title: str
    body: str
    sender: str
    created_at: datetime
    received_at: datetime
    task_deadline: datetime | None
    read_at: datetime | None
    done_at: datetime | None
    done_note: str | None
    objection_at: datetime | None
    objection_reason: str | None
    handled_note: str | None = Field(description="what the node did with it by itself")
    reply_to_seq: int | None = Field(
        None, description="the notice this one answers (the province's answer to an objection)"
    )


class ReceiptOut(BaseModel):
    notice_seq: int
    outbox_seq: int = Field(description="the receipt's seq in the outbox to the province")


@router.get("/inbox", response_model=list[NoticeOut], summary="Province notices, newest first")
@area("inbox")
def inbox(
    user: User, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[NoticeOut]:
    return [
        NoticeOut.model_validate(n, from_attributes=True)
        for n in services.inbox(ctx.engine, limit=limit, role=user.role)
    ]


@router.post(
    "/inbox/{notice_seq}/receipts",
    response_model=ReceiptOut,
    status_code=201,
    summary="Read / done / objection receipt for a notice (leader)",
)
def notice_receipt(notice_seq: RowId, body: ReceiptIn, user: User, ctx: Ctx) -> ReceiptOut:
    seq = record_receipt(ctx, user, notice_seq, body.action, body.note)
    return ReceiptOut(notice_seq=notice_seq, outbox_seq=seq)


# --- access log --------------------------------------------------------------------------------


class AccessOut(BaseModel):
    at: datetime
    staff_id: str
    role: str
    ticket_id: int | None = Field(description="None: a phone search that found nothing")
    what: str = Field(description="ticket detail / phone search")


@router.get(
    "/access-log",
    response_model=list[AccessOut],
    summary="Who read customers' data unmasked, newest first (leader)",
)
def access_log(
    user: User, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[AccessOut]:
    entries = personal_data.access_log(ctx, actor_of(user), limit=limit)
    return [AccessOut.model_validate(e, from_attributes=True) for e in entries]


# --- link --------------------------------------------------------------------------------------


@router.get("/link", response_model=LinkOut, summary="The link to the province")
@area("link")
def link(user: User, request: Request) -> LinkOut:
    return link_status(request.app.state.outbox, request.app.state.link_silent_after)
