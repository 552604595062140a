"""The console's JSON API under ``/api/v1``: request models and thin routes that call one
service each. Tickets and reports are shown through :mod:`city_node.views` (also used by the
pages and by ``fedsync city … --json``), so what a person sees and what a script gets are
the same data.

Routes are plain ``def``: FastAPI runs them in its thread pool, so database work never
blocks the node's event loop (the link to the province runs on it).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from city_node import domain, qa, reports, services, staff, tickets
from city_node.context import Actor, CityContext
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    FollowUp,
    Role,
    Satisfaction,
    Status,
    TicketKind,
)
from city_node.staff import StaffMember
from city_node.views import (
    ReportOut,
    TicketDetail,
    TicketSummary,
    report_out,
    ticket_detail,
    ticket_summary,
)
from city_node.web.auth import AREAS, api_user, may, require
from city_node.web.i18n import DEFAULT_LANG, Lang
from sync.outbox import Outbox
from sync.vocabulary import PeriodKind, ReceiptAction, ReportKind

router = APIRouter(prefix="/api/v1", tags=["city console"])

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


def actor_of(user: StaffMember) -> Actor:
    return Actor(user.id, user.role)


class _In(BaseModel):
    # A misspelt field is an error, not silently ignored (nothing half-done on a typo).
    model_config = ConfigDict(extra="forbid")


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
def list_staff(user: User, ctx: Ctx) -> list[StaffOut]:
    require(user, "staff")
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


class TicketIn(_In):
    """A ticket to register, with the operator's follow-up in the same request."""

    kind: TicketKind
    category: str = Field(description="a code of the category tree (/api/v1/categories)")
    channel: Channel
    customer_phone: str
    customer_name: str = ""
    tier: CustomerTier = CustomerTier.ORDINARY
    content: str
    then: FollowUp | None = Field(None, description="answer, dispatch, hand to a senior…")
    branch: str = Field("", description="the branch to dispatch to (then=dispatch)")
    note: str = ""


class ActionIn(_In):
    """One step on a ticket; which fields matter depends on the action."""

    action: Action
    note: str = ""
    branch: str | None = Field(None, description="dispatch: the branch")
    outcome: Satisfaction | None = Field(None, description="survey: the customer's answer")
    reopen: bool = Field(False, description="survey: a dissatisfied customer reopens it")
    days: int | None = Field(None, description="request_extension: working days wanted")
    reason: str | None = Field(None, description="request_extension: why")


class CompensationIn(_In):
    fen: int = Field(ge=0, description="compensation paid, in fen (1/100 yuan)")
    note: str


def register_ticket(ctx: CityContext, user: StaffMember, body: TicketIn) -> int:
    """Register (and follow up) a ticket; shared by the API and the register form."""
    stored = tickets.register(
        ctx,
        actor_of(user),
        tickets.NewTicket(
            kind=body.kind.value,
            category=body.category,
            channel=body.channel.value,
            customer_phone=body.customer_phone,
            customer_name=body.customer_name,
            tier=body.tier.value,
            content=body.content,
        ),
        then=Action(body.then) if body.then else None,
        branch=body.branch,
        note=body.note,
    )
    return int(stored.id)


def act_on_ticket(ctx: CityContext, user: StaffMember, ticket_id: int, body: ActionIn) -> None:
    params: dict[str, Any] = {"note": body.note}
    if body.branch is not None:
        params["branch"] = body.branch
    if body.outcome is not None:
        params["outcome"] = body.outcome.value
    if body.reopen:
        params["reopen"] = True
    if body.days is not None:
        params["days"] = body.days
    if body.reason is not None:
        params["reason"] = body.reason
    tickets.act(ctx, actor_of(user), ticket_id, body.action, **params)


@router.get("/tickets", response_model=list[TicketSummary], summary="Find tickets")
def list_tickets(
    user: User,
    ctx: Ctx,
    status: Status | None = None,
    kind: TicketKind | None = None,
    phone: str | None = None,
    operator: str | None = None,
    open_only: bool = False,
    overtime_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TicketSummary]:
    rows = tickets.search(
        ctx,
        status=status.value if status else None,
        kind=kind.value if kind else None,
        phone=phone or None,
        operator=operator or None,
        open_only=open_only,
        overtime_only=overtime_only,
        limit=limit,
        offset=offset,
    )
    return [ticket_summary(r) for r in rows]


