"""A console's FastAPI application before its routes: state, language, security headers,
templates, static files and the refusal → HTTP mapping.

Refusals become HTTP statuses in one place per console, so every route stays a
parse-call-answer edge. The foundation knows its own exceptions; a tier adds its domain
exceptions through ``status_for``::

    NotLoggedIn                401 (pages: redirect to the login form)
    NotAllowed, CsrfRefused    403
    TooManyAttempts            429 (with Retry-After)
    RequestValidationError     422 (the message names the parameter or field)
    anything in ``handled``    ``status_for(exc)``

Before any of that, :class:`sync.web.edge.EdgeGuard` refuses bodies over the cap (413) and
control characters (422), and turns anything unhandled into a 500 with an error id (503 with
``Retry-After`` for a locked SQLite store).

The API (paths under ``/api/``) answers ``{"detail": "<message>"}`` (a 500 adds
``error_id``); pages show the same message on the tier's error page, in the page's
language when the refusal is a :class:`sync.refusals.Refusal` (its catalogue sentence).
Every response but the static files carries ``Cache-Control: no-store``: pages and answers
show customers' data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync import passwords
from sync.refusals import COMMON, Catalogue, Refusal
from sync.web.auth import (
    CSRF_FIELD,
    CsrfRefused,
    NotAllowed,
    NotLoggedIn,
    Session,
    SessionSigner,
    TooManyAttempts,
    session_of,
)
from sync.web.edge import EdgeGuard
from sync.web.i18n import DEFAULT_LANG, Labels, Lang, pick_lang, preferred_lang
from sync.web.params import refuse_unread_body
from sync.web.throttle import LoginThrottle

HERE = Path(__file__).parent
LANG_COOKIE = "fedsync_lang"
#: Largest request body a console accepts, bytes (a tier's setting may change it).
MAX_BODY_BYTES = 1024 * 1024
_YEAR = 365 * 24 * 3600

ErrorPage = Callable[[Request, int, str], Response]


@dataclass(frozen=True)
class ConsoleSpec:
    """What a tier tells the foundation about its console."""

    #: The tier's templates (searched before the shared ``layout.html``, ``login.html``,
    #: ``error.html``) and static files (served at ``/static``; the shared ones at
    #: ``/static/common``).
    templates_dir: Path
    static_dir: Path
    labels: Labels
    #: Where a page request without a session is sent back to after logging in, when the
    #: request was not a GET.
    home: str
    #: Renders the tier's error page (called off the event loop: it may read the account).
    error_page: ErrorPage
    #: The tier's refusals and their status (see the module docstring).
    handled: Sequence[type[Exception]] = ()
    status_for: Callable[[Exception], int] = lambda exc: 422
    #: ``script-src`` of the pages' Content-Security-Policy: ``'none'`` where no page runs
    #: a script, ``'self'`` where pages run the console's own files (charts).
    script_src: str = "'none'"
    #: The tier's refusal catalogue: its ``fields`` name a form's fields in Chinese when a
    #: page says what the parser refused (``客户电话：必填``, not ``customer_phone：必填``).
    refusals: Catalogue = COMMON
    #: Form fields a page takes several values of (checkboxes: the chosen cities, QA
    #: defects); any other field given twice in a form is refused (422 naming it), as a
    #: query parameter is, rather than its last value silently taken.
    repeatable_form_fields: frozenset[str] = frozenset()


class LanguageAndHeaders:
    """Picks the request's language (``?lang=``, then the cookie, then the browser's
    ``Accept-Language``, else Chinese) into
    ``request.state.lang``, remembers an asked one in a cookie, and adds the security
    headers. Plain ASGI rather than ``@app.middleware``: that one copies every response
    body through a memory stream, a few milliseconds on a province's figures."""

    def __init__(self, app: ASGIApp, *, csp: str, secure_cookies: bool, skip_csp: str) -> None:
        self.app = app
        self.csp = csp
        self.secure_cookies = secure_cookies
        self.skip_csp = skip_csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        asked = pick_lang(request.query_params.get("lang"))
        scope.setdefault("state", {})["lang"] = (
            asked
            or pick_lang(request.cookies.get(LANG_COOKIE))
            or preferred_lang(request.headers.get("accept-language"))
            or DEFAULT_LANG
        )
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if asked is not None:
                    cookie = Response()
                    cookie.set_cookie(
                        LANG_COOKIE,
                        asked,
                        max_age=_YEAR,
                        samesite="lax",
                        secure=self.secure_cookies,
                    )
                    headers.append("set-cookie", cookie.headers["set-cookie"])
                headers.setdefault(
                    "Content-Security-Policy", DOCS_CSP if path == self.skip_csp else self.csp
                )
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if not path.startswith("/static/"):
                    headers.setdefault("Cache-Control", "no-store")
                headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _foundation_status(exc: Exception, spec: ConsoleSpec) -> int:
    if isinstance(exc, NotLoggedIn):
        return 401
    if isinstance(exc, NotAllowed | CsrfRefused):
        return 403
    if isinstance(exc, TooManyAttempts):
        return 429
    if isinstance(exc, RequestValidationError):
        return 422
    return spec.status_for(exc)


