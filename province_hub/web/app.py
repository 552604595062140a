"""Builds the supervisor web's FastAPI application on the shared web foundation
(:mod:`sync.web.app`): the hub's routers, templates, labels, and its refusals::

    FiguresError (a bad period, start, city, kpi, sort…)   422, naming the parameter
    DeskError (a desk action's bad input)                  422, naming the field
    CaseResolved (take or resolve a resolved case)         409
    CaseNotFound (no such escalation on the desk)          404
    NoticeError (a notice's field: empty title, past deadline…) 422, naming the field
    NoticeForbidden (a kind the role may not send)            403, naming who may
    NoticeNotFound (no such notice, city not targeted)        404

(the foundation maps 401 login, 403 role/CSRF, 429 throttled logins, 422 validation).
Each is a :class:`province_hub.refusals.HubRefusal`: the API answers its English sentence,
a page its sentence in the page's language.
Pages run one script of their own (the trend charts, with the vendored ECharts), so the
Content-Security-Policy allows scripts from the hub itself only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from province_hub.consolidation import FiguresError
from province_hub.desk import CaseNotFound, CaseResolved, DeskError
from province_hub.notices import NoticeError, NoticeForbidden, NoticeNotFound
from province_hub.refusals import HUB
from province_hub.web import (
    account_pages,
    api,
    desk_api,
    desk_pages,
    notice_api,
    notice_pages,
    pages,
)
from province_hub.web.context import HubWeb
from province_hub.web.i18n import TABLE
from sync.web.app import ConsoleSpec, create_console_app
from sync.web.throttle import LoginThrottle

HERE = Path(__file__).parent


def _status_for(exc: Exception) -> int:
    if isinstance(exc, CaseNotFound):
        return 404
    if isinstance(exc, CaseResolved):
        return 409
    if isinstance(exc, NoticeForbidden):
        return 403
    if isinstance(exc, NoticeNotFound):
        return 404
    return 422


SPEC = ConsoleSpec(
    templates_dir=HERE / "templates",
    static_dir=HERE / "static",
    labels=TABLE,
    home="/overview",
    error_page=pages.error_page,
    handled=(FiguresError, DeskError, CaseNotFound, NoticeError, NoticeForbidden, NoticeNotFound),
    status_for=_status_for,
    script_src="'self'",
    refusals=HUB,
    repeatable_form_fields=frozenset({"targets", "batch"}),  # chosen cities, batches seen
)


def create_app(
    hub: HubWeb,
    *,
    secret_key: bytes,
    secure_cookies: bool = False,
    throttle: LoginThrottle | None = None,
) -> FastAPI:
    """The supervisor web over one hub store."""
    app = create_console_app(
        SPEC,
        title="fedsync province supervision API",
        description=(
            "The province's consolidated picture: figures per city and province total with "
            "KPIs as {numerator, denominator, rate}, comparison and rankings, trends, report "
            "revisions, QA, overtime, hot-spots, suggestions, quarantine, link health, and "
            "every table as CSV or XLSX. Authenticate with HTTP Basic (hub staff id and "
            "password) or the web's session cookie plus X-CSRF-Token for changes."
        ),
        secret_key=secret_key,
        secure_cookies=secure_cookies,
        # Not the city console's purpose: a cookie signed for one is no good at the other.
        session_purpose=b"fedsync-hub-web-session",
        throttle=throttle,
    )
    app.state.hub = hub
    app.include_router(api.router)
    app.include_router(desk_api.router)
    app.include_router(notice_api.router)
    app.include_router(pages.router)
    app.include_router(desk_pages.router)
    app.include_router(notice_pages.router)
    app.include_router(account_pages.router)
    return app