@router.post("/tickets", response_model=TicketDetail, status_code=201, summary="Register a ticket")
def create_ticket(body: TicketIn, user: User, ctx: Ctx, lang: ReaderLang) -> TicketDetail:
    return ticket_detail(ctx, register_ticket(ctx, user, body), user.role, lang)


@router.get("/tickets/{ticket_id}", response_model=TicketDetail, summary="One ticket")
def get_ticket(ticket_id: int, user: User, ctx: Ctx, lang: ReaderLang) -> TicketDetail:
    return ticket_detail(ctx, ticket_id, user.role, lang)


@router.post(
    "/tickets/{ticket_id}/actions",
    response_model=TicketDetail,
    summary="Act on a ticket (dispatch, close, survey…)",
)
def ticket_action(
    ticket_id: int, body: ActionIn, user: User, ctx: Ctx, lang: ReaderLang
) -> TicketDetail:
    act_on_ticket(ctx, user, ticket_id, body)
    return ticket_detail(ctx, ticket_id, user.role, lang)


@router.post(
    "/tickets/{ticket_id}/compensation",
    response_model=TicketDetail,
    summary="Record compensation paid (manager hotline)",
)
def ticket_compensation(
    ticket_id: int, body: CompensationIn, user: User, ctx: Ctx, lang: ReaderLang
) -> TicketDetail:
    tickets.record_compensation(ctx, actor_of(user), ticket_id, fen=body.fen, note=body.note)
    return ticket_detail(ctx, ticket_id, user.role, lang)


# --- standard answers --------------------------------------------------------------------------


class AnswerOut(BaseModel):
    notice_seq: int
    topic: str
    category: str
    answer: str
    published_at: datetime


def search_answers(ctx: CityContext, q: str, category: str | None) -> list[AnswerOut]:
    found = services.search_answers(ctx.engine, q, category=category or None)
    return [AnswerOut.model_validate(a, from_attributes=True) for a in found]


@router.get("/answers", response_model=list[AnswerOut], summary="Search standard answers")
def answers(user: User, ctx: Ctx, q: str = "", category: str | None = None) -> list[AnswerOut]:
    return search_answers(ctx, q, category)


# --- reports -----------------------------------------------------------------------------------


class DraftIn(_In):
    kind: ReportKind
    period_kind: PeriodKind
    start: date = Field(description="first day of the period (local date)")


class DecisionIn(_In):
    note: str = Field("", description="the leader's note (required to reject)")


@router.get("/reports/pending", response_model=list[ReportOut], summary="Approval queue")
def pending_reports(user: User, ctx: Ctx) -> list[ReportOut]:
    require(user, "reports")
    return [report_out(r) for r in reports.pending(ctx)]