#: (status, the router's phrase) -> the refusal a page says instead.
_ROUTER_SAYS = {
    (404, "Not Found"): "router.not_found",
    (405, "Method Not Allowed"): "router.method_not_allowed",
}


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


#: What is wrong with a JSON body as a whole (pydantic's error type -> the sentence said).
_WHOLE_BODY = {
    "json_invalid": "not valid JSON",
    "missing": "required: send a JSON object",
    "model_attributes_type": "give a JSON object",
    "dict_type": "give a JSON object",
}


#: pydantic's error type -> the refusal a page says (its context's values fill the sentence).
_PAGE_SENTENCES = {
    "literal_error": "input.choose",
    "enum": "input.choose",
    "date_parsing": "input.not_date",
    "date_from_datetime_parsing": "input.not_date",
    "date_from_datetime_inexact": "input.not_date",
    "date_type": "input.not_date",
    "int_parsing": "input.not_int",
    "int_type": "input.not_int",  # a strict whole number given text
    "int_from_float": "input.not_int",
    "string_pattern_mismatch": "input.pattern",
    "string_too_long": "input.too_long",
    "greater_than_equal": "input.at_least",
    "less_than_equal": "input.at_most",
    "missing": "input.missing",
    "bool_parsing": "input.not_bool",
    "bool_type": "input.not_bool",
}


#: Patterns a person is told in words, not as a regular expression: a city code's (one
#: city, or an optional one on a page).
_PATTERN_SENTENCES = {r"^\d{6}$": "input.city_code", r"^(\d{6})?$": "input.city_code"}


def _page_sentence(
    error: Mapping[str, Any], lang: str, word: Callable[[str], str] | None = None
) -> str | None:
    """A parser's refusal of one value (an item of pydantic's ``errors()``) as a page says
    it in ``lang`` (None: as pydantic); ``word`` names roles and kinds in a validator's own
    refusal (:meth:`sync.refusals.Refusal.say`)."""
    ctx = error.get("ctx") or {}
    if isinstance(ctx.get("error"), Refusal):  # a validator's own refusal
        return str(ctx["error"].say(lang, word))
    code = _PAGE_SENTENCES.get(str(error.get("type", "")))
    if code is None:
        return None
    if code == "input.pattern":
        code = _PATTERN_SENTENCES.get(str(ctx.get("pattern")), code)
    if lang == "zh" and isinstance(ctx.get("expected"), str):  # "'a', 'b' or 'c'"
        ctx = {**ctx, "expected": ctx["expected"].replace(" or ", ", ")}
    try:
        return COMMON.say(code, lang, ctx)
    except (KeyError, IndexError):  # a context without the sentence's values
        return None


