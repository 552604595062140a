"""Pages of the province's desks: the escalation desk (queue, one case with its forms),
ticket traces, and the audit log for admins.

Forms post with the CSRF field and redirect back (post/redirect/get); each calls the same
use case as the API (:mod:`province_hub.desk`), which writes the audit row. A bad field is
a 422 page naming it, and nothing changes.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from province_hub import audit, desk, desk_views
from province_hub.audit import Action
from province_hub.staff import HubMember, HubRole, list_staff
from province_hub.web.access import acting, may, page_user, personal
from province_hub.web.context import hub_of
from province_hub.web.desk_api import ask_trace, audit_filters, queue_of, resolve_case
from province_hub.web.desk_tables import (
    WORDS,
    action_word,
    ages,
    audit_table,
    local,
    queue_table,
    traces_table,
    word,
)
from province_hub.web.pages import render
from sync.web.app import lang_of
from sync.web.auth import area, check_form_csrf
from sync.web.i18n import ticket_word
from sync.web.params import BLANK_IS_NONE, FormDay

router = APIRouter(include_in_schema=False)
User = Annotated[HubMember, Depends(page_user)]
CsrfForm = Annotated[FormData, Depends(check_form_csrf)]
CityPath = Annotated[str, Path(pattern=r"^\d{6}$")]
SeqPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _back(city: str, seq: int) -> RedirectResponse:
    return RedirectResponse(f"/desk/{city}/{seq}", status_code=303)


@router.get("/desk", response_class=HTMLResponse)
@area("desk")
def desk_page(
    request: Request,
    user: User,
    city: Annotated[str, Query(pattern=r"^(\d{6})?$")] = "",
    category: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query()] = "open",
    sort: Annotated[str, Query()] = "age",
    order: Annotated[str, Query(pattern=r"^(asc|desc)$")] = "desc",
) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    rows = queue_of(
        hub,
        city=city,
        category=category,
        state=state,
        sort=sort,
        order=order,
        personal=personal(user),
    )
    return render(
        request,
        "desk.html",
        user=user,
        table=queue_table(rows, hub, lang, hub.names(lang)),
        roster=hub.roster,
        city=city,
        category=category,
        state=state,
        sort=sort,
        order=order,
        states=desk_views.STATES,
        sorts=desk_views.SORTS,
        word=lambda v: word(v, lang),
        limit=hub.escalation_limit_days,
        overdue=sum(1 for r in rows if r["overdue"]),
        export_query=urlencode(
            [
                (k, v)
                for k, v in (
                    ("city", city),
                    ("category", category),
                    ("state", state),
                    ("sort", sort),
                    ("order", order),
                )
                if v
            ]
        ),
    )


@router.get("/desk/{city}/{seq}", response_class=HTMLResponse)
@area("desk")
def case_page(request: Request, user: User, city: CityPath, seq: SeqPath) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    found = desk_views.case(hub.engine, ages(hub), city_code=city, seq=seq, personal=personal(user))
    colleagues = [m for m in list_staff(hub.engine) if m.active and m.role is HubRole.GM_HOTLINE]
    return render(
        request,
        "desk_case.html",
        user=user,
        case=found,
        city_name=hub.names(lang).get(city, city),
        category_name=hub.category_names(lang).get(found["category"], ""),
        works=may(user, "desk.work"),
        colleagues=colleagues,
        outcomes=desk.OUTCOMES,
        channels=desk.CONTACT_CHANNELS,
        word=lambda v: word(v, lang),
        ticket_word=lambda v: ticket_word(v, lang),
        when=lambda v: local(v, hub) or "-",
        limit=hub.escalation_limit_days,
    )


@router.post("/desk/{city}/{seq}/take")
@area("desk.work")
def take_form(
    request: Request, user: User, city: CityPath, seq: SeqPath, form: CsrfForm
) -> Response:
    desk.take(
        hub_of(request).engine,
        city_code=city,
        seq=seq,
        assignee=_field(form, "assignee").strip() or user.id,
        **acting(request, user),
    )
    return _back(city, seq)


@router.post("/desk/{city}/{seq}/note")
@area("desk.work")
def note_form(
    request: Request, user: User, city: CityPath, seq: SeqPath, form: CsrfForm
) -> Response:
    desk.add_entry(
        hub_of(request).engine,
        city_code=city,
        seq=seq,
        kind="note",
        text=_field(form, "text"),
        **acting(request, user),
    )
    return _back(city, seq)


@router.post("/desk/{city}/{seq}/contact")
@area("desk.work")
def contact_form(
    request: Request, user: User, city: CityPath, seq: SeqPath, form: CsrfForm
) -> Response:
    desk.add_entry(
        hub_of(request).engine,
        city_code=city,
        seq=seq,
        kind="contact",
        channel=_field(form, "channel"),
        text=_field(form, "text"),
        **acting(request, user),
    )
    return _back(city, seq)


@router.post("/desk/{city}/{seq}/resolve")
@area("desk.work")
def resolve_form(
    request: Request, user: User, city: CityPath, seq: SeqPath, form: CsrfForm
) -> Response:
    outcome = _field(form, "outcome")
    if outcome not in desk.OUTCOMES:
        raise desk.DeskError(
            "desk.choose", field="outcome", value=outcome, allowed=", ".join(desk.OUTCOMES)
        )
    resolve_case(request, user, city, seq, outcome, _field(form, "resolution"))
    return _back(city, seq)


# --- traces ---------------------------------------------------------------------------------


@router.get("/traces", response_class=HTMLResponse)
@area("traces")
def traces_page(request: Request, user: User) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    rows = desk_views.traces(hub.engine, personal=personal(user))
    return render(
        request,
        "traces.html",
        user=user,
        table=traces_table(rows, hub, lang, hub.names(lang)),
        answers=[r for r in rows if r["answer"] is not None],
        names=hub.names(lang),
        roster=hub.roster,
        asks=may(user, "traces.request"),
        ticket_word=lambda v: ticket_word(v, lang),
        when=lambda v: local(v, hub) or "-",
    )


@router.post("/traces")
@area("traces.request")
def trace_form(request: Request, user: User, form: CsrfForm) -> Response:
    ask_trace(hub_of(request), request, user, _field(form, "city"), _field(form, "ticket"))
    return RedirectResponse("/traces", status_code=303)


# --- audit ----------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
@area("audit")
def audit_page(
    request: Request,
    user: User,
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[Action | None, BLANK_IS_NONE, Query()] = None,
    date_from: Annotated[FormDay, Query(alias="from")] = None,
    date_to: Annotated[FormDay, Query(alias="to")] = None,
) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    found = audit.entries(
        hub.engine, actor=actor or None, action=action, **audit_filters(hub, date_from, date_to)
    )
    query: dict[str, Any] = {"actor": actor, "action": action.value if action else ""}
    query.update({"from": date_from.isoformat() if date_from else ""})
    query.update({"to": date_to.isoformat() if date_to else ""})
    return render(
        request,
        "audit.html",
        user=user,
        table=audit_table(found, hub, lang),
        # The filter sends the action's identifier and shows its name.
        actions=[(a.value, action_word(a.value, lang)) for a in Action],
        filters=query,
        export_query=urlencode({k: v for k, v in query.items() if v}),
    )


__all__ = ["WORDS", "router"]
