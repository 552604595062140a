"""Server-rendered pages of the supervisor web: plain HTML, one table renderer for every
view (the same :class:`~province_hub.web.tables.Table` the exports write), ECharts for the
trends. Each page checks the role table, calls the view function and renders; the one form
that changes something (suggestions seen) checks CSRF and redirects (post/redirect/get).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from province_hub import audit, notice_board, staff, supervision
from province_hub.audit import Action
from province_hub.consolidation import FiguresError
from province_hub.staff import HubMember
from province_hub.web import tables, views
from province_hub.web.access import may, page_user, signed_in
from province_hub.web.context import hub_of
from province_hub.web.tables import ALL_KPI_NAMES, RATE_KPIS, Table, cell_text
from province_hub.web.views import PeriodKind
from sync.web.app import lang_of, render_page
from sync.web.auth import (
    Session,
    TooManyAttempts,
    area,
    check_form_csrf,
    client_address,
    safe_next,
    session_of,
    set_session,
)
from sync.web.params import FormDay
from sync.web.throttle import checked_login

router = APIRouter(include_in_schema=False)
User = Annotated[HubMember, Depends(page_user)]
CsrfForm = Annotated[FormData, Depends(check_form_csrf)]

#: The menu: (path, label key, area); shown only where the role may go.
NAV: tuple[tuple[str, str, str], ...] = (
    ("/overview", "nav_overview", "figures"),
    ("/comparison", "nav_comparison", "figures"),
    ("/trends", "nav_trends", "figures"),
    ("/reports", "nav_reports", "reports"),
    ("/hotspots", "nav_hotspots", "hotspots"),
    ("/overtime", "nav_overtime", "overtime"),
    ("/qa", "nav_qa", "qa"),
    ("/suggestions", "nav_suggestions", "suggestions"),
    ("/quarantine", "nav_quarantine", "quarantine"),
    ("/links", "nav_links", "links"),
    ("/notices", "nav_notices", "notices"),
    ("/desk", "nav_desk", "desk"),
    ("/traces", "nav_traces", "traces"),
    ("/audit", "nav_audit", "audit"),
)
PERIODS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
Period = Annotated[PeriodKind, Query()]
Start = Annotated[FormDay, Query()]


def _home_for(user: HubMember) -> str:
    for path, _, where in NAV:
        if may(user, where):
            return path
    return "/links"


def render(
    request: Request,
    template: str,
    *,
    user: HubMember | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page with the shared chrome and the hub's menu for the user's role."""
    lang = lang_of(request)
    nav = [] if user is None else [(p, k) for p, k, where in NAV if may(user, where)]
    return render_page(
        request,
        template,
        status_code=status_code,
        user=user,
        nav=nav,
        cell=lambda column, value: cell_text(column, value, lang),
        periods=PERIODS,
        **context,
    )


def error_page(request: Request, status_code: int, message: str) -> Response:
    """The refusal page: the message a service gave, and a way back."""
    return render(
        request, "error.html", user=signed_in(request), status_code=status_code, message=message
    )


def _export_query(request: Request, **shown: str) -> str:
    """The page's query for its export links: its filters, not the language, and not the
    ones left blank in the filter form (no filter, which the API does not take as a value);
    ``shown`` in place of the page's own value of a parameter, for what the page chose
    itself and the export needs (the report browser's city when none was asked)."""
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k != "lang" and k not in shown and v
    ]
    params += list(shown.items())
    return urlencode(params)