def field_problem(
    error: Mapping[str, Any],
    lang: str | None = None,
    fields: Catalogue = COMMON,
    word: Callable[[str], str] | None = None,
    *,
    nowhere: str = "",
) -> str:
    """One value a parser refused (an item of pydantic's ``errors()``) as ``field: why``.

    Without ``lang``, as pydantic says it (the API's words); with it, the sentence in that
    language where the shared catalogue has it (:func:`_page_sentence`), and on a Chinese
    page the field by its name in ``fields``. A refusal of no field is ``nowhere: why``, or
    the sentence alone when ``nowhere`` is empty."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    where = ".".join(str(p) for p in loc) or nowhere
    # pydantic prefixes a validator's own sentence with its error type: say it plainly.
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if lang is not None:
        message = _page_sentence(error, lang, word) or message
    if lang == "zh" and loc and isinstance(loc[-1], str) and loc[-1] in fields.fields:
        where = fields.field_name(loc[-1], lang)
    if not where:
        return message
    return f"{where}：{message}" if lang == "zh" else f"{where}: {message}"


def validation_message(
    exc: RequestValidationError, lang: str | None = None, fields: Catalogue = COMMON
) -> str:
    """One sentence naming each bad field, e.g. ``query.period: Input should be …``; a body
    that is not JSON, not an object or missing is named ``body``. With ``lang`` (pages),
    each value's refusal is said in that language where the catalogue has it, and on a
    Chinese page a field ``fields`` names is called by its Chinese name."""
    parts = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        kind = str(error.get("type", ""))
        if loc[:1] == ("body",) and (kind == "json_invalid" or len(loc) == 1):
            # The body as a whole: the decoder's position (``("body", 12)``) names no field.
            detail = _WHOLE_BODY.get(kind, str(error.get("msg", "invalid")))
            reason = (error.get("ctx") or {}).get("error")
            if kind == "json_invalid" and reason:
                detail += f" ({reason} at character {loc[-1]})"
            parts.append(f"body: {detail.removeprefix('Value error, ')}")
            continue
        parts.append(field_problem(error, lang, fields, nowhere="request"))
    return "; ".join(parts) or "invalid request"


def _templates(spec: ConsoleSpec) -> Jinja2Templates:
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(spec.templates_dir)), FileSystemLoader(str(HERE / "templates"))]
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    return Jinja2Templates(env=env)


def create_console_app(
    spec: ConsoleSpec,
    *,
    title: str,
    description: str,
    secret_key: bytes,
    secure_cookies: bool = False,
    session_purpose: bytes = b"fedsync-console-session",
    throttle: LoginThrottle | None = None,
    openapi_url: str = "/openapi.json",
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """A FastAPI app with the shared state, middleware and error mapping; the tier then
    includes its routers. ``secure_cookies`` marks cookies HTTPS-only (set it when the
    console is served over TLS, directly or behind a proxy)."""
    app = FastAPI(
        title=title,
        version="1",
        description=description,
        # Swagger UI is served from the package (below), never from a CDN: the console
        # works offline and loads no third-party script.
        docs_url=None,
        redoc_url=None,
        openapi_url=openapi_url,
        dependencies=[Depends(refuse_unread_body)],
        # No redirect from /path/ to /path: Starlette builds its target from the request's
        # Host header, so a forged Host made the console redirect elsewhere. /path/ is a 404.
        redirect_slashes=False,
    )
    app.state.spec = spec
    app.state.signer = SessionSigner(secret_key, purpose=session_purpose)
    app.state.secure_cookies = secure_cookies
    app.state.templates = _templates(spec)
    app.state.labels = spec.labels
    app.state.throttle = throttle or LoginThrottle()
    # The dummy hash unknown accounts are checked against is made now, not at the first
    # unknown login (which would then take twice as long as any other).
    passwords.burn("")
    # The shared files first: the tier's mount at /static would otherwise swallow them.
    app.mount("/static/common", StaticFiles(directory=str(HERE / "static")), name="common")
    app.mount("/static", StaticFiles(directory=str(spec.static_dir)), name="static")
    csp = (
        f"default-src 'self'; script-src {spec.script_src}; frame-ancestors 'none'; "
        "form-action 'self'"
    )

    async def edge_error_page(request: Request, status: int, message: str) -> Response:
        return await run_in_threadpool(spec.error_page, request, status, message)

    # Added first, so it runs inside LanguageAndHeaders (its answers get the language and
    # the security headers) and before every route, dependency and login check.
    app.add_middleware(
        EdgeGuard,
        max_body_bytes=max_body_bytes,
        error_page=edge_error_page,
        fields=spec.refusals,
    )
    app.add_middleware(
        LanguageAndHeaders,
        csp=csp,
        secure_cookies=secure_cookies,
        skip_csp=DOCS_URL,
    )
    _add_docs_and_favicon(app, title)

    async def refused(request: Request, exc: Exception) -> Response:
        status = _foundation_status(exc, spec)
        message = str(exc)
        if isinstance(exc, RequestValidationError):
            page_lang = None if is_api(request) else lang_of(request)
            message = validation_message(exc, page_lang, spec.refusals)
        headers: dict[str, str] = {}
        if isinstance(exc, TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after)
        if is_api(request):
            if status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="fedsync"'
            return JSONResponse({"detail": message}, status_code=status, headers=headers or None)
        if status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":  # a form's target cannot be reopened by a GET
                target = spec.home
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        if isinstance(exc, Refusal):  # a page says it in the page's language
            message = say_refusal(request, exc)
        response = await run_in_threadpool(spec.error_page, request, status, message)
        response.headers.update(headers)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_api(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        message = str(exc.detail)
        said = _ROUTER_SAYS.get((exc.status_code, message))
        if said is not None:  # the router's own phrase, in the page's language
            message = Refusal(said).say(lang_of(request))
        return await run_in_threadpool(spec.error_page, request, exc.status_code, message)

    for kind in (
        NotLoggedIn,
        NotAllowed,
        CsrfRefused,
        TooManyAttempts,
        RequestValidationError,
        *spec.handled,
    ):
        app.add_exception_handler(kind, refused)
    app.add_exception_handler(StarletteHTTPException, http_error)
    return app


#: Swagger UI of the console's API; its assets are vendored in ``sync/web/static``.
DOCS_URL = "/api/docs"
#: The API docs page's policy: Swagger UI starts from an inline script and styles itself
#: inline, and nothing else; everything it loads or calls is this console's own.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
)


def _add_docs_and_favicon(app: FastAPI, title: str) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} · API",
            swagger_js_url="/static/common/swagger-ui-bundle.js",
            swagger_css_url="/static/common/swagger-ui.css",
            swagger_favicon_url="/favicon.ico",
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(HERE / "static" / "favicon.ico", media_type="image/x-icon")


def lang_of(request: Request) -> Lang:
    lang: Lang = getattr(request.state, "lang", DEFAULT_LANG)
    return lang


def say_refusal(request: Request, exc: Refusal) -> str:
    """A refusal as a page shows it: in the page's language, the roles and kinds it names
    in that language too (from the console's label table)."""
    lang = lang_of(request)
    labels: Labels = request.app.state.labels

    def word(value: str) -> str:
        # An area of the role table has its own label (``area.desk``), as has a role.
        if lang == "zh" and f"area.{value}" in labels.table:
            return labels.label(lang, f"area.{value}")
        return labels.value_label(lang, value)

    return exc.say(lang, word)


def render_page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page with the shared context: labels in the request's language (``t``, ``v``),
    the other language for the switch, the CSRF token for forms; the tier adds the rest
    (``user``, ``nav``, ``brand``…)."""
    lang = lang_of(request)
    labels: Labels = request.app.state.labels
    session: Session | None = getattr(request.state, "session", None) or session_of(request)
    base: dict[str, Any] = dict(
        request=request,
        lang=lang,
        other_lang="en" if lang == "zh" else "zh",
        t=lambda key: labels.label(lang, key),
        v=lambda value: labels.value_label(lang, str(value)),
        csrf_field=CSRF_FIELD,
        csrf=session.csrf if session else "",
        home=request.app.state.spec.home,
        user=None,
        nav=[],
    )
    base.update(context)
    templates: Jinja2Templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request, template, base, status_code=status_code
    )
    return response