@router.get("/reports", response_model=list[ReportOut], summary="Recent reports")
def recent_reports(
    user: User, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[ReportOut]:
    require(user, "reports")
    return [report_out(r) for r in reports.recent(ctx, limit=limit)]


@router.post("/reports", response_model=ReportOut, status_code=201, summary="Draft a report")
def draft_report(body: DraftIn, user: User, ctx: Ctx) -> ReportOut:
    require(user, "reports")
    return report_out(
        reports.draft(ctx, body.kind, body.period_kind, body.start, by=user.id, role=user.role)
    )


@router.get("/reports/{report_id}", response_model=ReportOut, summary="One report")
def get_report(report_id: int, user: User, ctx: Ctx) -> ReportOut:
    require(user, "reports")
    return report_out(reports.get(ctx, report_id))


@router.post(
    "/reports/{report_id}/approve",
    response_model=ReportOut,
    summary="Approve a draft and queue it for the province (leader)",
)
def approve_report(report_id: int, body: DecisionIn, user: User, ctx: Ctx) -> ReportOut:
    return report_out(reports.approve(ctx, actor_of(user), report_id, body.note))


@router.post(
    "/reports/{report_id}/reject", response_model=ReportOut, summary="Reject a draft (leader)"
)
def reject_report(report_id: int, body: DecisionIn, user: User, ctx: Ctx) -> ReportOut:
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


class DrawIn(_In):
    count: int = Field(1, ge=1, le=1000, description="how many closed tickets to sample")


class DrawOut(BaseModel):
    sample_ids: list[int]


class ScoreIn(_In):
    items: dict[str, int] = Field(description="points 0-100 for every scorecard item")
    defects: list[str] = []
    finding: str = ""


@router.get("/qa/scorecard", response_model=ScorecardOut, summary="Scorecard and defect kinds")
def scorecard(user: User) -> ScorecardOut:
    require(user, "qa")
    return ScorecardOut(
        items=[ScoreItemOut.model_validate(i, from_attributes=True) for i in qa.SCORECARD],
        defect_kinds=list(qa.DEFECT_KINDS),
    )


@router.get("/qa/samples", response_model=list[QaSampleOut], summary="QA worklist")
def qa_samples(
    user: User,
    ctx: Ctx,
    scored: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[QaSampleOut]:
    require(user, "qa")
    return [
        QaSampleOut.model_validate(s, from_attributes=True)
        for s in qa.worklist(ctx, scored=scored, limit=limit)
    ]


def draw_samples(ctx: CityContext, user: StaffMember, count: int) -> list[int]:
    # draw() takes no actor (the schedule calls it too), so the role rule is checked here.
    domain.check_may(user.role, Action.SCORE_QA)
    return qa.draw(ctx, count=count, how="random", inspector=user.id)


@router.post("/qa/draw", response_model=DrawOut, summary="Draw a random QA sample (inspector)")
def qa_draw(body: DrawIn, user: User, ctx: Ctx) -> DrawOut:
    return DrawOut(sample_ids=draw_samples(ctx, user, body.count))


@router.post(
    "/qa/samples/{sample_id}/score",
    response_model=QaSampleOut,
    summary="Score a sample (inspector)",
)
def qa_score(sample_id: int, body: ScoreIn, user: User, ctx: Ctx) -> QaSampleOut:
    view = qa.score(
        ctx,
        actor_of(user),
        sample_id,
        items=body.items,
        defects=body.defects,
        finding=body.finding,
    )
    return QaSampleOut.model_validate(view, from_attributes=True)


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


class ReceiptIn(_In):
    action: ReceiptAction
    note: str = Field("", description="done: what was done; objection: the reason (required)")


class ReceiptOut(BaseModel):
    notice_seq: int
    outbox_seq: int = Field(description="the receipt's seq in the outbox to the province")


@router.get("/inbox", response_model=list[NoticeOut], summary="Province notices, newest first")
def inbox(
    user: User, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[NoticeOut]:
    require(user, "inbox")
    return [
        NoticeOut.model_validate(n, from_attributes=True)
        for n in services.inbox(ctx.engine, limit=limit)
    ]


def record_receipt(
    ctx: CityContext, user: StaffMember, notice_seq: int, action: str, note: str
) -> int:
    require(user, "inbox.receipt")
    return services.record_receipt(
        ctx.engine, notice_seq=notice_seq, action=action, actor=user.id, note=note
    )


@router.post(
    "/inbox/{notice_seq}/receipts",
    response_model=ReceiptOut,
    status_code=201,
    summary="Read / done / objection receipt for a notice (leader)",
)
def notice_receipt(notice_seq: int, body: ReceiptIn, user: User, ctx: Ctx) -> ReceiptOut:
    seq = record_receipt(ctx, user, notice_seq, body.action, body.note)
    return ReceiptOut(notice_seq=notice_seq, outbox_seq=seq)


# --- link --------------------------------------------------------------------------------------


class LinkOut(BaseModel):
    city_code: str
    state: str = Field(description="connected / backing-off / conflict / revoked / never …")
    backlog: int = Field(description="envelopes queued and not yet acknowledged by the hub")
    last_seq: int
    delivered_seq: int
    hub_acked_seq: int
    notice_cursor: int
    epoch: str
    last_push_at: datetime | None
    last_contact_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    last_rejection: str
    conflict_seq: int = Field(description="first seq the hub holds differently; 0 = none")
    oldest_unsent_at: datetime | None


def link_status(outbox: Outbox) -> LinkOut:
    snap = outbox.snapshot()
    return LinkOut(
        city_code=snap.city_code,
        state=snap.state,
        backlog=snap.backlog,
        last_seq=snap.last_seq,
        delivered_seq=snap.delivered_seq,
        hub_acked_seq=snap.hub_acked_seq,
        notice_cursor=snap.notice_cursor,
        epoch=snap.epoch,
        last_push_at=snap.last_push_at,
        last_contact_at=snap.last_contact_at,
        last_error=snap.last_error,
        last_error_at=snap.last_error_at,
        last_rejection=snap.last_rejection,
        # 0 until the hub refused a push for a sequence conflict.
        conflict_seq=snap.conflict_seq,
        oldest_unsent_at=snap.oldest_unsent_at,
    )


@router.get("/link", response_model=LinkOut, summary="The link to the province")
def link(user: User, request: Request) -> LinkOut:
    require(user, "link")
    return link_status(request.app.state.outbox)
