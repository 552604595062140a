"""Builds the city console's FastAPI application on the shared web foundation
(:mod:`sync.web.app`): the city's routers, templates, labels and refusals.

The foundation maps its own refusals (401 login, 403 role/CSRF, 429 throttled logins, 422
validation); the city hands it the roots of its refusals — the one tree under
:class:`~city_node.errors.CityError` (drawn with each status in :mod:`city_node.errors`) and
the category lookup's :class:`~sync.categories.UnknownCategory` — and
:func:`status_for`, so every route stays a parse-call-answer edge::

    PermissionDenied                          403
    NotFound                                  404
    Conflict, IllegalTransition               409
    CityError, InvalidTicket, UnknownCategory 422 (bad input; the message names the field)

The API answers ``{"detail": "<message>"}`` (a CityError's English sentence); pages show the
refusal on an error page in the page's language (:mod:`city_node.refusals`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from city_node.context import CityContext
from city_node.errors import CityError, Conflict, IllegalTransition, NotFound, PermissionDenied
from city_node.link_view import SILENT_AFTER
from city_node.refusals import CITY
from city_node.web import api, pages, report_review, staff_pages
from city_node.web.i18n import TABLE
from sync.categories import UnknownCategory
from sync.outbox import Outbox
from sync.web.app import MAX_BODY_BYTES, ConsoleSpec, create_console_app
from sync.web.throttle import LoginThrottle

HERE = Path(__file__).parent


def status_for(exc: Exception) -> int:
    """The HTTP status of a city refusal (table in the module docstring)."""
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict | IllegalTransition):
        return 409
    return 422


SPEC = ConsoleSpec(
    templates_dir=HERE / "templates",
    static_dir=HERE / "static",
    labels=TABLE,
    home="/tickets",
    error_page=pages.error_page,
    # The roots: DomainError and every other refusal are CityErrors (city_node.errors).
    handled=(CityError, UnknownCategory),
    status_for=status_for,
    refusals=CITY,
    repeatable_form_fields=frozenset({"defects"}),  # the QA score form's checkboxes
)


def create_app(
    ctx: CityContext,
    outbox: Outbox,
    *,
    secret_key: bytes,
    secure_cookies: bool = False,
    throttle: LoginThrottle | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    link_silent_after: timedelta = SILENT_AFTER,
) -> FastAPI:
    """The console for one city store. ``secure_cookies`` marks cookies HTTPS-only (set it
    when the console is served over TLS, directly or behind a proxy); ``link_silent_after``
    is when a connected link reads as silent (three of the node's heartbeat intervals)."""
    app = create_console_app(
        SPEC,
        title=f"fedsync city console {ctx.city_code}",
        description=(
            "City staff API: tickets, report approval, QA, province notices, link status. "
            "Authenticate with HTTP Basic (staff id and password) or the console's session "
            "cookie plus the X-CSRF-Token header for changes."
        ),
        secret_key=secret_key,
        secure_cookies=secure_cookies,
        throttle=throttle,
        max_body_bytes=max_body_bytes,
    )
    app.state.ctx = ctx
    app.state.outbox = outbox
    app.state.link_silent_after = link_silent_after
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(report_review.router)
    app.include_router(staff_pages.router)
    return app
