"""Builds the console's FastAPI application: routers, error mapping, language, headers.

Refusals from the services become HTTP statuses here, in one table, so every route stays a
parse-call-answer edge::

    NotLoggedIn                               401 (pages: redirect to the login form)
    NotAllowed, CsrfRefused, PermissionDenied 403
    NotFound                                  404
    Conflict, IllegalTransition               409
    CityError, InvalidTicket, UnknownCategory 422 (bad input; the message names the field)

The API answers ``{"detail": "<message>"}``; pages show the same message on an error page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from city_node.categories import UnknownCategory
from city_node.context import CityContext, CityError, Conflict, NotFound
from city_node.domain import DomainError, IllegalTransition, PermissionDenied
from city_node.web import api, pages
from city_node.web.auth import CsrfRefused, NotAllowed, NotLoggedIn, SessionSigner
from city_node.web.i18n import DEFAULT_LANG, pick_lang
from sync.outbox import Outbox

HERE = Path(__file__).parent
LANG_COOKIE = "fedsync_lang"
_YEAR = 365 * 24 * 3600


def status_for(exc: Exception) -> int:
    """The HTTP status of a refusal (table in the module docstring)."""
    if isinstance(exc, NotLoggedIn):
        return 401
    if isinstance(exc, NotAllowed | CsrfRefused | PermissionDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict | IllegalTransition):
        return 409
    return 422


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _validation_message(exc: RequestValidationError) -> str:
    """One sentence naming each bad field, e.g. ``body.kind: Input should be …``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app(
    ctx: CityContext, outbox: Outbox, *, secret_key: bytes, secure_cookies: bool = False
) -> FastAPI:
    """The console for one city store. ``secure_cookies`` marks cookies HTTPS-only (set it
    when the console is served over TLS, directly or behind a proxy)."""
    app = FastAPI(
        title=f"fedsync city console {ctx.city_code}",
        version="1",
        description=(
            "City staff API: tickets, report approval, QA, province notices, link status. "
            "Authenticate with HTTP Basic (staff id and password) or the console's session "
            "cookie plus the X-CSRF-Token header for changes."
        ),
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.outbox = outbox
    app.state.signer = SessionSigner(secret_key)
    app.state.secure_cookies = secure_cookies
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.middleware("http")
    async def language_and_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        asked = pick_lang(request.query_params.get("lang"))
        request.state.lang = asked or pick_lang(request.cookies.get(LANG_COOKIE)) or DEFAULT_LANG
        response = await call_next(request)
        if asked is not None:
            response.set_cookie(
                LANG_COOKIE, asked, max_age=_YEAR, samesite="lax", secure=secure_cookies
            )
        if request.url.path != app.docs_url:  # Swagger UI needs its scripts
            # No script runs in the console; forbid it all, and framing (clickjacking).
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'",
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    async def refused(request: Request, exc: Exception) -> Response:
        status = status_for(exc)
        message = str(exc)
        if isinstance(exc, RequestValidationError):
            message, status = _validation_message(exc), 422
        if _is_api(request):
            headers = {"WWW-Authenticate": 'Basic realm="fedsync"'} if status == 401 else None
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        if status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":  # a form's target cannot be reopened by a GET
                target = "/tickets"
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        # The error page reads the account for its menu: off the event loop, like routes.
        return await run_in_threadpool(pages.error_page, request, status, message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _is_api(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        return await run_in_threadpool(pages.error_page, request, exc.status_code, str(exc.detail))

    handled: tuple[type[Exception], ...] = (
        NotLoggedIn,
        NotAllowed,
        CsrfRefused,
        CityError,
        DomainError,
        UnknownCategory,
        RequestValidationError,
    )
    for kind in handled:
        app.add_exception_handler(kind, refused)
    app.add_exception_handler(StarletteHTTPException, http_error)
    return app