def _table_page(
    request: Request,
    user: HubMember,
    *,
    title: str,
    view: str,
    tables_: list[Table],
    form: str = "period",
    export_shown: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    return render(
        request,
        "table_page.html",
        user=user,
        title_key=title,
        view=view,
        tables=tables_,
        form=form,
        export_query=_export_query(request, **(export_shown or {})),
        **context,
    )


# --- login ---


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    user = signed_in(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(_home_for(user), status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    # The login form has a CSRF token too (login CSRF would sign a victim in as someone
    # else), so a visitor gets an anonymous session first.
    session = session_of(request) or Session.fresh()
    request.state.session = session
    response = render(request, "login.html", next=safe_next(next, "/"), failed=False)
    set_session(request, response, session)
    return response


def _login_audit(request: Request, typed: str, member: HubMember | None, why: str) -> None:
    """A login, or a failed one, in the audit log: the account when it exists ("" for an
    id nobody has, so the log does not collect mistyped passwords pasted as ids)."""
    engine = hub_of(request).engine
    if member is not None:
        actor, role, action, detail = member.id, member.role.value, Action.LOGIN, ""
    else:
        known = staff.get_staff(engine, typed.strip()[:64]) if typed.strip() else None
        actor = known.id if known else ""
        role, action, detail = (known.role.value if known else ""), Action.LOGIN_FAILED, why
    audit.record_alone(
        engine,
        actor=actor,
        role=role,
        action=action,
        target=f"staff:{actor}" if actor else "",
        detail=detail,
        address=client_address(request),
    )


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(check_form_csrf)])
def login(
    request: Request,
    staff_id: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    engine = hub_of(request).engine
    target = safe_next(next, "/")
    try:
        member = checked_login(
            request, staff_id.strip(), password, lambda who, pw: staff.authenticate(engine, who, pw)
        )
    except TooManyAttempts as exc:
        _login_audit(request, staff_id, None, "throttled")
        refused = render(request, "login.html", status_code=429, next=target, throttled=True)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    _login_audit(request, staff_id, member, "wrong staff id or password")
    if member is None:
        return render(request, "login.html", status_code=401, next=target, failed=True)
    response = RedirectResponse(_home_for(member) if target == "/" else target, status_code=303)
    # A new token at login: one seen before signing in is no use afterwards.
    set_session(request, response, Session.fresh(member.id, generation=member.generation))
    return response


@router.post("/logout", dependencies=[Depends(check_form_csrf)])
def logout(request: Request) -> Response:
    session = session_of(request)
    if session is not None and session.staff_id is not None:
        engine = hub_of(request).engine
        member = staff.get_staff(engine, session.staff_id)
        if member is not None and session.generation == member.generation:
            # Logging out ends every session of the account (a copied cookie too); a cookie
            # that had ended already logs nobody out.
            staff.end_sessions(engine, member.id)
            audit.record_alone(
                engine,
                actor=member.id,
                role=member.role.value,
                action=Action.LOGOUT,
                address=client_address(request),
            )
    response = RedirectResponse("/login", status_code=303)
    set_session(request, response, Session.fresh())
    return response


# --- overview, comparison, trends ---


@router.get("/overview", response_class=HTMLResponse)
@area("figures")
def overview(
    request: Request, user: User, period: Period = "month", start: Start = None
) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    figures, comparison, timeliness = views.overview(hub, period, start)
    names = hub.names(lang)
    # Early warning looks at weeks (baseline: the 8 before), whatever period is shown.
    warnings = views.warnings(hub, "week", None)
    return render(
        request,
        "overview.html",
        user=user,
        period=period,
        start=comparison["period"]["start"],
        data=figures,
        comparison=comparison,
        kpi_table=tables.province_kpi_table(
            comparison, lang, figures["province"]["kpis"].get("report_timeliness")
        ),
        figures_table=tables.figures_table(figures, lang),
        warnings_table=tables.warnings_table(warnings, names, lang, hub.category_names(lang)),
        timeliness_table=tables.timeliness_table(timeliness, names, lang),
        links_table=tables.links_table(views.links(hub), names, lang),
        missing=[names.get(c, c) for c in figures["province"]["cities_missing"]],
        export_query=_export_query(request),
        completion=notice_board.completion_kpi(hub.engine) if may(user, "notices") else None,
        may_links=may(user, "links"),
    )


@router.get("/comparison", response_class=HTMLResponse)
@area("figures")
def comparison_page(
    request: Request,
    user: User,
    period: Period = "month",
    start: Start = None,
    sort: str = "city_code",
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
) -> Response:
    views.check_sort(sort)
    lang = lang_of(request)
    data = views.comparison(hub_of(request), period, start)
    table = tables.comparison_table(data, lang, sort=sort, descending=order == "desc")
    return _table_page(
        request,
        user,
        title="nav_comparison",
        view="comparison",
        tables_=[table],
        period=period,
        start=data["period"]["start"],
        sortable=tables.SORT_KEYS,
        sort=sort,
        order=order,
    )


@router.get("/trends", response_class=HTMLResponse)
@area("figures")
def trends_page(
    request: Request,
    user: User,
    period: Period = "month",
    last: Start = None,
    cities: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    names = hub.names(lang)
    # As the API reads them: repeated or comma-separated, at most MAX_TREND_CITIES.
    chosen = [c for c in dict.fromkeys(views.city_list(cities)) if c]
    charts = []
    every = views.trends(hub, list(ALL_KPI_NAMES), period, last, chosen)
    for name in ALL_KPI_NAMES:
        data = every[name]
        is_rate = name in RATE_KPIS

        def point(value: Any, is_rate: bool = is_rate) -> float | None:
            if value is None or value["rate" if is_rate else "numerator"] is None:
                return None
            return round(100 * float(value["rate"]), 2) if is_rate else float(value["numerator"])

        series = [
            {
                "name": "全省" if lang == "zh" else "Province",
                "data": [point(v) for v in data["province"]],
            }
        ] + [
            {"name": names.get(code, code), "data": [point(v) for v in values]}
            for code, values in data["cities"].items()
        ]
        charts.append(
            {
                "kpi": name,
                "title": ALL_KPI_NAMES[name][0 if lang == "zh" else 1],
                "unit": "%" if is_rate else "",
                "periods": data["periods"],
                "series": series,
            }
        )
    return render(
        request,
        "trends.html",
        user=user,
        period=period,
        last=charts[0]["periods"][-1],
        chosen=chosen,
        roster=hub.roster,
        charts=charts,
        charts_json=json.dumps(charts, ensure_ascii=False).replace("</", "<\\/"),
        export_query=_export_query(request),
    )


# --- report browser ---


@router.get("/reports", response_class=HTMLResponse)
@area("reports")
def reports_page(
    request: Request,
    user: User,
    city: str = "",
    period: Period = "month",
    start: Start = None,
) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    code = city or hub.roster_codes[0]
    data = views.reports(hub, code, period, start)
    shown = [tables.revisions_table(data, hub.city(code), lang)]
    for d in data["diffs"]:
        shown.append(tables.diff_table(d["changes"], d["from_revision"], d["to_revision"], lang))
    return _table_page(
        request,
        user,
        title="nav_reports",
        view="reports",
        tables_=shown,
        form="reports",
        # The export needs the city the page shows, the roster's first when none was asked.
        export_shown={"city": code},
        period=period,
        start=data["period"]["start"],
        city=code,
        roster=hub.roster,
        empty_key="no_revisions" if not data["revisions"] else None,
    )


# --- the other views ---


@router.get("/hotspots", response_class=HTMLResponse)
@area("hotspots")
def hotspots_page(
    request: Request, user: User, period: Period = "month", start: Start = None
) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    data = views.hotspots(hub, period, start)
    names = hub.names(lang)
    return _table_page(
        request,
        user,
        title="nav_hotspots",
        view="hotspots",
        tables_=[tables.hotspots_table(data, names, lang, hub.category_names(lang))],
        period=period,
        start=data["period"]["start"],
        not_compared=[names.get(c, c) for c in data["not_compared"]],
    )


@router.get("/overtime", response_class=HTMLResponse)
@area("overtime")
def overtime_page(
    request: Request, user: User, period: Period = "month", start: Start = None
) -> Response:
    data = views.overtime(hub_of(request), period, start)
    return _table_page(
        request,
        user,
        title="nav_overtime",
        view="overtime",
        tables_=[tables.overtime_table(data, lang_of(request))],
        period=period,
        start=data["period"]["start"],
    )


@router.get("/qa", response_class=HTMLResponse)
@area("qa")
def qa_page(
    request: Request, user: User, period: Period = "month", start: Start = None
) -> Response:
    data = views.qa(hub_of(request), period, start)
    return _table_page(
        request,
        user,
        title="nav_qa",
        view="qa",
        tables_=[tables.qa_table(data, lang_of(request))],
        period=period,
        start=data["period"]["start"],
    )


@router.get("/suggestions", response_class=HTMLResponse)
@area("suggestions")
def suggestions_page(
    request: Request,
    user: User,
    city: str = "",
    category: Annotated[str, Query(max_length=64)] = "",
    date_from: Annotated[FormDay, Query(alias="from")] = None,
    date_to: Annotated[FormDay, Query(alias="to")] = None,
) -> Response:
    hub = hub_of(request)
    lang = lang_of(request)
    batches = views.suggestions(hub, city or None, category or None, date_from, date_to)
    new = [(b["city_code"], b["seq"]) for b in batches if b["new"]]
    return _table_page(
        request,
        user,
        title="nav_suggestions",
        view="suggestions",
        tables_=[
            tables.suggestions_table(batches, hub.names(lang), lang, hub.category_names(lang))
        ],
        form="suggestions",
        roster=hub.roster,
        city=city,
        category=category,
        date_from=date_from.isoformat() if date_from else "",
        date_to=date_to.isoformat() if date_to else "",
        new_batches=new if may(user, "suggestions.seen") else [],
    )


@router.post("/suggestions/seen")
@area("suggestions.seen")
def suggestions_seen(request: Request, user: User, form: CsrfForm) -> Response:
    keys = []
    for value in form.getlist("batch"):
        code, _, seq = str(value).partition(":")
        if not (len(code) == 6 and code.isdigit() and seq.isdigit() and 0 < int(seq) < 2**63):
            raise FiguresError("figures.batch_key", parameter="batch", value=str(value)[:40])
        keys.append((code, int(seq)))
    supervision.mark_suggestions_seen(
        hub_of(request).engine,
        batches=keys,
        seen_by=user.id,
        role=user.role.value,
        address=client_address(request),
    )
    back = safe_next(str(form.get("back") or "/suggestions"), "/suggestions")
    return RedirectResponse(back, status_code=303)


@router.get("/quarantine", response_class=HTMLResponse)
@area("quarantine")
def quarantine_page(request: Request, user: User) -> Response:
    hub = hub_of(request)
    rows = views.quarantine(hub, None)
    return _table_page(
        request,
        user,
        title="nav_quarantine",
        view="quarantine",
        tables_=[tables.quarantine_table(rows, hub.names(lang_of(request)))],
        form="none",
    )


@router.get("/links", response_class=HTMLResponse)
@area("links")
def links_page(request: Request, user: User) -> Response:
    hub = hub_of(request)
    return _table_page(
        request,
        user,
        title="nav_links",
        view="links",
        tables_=[
            tables.links_table(views.links(hub), hub.names(lang_of(request)), lang_of(request))
        ],
        form="none",
    )


__all__ = ["NAV", "error_page", "router"]
