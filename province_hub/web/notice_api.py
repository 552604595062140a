"""``/api/v1/notices``: composing, previewing and following notices from a program.

The same functions as the pages (:mod:`province_hub.notices`), the same role table. A
draft's wrong field is a 422 whose ``detail`` names it (``title: must not be empty``);
a notice to every city needs ``confirm_all: true`` (the pages' second step).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from province_hub import notice_board, notices
from province_hub.staff import HubMember, HubRole
from province_hub.web import exports
from province_hub.web.access import api_user, personal
from province_hub.web.api import ERRORS, CityQ, Kpi, Problem
from province_hub.web.context import hub_of
from province_hub.web.notice_tables import board_table, notices_table
from sync.limits import INT64_MAX
from sync.web.auth import area, client_address
from sync.web.params import Flag, RequestModel, Whole
from sync.zones import in_zone

_ERRORS: dict[int | str, dict[str, Any]] = {
    # The rest of /api/v1's (401, 429 too many failed logins), in the notices' words.
    **ERRORS,
    403: {"model": Problem, "description": "the role may not do this, or CSRF header missing"},
    404: {"model": Problem, "description": "no such notice"},
    422: {"model": Problem, "description": "a field is invalid (the detail names it)"},
}

router = APIRouter(prefix="/api/v1", tags=["notices"], responses=_ERRORS)
Caller = Annotated[HubMember, Depends(api_user)]
#: A notice seq as the store can hold it (a larger one names nothing: 422, not a 500).
Seq = Annotated[int, Path(ge=1, le=INT64_MAX)]


class NoticeIn(RequestModel):
    """A notice to compose. ``targets`` empty: every city (then ``confirm_all`` must be
    true to send)."""

    kind: Literal["announcement", "task", "standard_answer", "finding"]
    title: str
    body: str = ""
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    targets: list[str] = Field(default_factory=list, description="roster city codes; [] = all")
    deadline: datetime | None = Field(
        None,
        description="task: when it must be done (ISO 8601; in the hub's zone unless it names "
        "its offset; a day alone, 2026-12-31, is by the end of that day, 23:59)",
    )
    category: str = Field("", description="standard_answer: category code")
    question: str = Field("", description="standard_answer: the question")
    answer: str = Field("", description="standard_answer: the answer every city gives")
    version: Whole = Field(0, description="standard_answer: 1, 2…; above the last one sent")
    key: str = Field("", description="standard_answer: kept across versions")
    about_city: str = Field("", description="finding: the city it is about")
    source: Literal["", "qa", "supervision"] = Field("", description="finding: where it is from")
    confirm_all: Flag = Field(False, description="required true for a notice to every city")

    @field_validator("deadline", mode="before")
    @classmethod
    def _day_alone(cls, value: Any) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str):  # a number would read as seconds since 1970
            raise ValueError("give an ISO 8601 date or date and time, as text")
        return notices.end_of_day(value)

    def draft(self, zone: Any) -> notices.Draft:
        deadline = self.deadline
        if deadline is not None and deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=zone)
        return notices.Draft(
            kind=self.kind,
            title=self.title,
            body=self.body,
            priority=self.priority,
            targets=tuple(self.targets),
            deadline=deadline,  # on another kind: refused by the service, naming it
            category=self.category,
            question=self.question,
            answer=self.answer,
            version=self.version,
            key=self.key,
            about_city=self.about_city,
            source=self.source,
        )


class PreviewOut(BaseModel):
    kind: str
    priority: str
    title: str
    body: str
    deadline: datetime | None
    detail: dict[str, Any]
    targets: list[str]
    all_cities: bool = Field(description="true: sending needs confirm_all")


class Sent(BaseModel):
    seq: int
    targets: list[str]


class AnswerIn(RequestModel):
    city_code: str
    answer: str


class NoticeRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int
    kind: str
    title: str
    targets: int
    delivered: int
    read: int
    done: int
    objections: int
    overdue: int
    completion: Kpi | None = Field(
        description="a task's cities done by its deadline / targeted; null for other kinds, "
        "which cities read and need not carry out"
    )


#: Every kind a notice of the hub has: the composed ones and those the hub writes itself.
NoticeKindQ = Literal[
    "announcement",
    "task",
    "standard_answer",
    "finding",
    "reminder",
    "rejection",
    "escalation_resolution",
    "trace_request",
]


class NoticeList(BaseModel):
    completion: Kpi = Field(
        description="province: task deliveries marked done by the deadline / all"
    )
    total: int = Field(description="notices of the kind asked for, in all")
    limit: int
    offset: int
    notices: list[NoticeRow]


def _preview_out(preview: notices.Preview, zone: Any) -> PreviewOut:
    """The notice as it would go; its deadline in the hub's zone, as every instant the API
    gives (the notice list and detail too)."""
    n = preview.notice
    return PreviewOut(
        kind=notice_board.kind_name(n.kind),
        priority=notice_board.priority_name(n.priority),
        title=n.title,
        body=n.body,
        deadline=(
            n.task_deadline.ToDatetime(UTC).astimezone(zone)
            if n.HasField("task_deadline")
            else None
        ),
        detail=notice_board.detail_of(n),
        targets=list(preview.targets),
        all_cities=preview.all_cities,
    )


@router.get("/notices", response_model=NoticeList, summary="Notices sent, newest first")
@area("notices")
def list_notices(
    request: Request,
    user: Caller,
    kind: Annotated[NoticeKindQ | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> dict[str, Any]:
    """A page of ``limit`` notices after the newest ``offset``; ``total`` says how many
    there are (of ``kind``), so that a client knows whether to ask for more."""
    hub = hub_of(request)
    return {
        "completion": notice_board.completion_kpi(hub.engine),
        "total": notice_board.count_notices(hub.engine, kind=kind),
        "limit": limit,
        "offset": offset,
        "notices": in_zone(
            notice_board.list_notices(
                hub.engine, now=hub.local_now(), kind=kind, limit=limit, offset=offset
            ),
            hub.zone,
        ),
    }


@router.get("/notices/board", summary="Open tasks across cities, earliest deadline first")
@area("notices")
def board(request: Request, user: Caller, city: CityQ = None) -> list[dict[str, Any]]:
    hub = hub_of(request)
    city = notices.board_city(city, hub.roster_codes)
    return list(
        in_zone(notice_board.open_tasks(hub.engine, now=hub.local_now(), city=city), hub.zone)
    )


#: Most notices an export carries (newest first); the list pages through the rest.
EXPORT_NOTICES = 50_000


@router.get(
    "/notices/export",
    response_class=Response,
    responses=exports.responses("the notice list as a file (CSV or XLSX)"),
    summary="Notices sent, as CSV or XLSX",
)
@area("notices")
def export_notices(
    request: Request,
    user: Caller,
    format: Annotated[exports.Format, Query()] = "csv",
    kind: Annotated[NoticeKindQ | None, Query()] = None,
) -> Response:
    """The notice list (of ``kind``) as a file, newest first, at most 50,000 notices: what
    each targeted city did, as ``GET /notices`` counts it; Chinese headers and words."""
    hub = hub_of(request)
    now = hub.local_now()
    rows: list[dict[str, Any]] = []
    while len(rows) < EXPORT_NOTICES:
        page = notice_board.list_notices(
            hub.engine, now=now, kind=kind, limit=1000, offset=len(rows)
        )
        rows.extend(page)
        if len(page) < 1000:
            break
    titles = notice_board.titles_zh(hub.engine, [r["seq"] for r in rows])
    table = notices_table(in_zone(rows[:EXPORT_NOTICES], hub.zone), titles)
    return exports.attachment(table, format, now)


@router.get(
    "/notices/board/export",
    response_class=Response,
    responses=exports.responses("the task board as a file (CSV or XLSX)"),
    summary="Open tasks across cities, as CSV or XLSX",
)
@area("notices")
def export_board(
    request: Request,
    user: Caller,
    format: Annotated[exports.Format, Query()] = "csv",
    city: Annotated[str | None, Query()] = None,
) -> Response:
    """The open-task board (of one ``city``, or all) as a file, earliest deadline first."""
    hub = hub_of(request)
    city = notices.board_city(city, hub.roster_codes)
    now = hub.local_now()
    rows = in_zone(notice_board.open_tasks(hub.engine, now=now, city=city), hub.zone)
    table = board_table(rows, hub.names("zh"))
    return exports.attachment(table, format, now)


@router.post("/notices/preview", response_model=PreviewOut, summary="Check, store nothing")
@area("notices.compose")
def preview(request: Request, user: Caller, body: NoticeIn) -> PreviewOut:
    hub = hub_of(request)
    shown = notices.preview(
        hub.engine,
        body.draft(hub.zone),
        roster_codes=hub.roster_codes,
        categories=hub.categories,
        sender=user.id,
        role=HubRole(user.role),
        now=hub.local_now(),
    )
    return _preview_out(shown, hub.zone)


@router.post("/notices", response_model=Sent, status_code=201, summary="Send a notice")
@area("notices.compose")
def send(request: Request, user: Caller, body: NoticeIn) -> Sent:
    hub = hub_of(request)
    sent = notices.send(
        hub.engine,
        body.draft(hub.zone),
        roster_codes=hub.roster_codes,
        categories=hub.categories,
        actor=user.id,
        role=HubRole(user.role),
        address=client_address(request),
        confirm_all=body.confirm_all,
        now=hub.local_now(),
        on_sent=hub.on_notice,
    )
    return Sent(seq=sent.seq, targets=list(sent.targets) or list(hub.roster_codes))


@router.get("/notices/{seq}", summary="One notice and what each targeted city did with it")
@area("notices")
def notice(request: Request, user: Caller, seq: Seq) -> dict[str, Any]:
    hub = hub_of(request)
    detail = notice_board.notice_detail(
        hub.engine, seq, now=hub.local_now(), personal=personal(user)
    ).as_dict()
    return dict(in_zone(detail, hub.zone))


@router.post(
    "/notices/{seq}/answers",
    response_model=Sent,
    status_code=201,
    summary="Answer a city's objection: a notice to that city only, linked to this one",
)
@area("notices.answer")
def answer(request: Request, user: Caller, seq: Seq, body: AnswerIn) -> Sent:
    hub = hub_of(request)
    sent = notices.answer_objection(
        hub.engine,
        notice_seq=seq,
        city_code=body.city_code,
        answer=body.answer,
        actor=user.id,
        role=HubRole(user.role),
        address=client_address(request),
        now=hub.local_now(),
        on_sent=hub.on_notice,
    )
    return Sent(seq=sent.seq, targets=list(sent.targets))
