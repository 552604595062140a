"""Server-rendered console pages: plain HTML forms, one POST per thing a person does.

Each POST checks the CSRF field, calls the same helper the API uses, and redirects to the
page that shows the result (post/redirect/get), so a reload never repeats an action.
Refusals are rendered by :func:`error_page` with the service's sentence in the page's
language (:mod:`city_node.refusals`); a form value the API's model refuses, as
:class:`FormRefused`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from city_node import (
    labels,
    personal_data,
    qa,
    reports,
    review,
    services,
    staff,
    suggestions,
    ticket_list,
    tickets,
)
from city_node.context import CityContext, CityError
from city_node.domain import (
    STAFF_ROLES,
    Channel,
    CustomerTier,
    FollowUp,
    Role,
    Satisfaction,
    Status,
    TicketKind,
)
from city_node.link_view import link_view
from city_node.notice_refs import handled_text, notice_refs, notice_titles
from city_node.staff import StaffMember
from city_node.web import models
from city_node.web.auth import (
    Session,
    check_form_csrf,
    may,
    page_user,
    session_of,
    signed_in,
)
from city_node.web.i18n import Lang
from sync.passwords import MIN_PASSWORD
from sync.web.app import field_problem, lang_of, render_page
from sync.web.auth import NotAllowed, TooManyAttempts, area, safe_next, set_session
from sync.web.params import RequestModel
from sync.web.throttle import checked_login
from sync.zones import zone_label

router = APIRouter(include_in_schema=False)

User = Annotated[StaffMember, Depends(page_user)]
Csrf = Depends(check_form_csrf)
CsrfForm = Annotated[FormData, Csrf]

#: The menu: (path, label key, area or None for everyone), shown only where the role may go.
NAV: tuple[tuple[str, str, str | None], ...] = (
    ("/tickets", "nav_tickets", None),
    ("/tickets/new", "nav_new_ticket", "register"),
    ("/reports", "nav_reports", "reports"),
    ("/qa", "nav_qa", "qa"),
    ("/suggestions", "nav_suggestions", "suggestions"),
    ("/inbox", "nav_inbox", "inbox"),
    ("/link", "nav_link", "link"),
    ("/staff", "nav_staff", "staff"),
    ("/access-log", "nav_access_log", "access_log"),
)
#: What the register form offers as follow-up (tickets.register accepts these).
FOLLOW_UPS = tuple(FollowUp)


def _ctx(request: Request) -> CityContext:
    ctx: CityContext = request.app.state.ctx
    return ctx


def _lang(request: Request) -> Lang:
    lang: Lang = getattr(request.state, "lang", "zh")
    return lang


def _may_open(role: Role, area: str | None) -> bool:
    return area is None or may(role, area)


def render(
    request: Request,
    template: str,
    *,
    user: StaffMember | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page with the shared chrome (:func:`sync.web.app.render_page`): the menu for the
    user's role, times shown in the city's zone, category names in the request's language."""
    lang = _lang(request)
    ctx = _ctx(request)

    def local(moment: datetime | None) -> str:
        if moment is None:
            return ""
        return moment.astimezone(ctx.zone).strftime("%Y-%m-%d %H:%M")

    def category_name(code: str) -> str:
        if code not in ctx.categories:
            return code
        c = ctx.categories.get(code)
        return c.name_zh if lang == "zh" else c.name_en

    nav = [] if user is None else [(p, k) for p, k, area in NAV if _may_open(user.role, area)]
    return render_page(
        request,
        template,
        status_code=status_code,
        local=local,
        category_name=category_name,
        decision_text=lambda note: labels.decision_text(note, lang),
        user=user,
        nav=nav,
        city_code=ctx.city_code,
        brand_suffix=ctx.city_code,
        zone=zone_label(ctx.tz_name, lang),
        may=lambda area: user is not None and _may_open(user.role, area),
        **context,
    )


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The refusal page: the message a service gave, and a way back."""
    found = signed_in(request)  # none, e.g. at a refused login form: no menu then
    user = None
    if found is not None:
        user, request.state.session = found
    return render(request, "error.html", user=user, status_code=status_code, message=message)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(target: str) -> str:
    return safe_next(target, "/tickets")


# --- login -------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return _redirect("/tickets")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/tickets") -> Response:
    # The login form has a CSRF token too (login CSRF would sign a victim in as someone
    # else), so a visitor gets an anonymous session first.
    session = session_of(request) or Session.fresh()
    request.state.session = session
    response = render(request, "login.html", next=_safe_next(next), failed=False)
    set_session(request, response, session)
    return response


@router.post("/login", response_class=HTMLResponse, dependencies=[Csrf])
def login(
    request: Request,
    staff_id: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/tickets",
) -> Response:
    engine = _ctx(request).engine
    try:
        member = checked_login(
            request, staff_id.strip(), password, lambda who, pw: staff.authenticate(engine, who, pw)
        )
    except TooManyAttempts as exc:
        refused = render(
            request, "login.html", status_code=429, next=_safe_next(next), throttled=True
        )
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    if member is None:
        return render(request, "login.html", status_code=401, next=_safe_next(next), failed=True)
    response = _redirect(_safe_next(next))
    # A new token at login: one seen before signing in is no use afterwards.
    set_session(request, response, Session.fresh(member.id, generation=member.session_generation))
    return response


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request) -> Response:
    found = signed_in(request)
    if found is not None:
        # Ends this and every other session of the account, copies of the cookie included.
        staff.end_sessions(_ctx(request).engine, found[0].id)
    response = _redirect("/login")
    set_session(request, response, Session.fresh())
    return response


# --- tickets -----------------------------------------------------------------------------------


@router.get("/tickets", response_class=HTMLResponse)
def tickets_page(
    request: Request,
    user: User,
    status: str = "",
    kind: str = "",
    phone: str = "",
    open_only: bool = False,
    overtime_only: bool = False,
    extension_pending: bool = False,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    filters: tickets.Filters = {
        "status": status,
        "kind": kind,
        "phone": phone,
        "open_only": open_only,
        "overtime_only": overtime_only,
        "extension_pending": extension_pending,
    }
    shown = {k: v for k, v in filters.items() if v}
    # The search first: it refuses a phone search to the roles that may not make one (and
    # logs one), before anything is counted by that phone.
    rows = models.find_tickets(
        _ctx(request),
        user,
        status=status or None,
        kind=kind or None,
        phone=phone or None,
        open_only=open_only,
        overtime_only=overtime_only,
        extension_pending=extension_pending,
        limit=ticket_list.PAGE_SIZE,
        offset=offset,
    )
    total = tickets.count(_ctx(request), **filters)
    if not rows and offset and offset >= total:
        # Past the last page (a list that shrank, an edited URL): show the last page, so
        # the page number said is the page shown.
        last = max(0, (total - 1) // ticket_list.PAGE_SIZE * ticket_list.PAGE_SIZE)
        return _redirect("/tickets?" + urlencode({**shown, "offset": last}))
    more = None
    if len(rows) == ticket_list.PAGE_SIZE:
        more = "/tickets?" + urlencode({**shown, "offset": offset + ticket_list.PAGE_SIZE})
    return render(
        request,
        "tickets.html",
        user=user,
        rows=rows,
        filters=filters,
        statuses=list(Status),
        kinds=list(TicketKind),
        more=more,
        paging=ticket_list.paging(total, offset),
        page_url=lambda off: "/tickets?" + urlencode({**shown, "offset": off}),
        is_overtime=ticket_list.is_overtime,
    )


@router.get("/tickets/new", response_class=HTMLResponse)
def new_ticket_form(request: Request, user: User) -> Response:
    if not _may_open(user.role, "register"):
        # Not in their menu, so not by URL either (registering itself is checked again by
        # the service).
        raise NotAllowed("role.register_tickets")
    return render(
        request,
        "ticket_new.html",
        user=user,
        kinds=list(TicketKind),
        channels=list(Channel),
        tiers=list(CustomerTier),
        categories=list(_ctx(request).categories),
        follow_ups=FOLLOW_UPS,
    )


@router.post("/tickets", dependencies=[Csrf])
def register_ticket(
    request: Request,
    user: User,
    kind: Annotated[str, Form()],
    category: Annotated[str, Form()],
    channel: Annotated[str, Form()],
    customer_phone: Annotated[str, Form()],
    content: Annotated[str, Form()],
    customer_name: Annotated[str, Form()] = "",
    tier: Annotated[str, Form()] = "ordinary",
    then: Annotated[str, Form()] = "",
    branch: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    body = _model(
        models.TicketIn,
        kind=kind,
        category=category,
        channel=channel,
        customer_phone=customer_phone,
        customer_name=customer_name,
        tier=tier,
        content=content,
        then=then or None,
        branch=branch,
        note=note,
    )
    ticket_id = models.register_ticket(_ctx(request), user, body)
    return _redirect(f"/tickets/{ticket_id}")


def _number(text: str) -> int | str:
    """A form's whole number as an int for the API's strict models; other text is left for
    the model to refuse with its message."""
    text = text.strip()
    return int(text) if text.isascii() and text.lstrip("-").isdigit() and len(text) < 30 else text


def _model(model: type[RequestModel], **values: Any) -> Any:
    """Validate form values with the API's model, so both edges refuse the same input."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise FormRefused(exc.errors()) from None


