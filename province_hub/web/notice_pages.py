"""The supervisor web's notice pages: the list with each notice's completion, one notice
with what every targeted city did with it (and the answers to objections), the board of
open tasks, and composing: form → preview → send, where a notice to every city needs a
second, explicit confirmation on the preview.

Each route checks the role table (:mod:`province_hub.web.access`), calls one function of
:mod:`province_hub.notices` (the same ones ``fedsync hub notice`` and the API call) and
renders or redirects (post/redirect/get). A draft the service refuses comes back as the
form, filled in as sent, with the message naming the field in the page's language (422):
nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from province_hub import notice_board, notices
from province_hub.staff import HubMember, HubRole
from province_hub.web.access import may, personal
from province_hub.web.context import HubWeb, hub_of
from province_hub.web.notice_api import Seq
from province_hub.web.pages import CsrfForm, User, render
from sync.web.app import lang_of, say_refusal
from sync.web.auth import area, client_address

router = APIRouter(include_in_schema=False)

#: The form's text fields, carried from the form to the preview and back.
FIELDS = (
    "kind",
    "title",
    "body",
    "priority",
    "to",
    "deadline",
    "category",
    "question",
    "answer",
    "version",
    "key",
    "about_city",
    "source",
)


def _local(hub: HubWeb) -> Any:
    def local(moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(hub.zone).strftime("%Y-%m-%d %H:%M")

    return local


def _page(request: Request, template: str, user: HubMember, **context: Any) -> HTMLResponse:
    hub = hub_of(request)
    return render(
        request,
        template,
        user=user,
        local=_local(hub),
        names=hub.names(lang_of(request)),
        **context,
    )


def _fields(form: FormData) -> tuple[dict[str, str], list[str]]:
    fields = {name: str(form.get(name, "")) for name in FIELDS}
    targets = [str(t) for t in form.getlist("targets")]
    return fields, targets


def _compose(
    request: Request,
    user: HubMember,
    *,
    fields: dict[str, str] | None = None,
    targets: list[str] | None = None,
    error: notices.NoticeError | None = None,
) -> HTMLResponse:
    kinds = notices.sendable_kinds(HubRole(user.role))
    values = fields or {"kind": kinds[0] if kinds else "", "priority": "normal", "to": "all"}
    return _page(
        request,
        "notice_compose.html",
        user,
        status_code=422 if error else 200,
        kinds=kinds,
        priorities=list(notices.PRIORITIES),
        sources=list(notices.FINDING_SOURCES),
        category_names=hub_of(request).category_names(lang_of(request)),
        fields=values,
        targets=targets or [],
        error=say_refusal(request, error) if error else "",
        error_field=error.field if error else "",
    )


def _titles(hub: Any, request: Request, seqs: list[int]) -> dict[int, str]:
    """Titles of the hub's own notices in the page's language (their wire titles are the
    English ones)."""
    return notice_board.titles_zh(hub.engine, seqs) if lang_of(request) == "zh" else {}


#: Notices one page lists; older ones are a link away.
PAGE_NOTICES = 200


@router.get("/notices", response_class=HTMLResponse)
@area("notices")
def notices_page(
    request: Request,
    user: User,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> Response:
    hub = hub_of(request)
    now = hub.local_now()
    rows = notice_board.list_notices(hub.engine, now=now, limit=PAGE_NOTICES, offset=offset)
    return _page(
        request,
        "notices.html",
        user,
        rows=rows,
        titles=_titles(hub, request, [r["seq"] for r in rows]),
        total=notice_board.count_notices(hub.engine),
        offset=offset,
        page_size=PAGE_NOTICES,
        completion=notice_board.completion_kpi(hub.engine),
        may_compose=may(user, "notices.compose"),
    )


@router.get("/notices/board", response_class=HTMLResponse)
@area("notices")
def board_page(request: Request, user: User, city: Annotated[str, Query()] = "") -> Response:
    hub = hub_of(request)
    chosen = notices.board_city(city, hub.roster_codes)
    return _page(
        request,
        "notice_board.html",
        user,
        rows=notice_board.open_tasks(hub.engine, now=hub.local_now(), city=chosen),
        completion=notice_board.completion_kpi(hub.engine),
        city=city,
        roster=hub.roster,
    )


@router.get("/notices/new", response_class=HTMLResponse)
@area("notices.compose")
def compose_page(request: Request, user: User) -> Response:
    return _compose(request, user)


@router.post("/notices/new", response_class=HTMLResponse)
@area("notices.compose")
def compose_again(request: Request, user: User, form: CsrfForm) -> Response:
    """Back from the preview to the form, as filled in."""
    fields, targets = _fields(form)
    return _compose(request, user, fields=fields, targets=targets)


@router.post("/notices/preview", response_class=HTMLResponse)
@area("notices.compose")
def preview_page(request: Request, user: User, form: CsrfForm) -> Response:
    hub = hub_of(request)
    fields, targets = _fields(form)
    try:
        draft = notices.draft_from_form(fields, targets, hub.zone)
        shown = notices.preview(
            hub.engine,
            draft,
            roster_codes=hub.roster_codes,
            categories=hub.categories,
            sender=user.id,
            role=HubRole(user.role),
            now=hub.local_now(),
        )
    except notices.NoticeError as exc:
        return _compose(request, user, fields=fields, targets=targets, error=exc)
    return _page(
        request,
        "notice_preview.html",
        user,
        fields=fields,
        targets=targets,
        notice=shown.notice,
        deadline=draft.deadline,
        detail=notice_board.detail_of(shown.notice),
        target_codes=shown.targets,
        all_cities=shown.all_cities,
    )


@router.post("/notices/send")
@area("notices.compose")
def send_notice(request: Request, user: User, form: CsrfForm) -> Response:
    hub = hub_of(request)
    fields, targets = _fields(form)
    try:
        draft = notices.draft_from_form(fields, targets, hub.zone)
        sent = notices.send(
            hub.engine,
            draft,
            roster_codes=hub.roster_codes,
            categories=hub.categories,
            actor=user.id,
            role=HubRole(user.role),
            address=client_address(request),
            confirm_all=form.get("confirm_all") == "yes",
            now=hub.local_now(),
            on_sent=hub.on_notice,
        )
    except notices.NoticeError as exc:
        return _compose(request, user, fields=fields, targets=targets, error=exc)
    return RedirectResponse(f"/notices/{sent.seq}", status_code=303)


@router.get("/notices/{seq}", response_class=HTMLResponse)
@area("notices")
def notice_page(request: Request, user: User, seq: Seq) -> Response:
    hub = hub_of(request)
    return _page(
        request,
        "notice_detail.html",
        user,
        n=notice_board.notice_detail(hub.engine, seq, now=hub.local_now(), personal=personal(user)),
        titles=_titles(hub, request, [seq]),
        may_answer=may(user, "notices.answer"),
    )


@router.post("/notices/{seq}/answer")
@area("notices.answer")
def answer_objection(request: Request, user: User, seq: Seq, form: CsrfForm) -> Response:
    hub = hub_of(request)
    notices.answer_objection(
        hub.engine,
        notice_seq=seq,
        city_code=str(form.get("city_code", "")),
        answer=str(form.get("answer", "")),
        actor=user.id,
        role=HubRole(user.role),
        address=client_address(request),
        now=hub.local_now(),
        on_sent=hub.on_notice,
    )
    return RedirectResponse(f"/notices/{seq}#city-{form.get('city_code', '')}", status_code=303)
