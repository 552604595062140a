"""Who is asking: signed session cookies, HTTP Basic for scripts, CSRF tokens, and which
console areas each role may open.

The session is a signed cookie (HMAC-SHA256 over a small JSON document), not a server-side
table: a city node is one process and the cookie carries only the staff id, the CSRF token
and when it was issued. The account is read from the store on every request, so disabling
a staff member or changing their role takes effect at their next click; the cookie cannot
be revoked otherwise, hence the short lifetime (:data:`SESSION_SECONDS`).

Forms carry the session's CSRF token in a hidden field; API calls made with the session
cookie carry it in the ``X-CSRF-Token`` header. HTTP Basic needs no token: a browser never
adds those credentials to a cross-site request on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

from fastapi import Request
from starlette.datastructures import FormData

from city_node import staff
from city_node.domain import STAFF_ROLES, Role
from city_node.staff import StaffMember

SESSION_COOKIE: Final = "fedsync_session"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
#: A working shift and some; a stolen cookie stops working after this.
SESSION_SECONDS: Final = 12 * 3600


class NotLoggedIn(Exception):
    """No valid session or credentials (HTTP 401; pages redirect to the login form)."""


class NotAllowed(Exception):
    """The signed-in role may not open this area or do this (HTTP 403)."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token (HTTP 403)."""


#: Console areas beyond tickets, and the roles that may open them. Tickets are open to
#: every role (each reads them for its own work); what a role may *do* to a ticket is
#: decided by the domain rules, not here.
AREAS: Final[dict[str, frozenset[Role]]] = {
    # The leader approves; the statistician drafts and follows their reports.
    # The QA inspector drafts the QA report; the service refuses them other kinds.
    "reports": frozenset({Role.LEADER, Role.STATISTICIAN, Role.QA_INSPECTOR}),
    "reports.decide": frozenset({Role.LEADER}),
    "qa": frozenset({Role.QA_INSPECTOR, Role.LEADER}),
    "qa.work": frozenset({Role.QA_INSPECTOR}),
    # Notices are the center's bulletin board: everyone reads them; the leader answers
    # for the center (mission.md: "a city leader: ... its inbox of province notices").
    "inbox": frozenset(STAFF_ROLES),
    "inbox.receipt": frozenset({Role.LEADER}),
    "link": frozenset({Role.LEADER, Role.STATISTICIAN}),
    "staff": frozenset({Role.LEADER}),
}


def may(role: Role, area: str) -> bool:
    return role in AREAS[area]


def require(user: StaffMember, area: str) -> None:
    """Raise NotAllowed, naming the roles that may, unless ``user`` may use ``area``."""
    if not may(user.role, area):
        allowed = ", ".join(sorted(r.value for r in AREAS[area]))
        raise NotAllowed(f"role {user.role.value} may not use {area}; only {allowed}")


# --- signed session cookie ------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What the cookie holds: the signed-in staff id (None before login) and the CSRF token."""

    staff_id: str | None
    csrf: str
    issued: int

    @classmethod
    def fresh(cls, staff_id: str | None = None) -> Session:
        return cls(staff_id, secrets.token_urlsafe(24), int(time.time()))


class SessionSigner:
    """Encodes sessions as ``base64(json).base64(hmac)``, rejecting tampered or old ones."""

    def __init__(self, secret_key: bytes, *, max_age: int = SESSION_SECONDS) -> None:
        if len(secret_key) < 16:
            raise ValueError("the console secret key needs at least 16 bytes")
        # A purpose-bound key: the same secret could one day sign something else.
        self._key = hmac.new(secret_key, b"fedsync-console-session", hashlib.sha256).digest()
        self.max_age = max_age

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def dumps(self, session: Session) -> str:
        payload = json.dumps(
            {"sid": session.staff_id, "csrf": session.csrf, "iat": session.issued},
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
            session = Session(doc["sid"], str(doc["csrf"]), int(doc["iat"]))
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
    signer: SessionSigner = request.app.state.signer
    return signer.loads(request.cookies.get(SESSION_COOKIE))


def _basic_credentials(request: Request) -> tuple[str, str] | None:
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


def _session_user(request: Request) -> tuple[StaffMember, Session] | None:
    session = session_of(request)
    if session is None or session.staff_id is None:
        return None
    member = staff.get(request.app.state.ctx.engine, session.staff_id)
    if member is None or not member.active:
        return None
    return member, session


def page_user(request: Request) -> StaffMember:
    """The signed-in staff member of a page request (dependency); NotLoggedIn otherwise."""
    found = _session_user(request)
    if found is None:
        raise NotLoggedIn("log in first")
    request.state.session = found[1]
    return found[0]


def api_user(request: Request) -> StaffMember:
    """The caller of an API request: HTTP Basic, else the session cookie (dependency).

    A cookie-authenticated call that changes something must carry the session's CSRF
    token in ``X-CSRF-Token``; Basic calls need none.
    """
    basic = _basic_credentials(request)
    if basic is not None:
        member = staff.authenticate(request.app.state.ctx.engine, *basic)
        if member is None:
            raise NotLoggedIn("wrong staff id or password")
        return member
    found = _session_user(request)
    if found is None:
        raise NotLoggedIn("log in first: a session cookie or HTTP Basic credentials")
    member, session = found
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise CsrfRefused(f"a session-authenticated {request.method} needs {CSRF_HEADER}")
    return member


async def check_form_csrf(request: Request) -> FormData:
    """Dependency for every form POST: the hidden field must equal the session's token.
    Returns the parsed form for routes whose fields are not fixed (the QA scorecard)."""
    session = session_of(request)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if session is None or not isinstance(sent, str):
        raise CsrfRefused("the form has expired or did not come from this console; reload it")
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfRefused("the form has expired or did not come from this console; reload it")
    return form
