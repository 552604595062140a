"""Who is asking: signed session cookies, HTTP Basic for scripts, CSRF tokens.

The session is a signed cookie (HMAC-SHA256 over a small JSON document), not a server-side
table: it carries only the account id, the account's session generation, the CSRF token and
when it was issued. Each tier reads the account from its store on every request, so disabling
an account or changing its role takes effect at the next click; a tier whose accounts keep a
session generation (the city's) also refuses a cookie signed under an older one, so logging
out, a password change, a role change or disabling ends every session of the account even
for someone who kept a copy of the cookie. Cookies expire after :data:`SESSION_SECONDS`.

Forms carry the session's CSRF token in a hidden field; API calls made with the session
cookie carry it in the ``X-CSRF-Token`` header. HTTP Basic needs no token: a browser never
adds those credentials to a cross-site request on its own.

What a role may open is each tier's table (:class:`AreaTable`), asked from one place per tier.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Generic, TypeVar

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from sync.refusals import Refusal
from sync.web.params import refuse_repeated, refuse_repeated_query

SESSION_COOKIE: Final = "fedsync_session"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
#: A working shift and some; a stolen cookie stops working after this.
SESSION_SECONDS: Final = 12 * 3600
_SAFE_METHODS: Final = ("GET", "HEAD", "OPTIONS")


class NotLoggedIn(Exception):
    """No valid session or credentials (HTTP 401; pages redirect to the login form)."""


class NotAllowed(Refusal):
    """The signed-in role may not open this area or do this (HTTP 403)."""


class CsrfRefused(Refusal):
    """A state-changing request without the session's CSRF token (HTTP 403)."""


class TooManyAttempts(Exception):
    """Too many failed logins for this account or from this address (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


R = TypeVar("R", bound=Hashable)


class AreaTable(Generic[R]):
    """A tier's role table: area name → the roles that may open it. The one place a tier's
    routes ask; a refusal names the roles that may."""

    def __init__(self, areas: Mapping[str, frozenset[R]]) -> None:
        self.areas: dict[str, frozenset[R]] = dict(areas)

    def may(self, role: R, area: str) -> bool:
        return role in self.areas[area]

    def require(self, role: R, area: str) -> None:
        if not self.may(role, area):
            allowed = ", ".join(sorted(_name(r) for r in self.areas[area]))
            raise NotAllowed("role.not_allowed", role=_name(role), area=area, roles=allowed)

    def require_route(self, role: R, request: Request) -> None:
        """Refuse ``role`` the area the request's route is marked with (:func:`area`);
        then, for one who may open it, a query parameter given twice that the route takes
        once (:func:`sync.web.params.refuse_repeated_query`)."""
        name = getattr(request.scope.get("endpoint"), _AREA_ATTRIBUTE, None)
        if callable(name):
            name = name(request.path_params)
        if name is not None:
            self.require(role, name)
        refuse_repeated_query(request)


_AREA_ATTRIBUTE: Final = "__fedsync_area__"
E = TypeVar("E", bound=Callable[..., Any])


def area(name: str | Callable[[Mapping[str, Any]], str | None]) -> Callable[[E], E]:
    """Mark a route's endpoint with the area it opens (under the route's decorator): a name,
    or a function of the path's parameters giving one (None: the route's own check judges,
    e.g. a path naming nothing that exists). The tier's user dependency checks the caller's
    role against it as soon as the caller is known, before the route's query and body
    fields are judged (FastAPI parses a JSON body first: one that is no JSON is refused
    before): one who may not open it hears 403, not what is wrong with the query (nor how
    long a read it would have been)."""

    def mark(endpoint: E) -> E:
        setattr(endpoint, _AREA_ATTRIBUTE, name)
        return endpoint

    return mark


def _name(role: object) -> str:
    return str(role.value) if isinstance(role, Enum) else str(role)


# --- signed session cookie ------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What the cookie holds: the signed-in account id (None before login), the CSRF token,
    when it was issued and the account's session generation at login."""

    staff_id: str | None
    csrf: str
    issued: int
    generation: int = 0

    @classmethod
    def fresh(cls, staff_id: str | None = None, *, generation: int = 0) -> Session:
        return cls(staff_id, secrets.token_urlsafe(24), int(time.time()), generation)