class FormRefused(CityError):
    """Form values the API's model refuses, each named. Its message says them in English as
    the model does; a page says them in its language where the shared parser's sentences or
    the city's catalogue have them (else as the model said)."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        self.errors = list(errors)
        super().__init__("form.invalid", problems=self._problems("en"))

    def _problems(self, lang: str, word: Callable[[str], str] | None = None) -> str:
        return "; ".join(_problem(e, lang, word) for e in self.errors)

    def say(self, lang: str, word: Callable[[str], str] | None = None) -> str:
        return self.catalogue.say(self.code, lang, {"problems": self._problems(lang, word)})


def _problem(error: Mapping[str, Any], lang: str, word: Callable[[str], str] | None) -> str:
    """One refused form value: ``field: why``; a rule over the whole form (no field) is just
    its sentence. In English, as the API's model says it; in Chinese, the field's name and
    the sentence in Chinese where known."""
    return field_problem(error, None if lang == "en" else lang, CityError.catalogue, word)


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(
    request: Request, ticket_id: models.RowId, user: User, q: str = "", answer_category: str = ""
) -> Response:
    ctx = _ctx(request)
    detail = models.show_ticket(ctx, user, ticket_id, _lang(request))
    # Operators answer with the province's unified wording: offer it next to the ticket,
    # for its category or, when the province wrote none for it, the nearest parent's.
    category: str | None = answer_category or None
    found = models.search_answers(ctx, q, category)
    if not q and not answer_category:
        code: str | None = detail.category
        found = []
        while code and code in ctx.categories and not found:
            found = models.search_answers(ctx, "", code)
            category, code = code, ctx.categories.get(code).parent
    return render(
        request,
        "ticket.html",
        user=user,
        ticket=detail,
        outcomes=list(Satisfaction),
        answers=found,
        q=q,
        answer_category=category,
    )


@router.post("/tickets/{ticket_id}/act", dependencies=[Csrf])
def ticket_act(
    request: Request,
    ticket_id: models.RowId,
    user: User,
    action: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
    branch: Annotated[str | None, Form()] = None,
    outcome: Annotated[str, Form()] = "",
    reopen: Annotated[bool, Form()] = False,
    days: Annotated[str, Form()] = "",
    reason: Annotated[str | None, Form()] = None,
) -> Response:
    body = _model(
        models.ActionIn,
        action=action,
        note=note,
        branch=branch,
        outcome=outcome or None,
        reopen=reopen,
        days=_number(days) if days.strip() else None,
        reason=reason,
    )
    models.act_on_ticket(_ctx(request), user, ticket_id, body)
    return _redirect(f"/tickets/{ticket_id}")


#: An amount of yuan as a person types it: whole yuan, or yuan and one or two decimals.
_YUAN = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")


@router.post("/tickets/{ticket_id}/compensation", dependencies=[Csrf])
def ticket_compensation(
    request: Request,
    ticket_id: models.RowId,
    user: User,
    yuan: Annotated[str, Form(max_length=40)],
    note: Annotated[str, Form()] = "",
) -> Response:
    """The manager hotline's form: the amount in yuan (the API takes fen)."""
    amount = yuan.strip()
    if not _YUAN.fullmatch(amount):
        raise CityError("compensation.yuan", value=amount)
    body = _model(models.CompensationIn, fen=int(Decimal(amount) * 100), note=note)
    tickets.record_compensation(
        _ctx(request), models.actor_of(user), ticket_id, fen=body.fen, note=body.note
    )
    return _redirect(f"/tickets/{ticket_id}")


