"""Who is asking at the city console, and which console areas each role may open.

The mechanics (signed session cookie, HTTP Basic, CSRF, failed-login throttling) are the
shared web foundation's (:mod:`sync.web.auth`); this module holds the city's role table and
reads the city's staff accounts. The account is read from the store on every request, and a
session cookie signed under an older ``session_generation`` than the account's is refused:
logging out, a password reset, a role change and disabling each end every session of the
account, a copied cookie included.

``AREAS`` decides what the menu and the pages offer; the rules themselves (who may register,
record a receipt, approve…) are the domain's (``domain.ALLOWED_ROLES``), asked by the services.
"""

from __future__ import annotations

from typing import Final

from fastapi import Request

from city_node import staff
from city_node.domain import ALLOWED_ROLES, STAFF_ROLES, Action, Role
from city_node.staff import StaffMember
from sync.web.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_SECONDS,
    AreaTable,
    CsrfRefused,
    NotAllowed,
    NotLoggedIn,
    Session,
    SessionSigner,
    basic_credentials,
    check_form_csrf,
    check_header_csrf,
    session_of,
)
from sync.web.throttle import checked_login

__all__ = [
    "AREAS",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "CsrfRefused",
    "NotAllowed",
    "NotLoggedIn",
    "Session",
    "SessionSigner",
    "api_user",
    "check_form_csrf",
    "may",
    "page_user",
    "session_of",
    "signed_in",
]

#: Console areas beyond tickets, and the roles that may open them: what the menu and the
#: pages offer. Tickets are open to every role (each reads them for its own work). Where an
#: area is a thing to do, its roles are the domain's (``domain.ALLOWED_ROLES``), which the
#: services enforce whichever edge asks; this table only decides what is shown.
AREAS: Final[dict[str, frozenset[Role]]] = {
    "register": ALLOWED_ROLES[Action.REGISTER],
    # The manager hotline records compensation paid on a complaint (the ticket page's form).
    "compensate": ALLOWED_ROLES[Action.COMPENSATE],
    # The leader approves; the statistician drafts and follows their reports.
    # The QA inspector drafts the QA report; the service refuses them other kinds.
    "reports": frozenset({Role.LEADER, Role.STATISTICIAN, Role.QA_INSPECTOR}),
    "reports.decide": ALLOWED_ROLES[Action.APPROVE_REPORT],
    "qa": frozenset({Role.QA_INSPECTOR, Role.LEADER}),
    "qa.work": ALLOWED_ROLES[Action.SCORE_QA],
    # Notices are the center's bulletin board: everyone reads them; the leader answers
    # for the center (docs/domain.md: "a city leader: ... its inbox of province notices").
    # The materials clerk classifies and sends; the leader follows what goes up.
    "suggestions": ALLOWED_ROLES[Action.CLASSIFY] | {Role.LEADER},
    "suggestions.work": ALLOWED_ROLES[Action.CLASSIFY],
    "inbox": frozenset(STAFF_ROLES),
    "inbox.receipt": ALLOWED_ROLES[Action.RECORD_RECEIPT],
    "link": frozenset({Role.LEADER, Role.STATISTICIAN}),
    "staff": ALLOWED_ROLES[Action.MANAGE_STAFF],
    "access_log": ALLOWED_ROLES[Action.READ_ACCESS_LOG],
    "phone_search": ALLOWED_ROLES[Action.SEARCH_BY_PHONE],
}
_TABLE: Final = AreaTable(AREAS)


def may(role: Role, area: str) -> bool:
    return _TABLE.may(role, area)


def signed_in(request: Request) -> tuple[StaffMember, Session] | None:
    """The account and session of a valid, current session cookie, else None."""
    session = session_of(request)
    if session is None or session.staff_id is None:
        return None
    member = staff.get(request.app.state.ctx.engine, session.staff_id)
    if member is None or not member.active:
        return None
    if session.generation != member.session_generation:
        return None  # logged out, password reset, role changed or disabled since
    return member, session


def page_user(request: Request) -> StaffMember:
    """The signed-in staff member of a page request, who may open the route's area
    (dependency); NotLoggedIn, NotAllowed otherwise."""
    found = signed_in(request)
    if found is None:
        raise NotLoggedIn("log in first")
    request.state.session = found[1]
    _TABLE.require_route(found[0].role, request)
    return found[0]


def api_user(request: Request) -> StaffMember:
    """The caller of an API request: HTTP Basic, else the session cookie (dependency).

    A cookie-authenticated call that changes something must carry the session's CSRF
    token in ``X-CSRF-Token``; Basic calls need none.
    """
    basic = basic_credentials(request)
    if basic is not None:
        engine = request.app.state.ctx.engine
        member = checked_login(request, *basic, lambda who, pw: staff.authenticate(engine, who, pw))
        if member is None:
            raise NotLoggedIn("wrong staff id or password")
        _TABLE.require_route(member.role, request)
        return member
    found = signed_in(request)
    if found is None:
        raise NotLoggedIn("log in first: a session cookie or HTTP Basic credentials")
    member, session = found
    check_header_csrf(request, session)
    _TABLE.require_route(member.role, request)
    return member