class SessionSigner:
    """Encodes sessions as ``base64(json).base64(hmac)``, rejecting tampered or old ones.

    ``purpose`` binds the key to one console: a city console's cookie is no good at the hub
    even if both were (wrongly) given the same secret."""

    def __init__(
        self,
        secret_key: bytes,
        *,
        max_age: int = SESSION_SECONDS,
        purpose: bytes = b"fedsync-console-session",
    ) -> None:
        if len(secret_key) < 16:
            raise ValueError("the console secret key needs at least 16 bytes")
        self._key = hmac.new(secret_key, purpose, hashlib.sha256).digest()
        self.max_age = max_age

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def dumps(self, session: Session) -> str:
        payload = json.dumps(
            {
                "sid": session.staff_id,
                "csrf": session.csrf,
                "iat": session.issued,
                "gen": session.generation,
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def loads(self, value: str | None) -> Session | None:
        if not value or "." not in value:
            return None
        data_part, mac_part = value.split(".", 1)
        try:
            payload, mac = _unb64(data_part), _unb64(mac_part)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            doc: Any = json.loads(payload)
            session = Session(doc["sid"], str(doc["csrf"]), int(doc["iat"]), int(doc.get("gen", 0)))
        except (ValueError, KeyError, TypeError):
            return None
        if time.time() - session.issued > self.max_age:
            return None
        return session


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- per request ------------------------------------------------------------------------------


def session_of(request: Request) -> Session | None:
    """The request's valid session (``app.state.signer`` checks it), or None."""
    signer: SessionSigner = request.app.state.signer
    return signer.loads(request.cookies.get(SESSION_COOKIE))


def password_changed(request: Request, account_id: str, generation: int) -> Response:
    """The answer to a member's change of their own password (both consoles' ``/account``):
    back to the account page, saying so, signed in again under the account's new
    generation (the change ended every session of the account, this browser's too)."""
    response = RedirectResponse("/account?changed=1", status_code=303)
    set_session(request, response, Session.fresh(account_id, generation=generation))
    return response


def set_session(request: Request, response: Response, session: Session) -> None:
    """Send ``session`` as the signed, HTTP-only cookie (HTTPS-only when the app says so)."""
    response.set_cookie(
        SESSION_COOKIE,
        request.app.state.signer.dumps(session),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.app.state.secure_cookies,
        path="/",
    )


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(account, password) from an ``Authorization: Basic`` header, else None."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def client_address(request: Request) -> str:
    """The address failed logins are counted against and the audit names: the peer's, or
    the client's as a trusted proxy's X-Forwarded-For states it. One that is no IP address
    (what a client wrote into the header, passed on by a proxy) counts as ``"unknown"``,
    all such together: made-up text is neither a fresh address per attempt nor a key or
    audit cell of any length."""
    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return "unknown"


def check_header_csrf(request: Request, session: Session) -> None:
    """A cookie-authenticated call that changes something must carry the session's token."""
    if request.method in _SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfRefused("csrf.header_missing", method=request.method, header=CSRF_HEADER)


async def check_form_csrf(request: Request) -> FormData:
    """Dependency for every form POST: the hidden field must equal the session's token.
    Returns the parsed form for routes whose fields are not fixed."""
    session = session_of(request)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if session is None or not isinstance(sent, str):
        raise CsrfRefused("csrf.form_expired")
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfRefused("csrf.form_expired")
    if len(form) != len(form.multi_items()):  # a field given twice: refused unless a list
        spec = request.app.state.spec
        refuse_repeated(form.multi_items(), "body", spec.repeatable_form_fields)
    return form


def safe_next(target: str, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``: "//host" or "http://…"
    would make the login form an open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default