# --- reports -----------------------------------------------------------------------------------


@router.get("/reports", response_class=HTMLResponse)
@area("reports")
def reports_page(request: Request, user: User) -> Response:
    ctx = _ctx(request)
    pending = reports.pending(ctx)
    return render(
        request,
        "reports.html",
        user=user,
        pending=pending,
        reviews={r.id: review.review(ctx, r) for r in pending},
        recent=reports.recent(ctx, limit=30),
        figures_json=reports.figures_json,
        may_decide=may(user.role, "reports.decide"),
    )


@router.post("/reports/{report_id}/approve", dependencies=[Csrf])
def approve_report(
    request: Request, report_id: models.RowId, user: User, note: Annotated[str, Form()] = ""
) -> Response:
    reports.approve(_ctx(request), models.actor_of(user), report_id, note)
    return _redirect("/reports")


@router.post("/reports/{report_id}/reject", dependencies=[Csrf])
def reject_report(
    request: Request, report_id: models.RowId, user: User, note: Annotated[str, Form()] = ""
) -> Response:
    reports.reject(_ctx(request), models.actor_of(user), report_id, note)
    return _redirect("/reports")


# --- QA ------------------------------------------------------------------------------------------


@router.get("/qa", response_class=HTMLResponse)
@area("qa")
def qa_page(request: Request, user: User) -> Response:
    ctx = _ctx(request)
    return render(
        request,
        "qa.html",
        user=user,
        todo=qa.worklist(ctx),
        scored=qa.worklist(ctx, scored=True, limit=20),
        scorecard=qa.SCORECARD,
        defect_kinds=qa.DEFECT_KINDS,
        may_work=may(user.role, "qa.work"),
    )


