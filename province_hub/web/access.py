"""Who is asking at the supervisor web, and what each hub role may open: the one table
every route asks (pages, API and exports alike).

Hub staff sign in with the hub's accounts (:mod:`province_hub.staff`); the session, CSRF
and throttling mechanics are the shared foundation's (:mod:`sync.web.auth`).
"""

from __future__ import annotations

from typing import Final, TypedDict

from fastapi import Request
from sqlalchemy import Engine

from province_hub import audit, notices, staff
from province_hub.staff import HubMember, HubRole
from sync.web.auth import (
    AreaTable,
    NotLoggedIn,
    Session,
    TooManyAttempts,
    basic_credentials,
    check_header_csrf,
    client_address,
    session_of,
)
from sync.web.throttle import checked_login

_ALL: Final = frozenset(HubRole)
_WATCHERS: Final = frozenset({HubRole.SUPERVISOR, HubRole.STATISTICS_MANAGER, HubRole.ADMIN})

#: Area → the roles that may open it. The supervisor watches everything (read-only);
#: the statistics manager owns the consolidated figures; the materials manager hot-spots
#: and suggestions; the GM hotline overtime and compensation. The announcer follows the
#: links (who can be reached). Personal data of escalated customers: the GM hotline only.
AREAS: Final[dict[str, frozenset[HubRole]]] = {
    "figures": _WATCHERS | {HubRole.MATERIALS_MANAGER, HubRole.GM_HOTLINE},
    "reports": _WATCHERS,
    "qa": _WATCHERS,
    "overtime": _WATCHERS | {HubRole.GM_HOTLINE},
    "hotspots": _WATCHERS | {HubRole.MATERIALS_MANAGER},
    "suggestions": _WATCHERS | {HubRole.MATERIALS_MANAGER},
    # Marking batches seen is the materials manager's: "new" means new to them.
    "suggestions.seen": frozenset({HubRole.MATERIALS_MANAGER}),
    "quarantine": _WATCHERS,
    "links": _ALL,
    "personal_data": frozenset({HubRole.GM_HOTLINE}),
    # The escalation desk: everyone who watches sees the queue; the GM hotline works it.
    "desk": _WATCHERS | {HubRole.GM_HOTLINE},
    "desk.work": frozenset({HubRole.GM_HOTLINE}),
    # Ticket traces: a supervisor or the GM hotline asks a city; watchers read the answers.
    "traces": _WATCHERS | {HubRole.GM_HOTLINE},
    "traces.request": frozenset({HubRole.SUPERVISOR, HubRole.GM_HOTLINE}),
    # Who did what at the hub: the administrators'.
    "audit": frozenset({HubRole.ADMIN}),
    # Notices: the watchers and the announcer follow them; composing opens to whoever may
    # send some kind (the service says which kinds: supervisors send findings only, the
    # materials manager standard answers);
    # objections are answered by the announcer (and admin).
    "notices": _WATCHERS | {HubRole.ANNOUNCER, HubRole.MATERIALS_MANAGER},
    "notices.compose": frozenset().union(*notices.SENDERS.values()),
    "notices.answer": notices.ANSWERERS,
}
TABLE: Final = AreaTable(AREAS)


def may(member: HubMember | None, area: str) -> bool:
    return member is not None and TABLE.may(member.role, area)


def personal(member: HubMember) -> bool:
    """May ``member`` see the customers' names and phones (the GM hotline only)?"""
    return may(member, "personal_data")


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.hub.engine
    return engine


def _session_member(request: Request) -> tuple[HubMember, Session] | None:
    session = session_of(request)
    if session is None or session.staff_id is None:
        return None
    member = staff.get_staff(_engine(request), session.staff_id)
    # A cookie signed under an older generation: the account logged out, was disabled, or
    # its password or role changed since (province_hub.staff).
    if member is None or not member.active or session.generation != member.generation:
        return None
    return member, session


def signed_in(request: Request) -> HubMember | None:
    """Who is signed in on this browser session, whatever the page (None: nobody)."""
    found = _session_member(request)
    if found is None:
        return None
    request.state.session = found[1]
    return found[0]


def page_user(request: Request) -> HubMember:
    """The signed-in hub staff member of a page request, who may open the route's area
    (dependency); NotLoggedIn, NotAllowed else."""
    member = signed_in(request)
    if member is None:
        raise NotLoggedIn("log in first")
    TABLE.require_route(member.role, request)
    return member


def api_user(request: Request) -> HubMember:
    """The caller of an API request: HTTP Basic (throttled like the login form), else the
    session cookie, whose changes need the ``X-CSRF-Token`` header (dependency)."""
    basic = basic_credentials(request)
    engine = _engine(request)
    if basic is not None:
        try:
            member = checked_login(
                request, *basic, lambda who, pw: staff.authenticate(engine, who, pw)
            )
        except TooManyAttempts:
            # Audited like a throttled form login (the README: both are).
            _basic_failure(request, engine, basic[0], "HTTP Basic: throttled")
            raise
        if member is None:
            _basic_failure(request, engine, basic[0], "HTTP Basic: wrong staff id or password")
            raise NotLoggedIn("wrong staff id or password")
        TABLE.require_route(member.role, request)
        return member
    found = _session_member(request)
    if found is None:
        raise NotLoggedIn("log in first: a session cookie or HTTP Basic credentials")
    check_header_csrf(request, found[1])
    TABLE.require_route(found[0].role, request)
    return found[0]


def _basic_failure(request: Request, engine: Engine, typed: str, detail: str) -> None:
    known = staff.get_staff(engine, typed[:64]) if typed else None
    audit.record_alone(
        engine,
        actor=known.id if known else "",
        role=known.role.value if known else "",
        action=audit.Action.LOGIN_FAILED,
        target=f"staff:{known.id}" if known else "",
        detail=detail,
        address=client_address(request),
    )


class Acting(TypedDict):
    """Who acts, for the desk's use cases and their audit rows (``**acting(...)``)."""

    actor: str
    role: str
    address: str


def acting(request: Request, user: HubMember) -> Acting:
    """The signed-in member as the desk's services record them (id, role, client address)."""
    return Acting(actor=user.id, role=user.role.value, address=client_address(request))