@router.post("/qa/draw", dependencies=[Csrf])
def qa_draw(request: Request, user: User, count: Annotated[str, Form()] = "1") -> Response:
    body = _model(models.DrawIn, count=_number(count))
    models.draw_samples(_ctx(request), user, body.count)
    return _redirect("/qa")


@router.post("/qa/samples/{sample_id}/score")
def qa_score(request: Request, sample_id: models.RowId, user: User, form: CsrfForm) -> Response:
    # The scorecard's items are dynamic (item_<key> fields), so the form is read whole.
    items: dict[str, Any] = {}
    for item in qa.SCORECARD:
        raw = form.get(f"item_{item.key}")
        items[item.key] = _number(raw) if isinstance(raw, str) and raw.strip() else None
    finding = form.get("finding")
    body = _model(
        models.ScoreIn,
        items=items,
        defects=[d for d in form.getlist("defects") if isinstance(d, str)],
        finding=finding if isinstance(finding, str) else "",
    )
    qa.score(
        _ctx(request),
        models.actor_of(user),
        sample_id,
        items=body.items,
        defects=body.defects,
        finding=body.finding,
    )
    return _redirect("/qa")


# --- suggestions ---------------------------------------------------------------------------------


@router.get("/suggestions", response_class=HTMLResponse)
@area("suggestions")
def suggestions_page(request: Request, user: User) -> Response:
    ctx = _ctx(request)
    return render(
        request,
        "suggestions.html",
        user=user,
        todo=suggestions.worklist(ctx, role=user.role),
        waiting=suggestions.worklist(ctx, classified=True, role=user.role),
        may_work=may(user.role, "suggestions.work"),
    )


@router.post("/suggestions/{ticket_id}/classify", dependencies=[Csrf])
def suggestion_classify(
    request: Request, ticket_id: models.RowId, user: User, label: Annotated[str, Form()] = ""
) -> Response:
    body = _model(models.ClassifyIn, label=label)
    suggestions.classify(_ctx(request), models.actor_of(user), ticket_id, body.label)
    return _redirect("/suggestions")


@router.post("/suggestions/batches", dependencies=[Csrf])
def suggestion_batch(request: Request, user: User) -> Response:
    models.send_suggestions(_ctx(request), user)
    return _redirect("/suggestions")


# --- inbox, link, staff --------------------------------------------------------------------------


@router.get("/inbox", response_class=HTMLResponse)
@area("inbox")
def inbox_page(request: Request, user: User) -> Response:
    ctx = _ctx(request)
    notices = services.inbox(ctx.engine, role=user.role)
    return render(
        request,
        "inbox.html",
        user=user,
        notices=notices,
        superseded=services.superseded_answers(
            ctx.engine, [n.notice_seq for n in notices if n.kind == "STANDARD_ANSWER"]
        ),
        refs=notice_refs(ctx.engine, notices, ctx.zone),
        titles=notice_titles(notices, lang_of(request)),
        handled={n.notice_seq: handled_text(n.handled_note, lang_of(request)) for n in notices},
        may_receipt=may(user.role, "inbox.receipt"),
    )


@router.post("/inbox/{notice_seq}/receipt", dependencies=[Csrf])
def inbox_receipt(
    request: Request,
    notice_seq: models.RowId,
    user: User,
    action: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    body = _model(models.ReceiptIn, action=action, note=note)
    models.record_receipt(_ctx(request), user, notice_seq, body.action, body.note)
    return _redirect("/inbox")


@router.get("/link", response_class=HTMLResponse)
@area("link")
def link_page(request: Request, user: User) -> Response:
    view = link_view(
        request.app.state.outbox.snapshot(), silent_after=request.app.state.link_silent_after
    )
    return render(
        request,
        "link.html",
        user=user,
        link=models.link_out(view),
        view=view,
    )


@router.get("/access-log", response_class=HTMLResponse)
def access_log_page(request: Request, user: User) -> Response:
    entries = personal_data.access_log(_ctx(request), models.actor_of(user))
    return render(request, "access_log.html", user=user, entries=entries)


@router.get("/staff", response_class=HTMLResponse)
@area("staff")
def staff_page(request: Request, user: User) -> Response:
    return render(
        request,
        "staff.html",
        user=user,
        members=staff.all_staff(_ctx(request).engine),
        roles=STAFF_ROLES,
        min_password=MIN_PASSWORD,
    )
