"""The account page every member has (``/account``: who is signed in, the change of one's
own password, by the rule the hub's page uses, ``sync.passwords.change_refusal``) and the
leader's account desk (``/staff`` forms): disable or enable an account, reset its password,
move it to another role. Each desk form calls the staff service with the leader as the
actor, so the rule (``Action.MANAGE_STAFF``, nobody disables or re-roles themselves) is the
service's, the same as ``fedsync city staff …``; every change ends the account's open
sessions (its session generation moves on). The list itself is ``pages.staff_page``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from city_node import staff
from city_node.context import Actor
from city_node.errors import CityError
from city_node.staff import StaffMember
from city_node.web.auth import check_form_csrf, page_user
from city_node.web.pages import render
from sync.web.app import say_refusal
from sync.web.auth import area, password_changed

router = APIRouter(include_in_schema=False)

User = Annotated[StaffMember, Depends(page_user)]
Csrf = Depends(check_form_csrf)
#: Staff ids as ``staff add`` accepts them; anything else cannot name an account.
StaffId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


def _leader(user: StaffMember) -> Actor:
    """The acting leader (the routes' ``@area("staff")`` let only one in)."""
    return Actor(user.id, user.role)


def _back() -> Response:
    return RedirectResponse("/staff", status_code=303)


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, user: User, changed: bool = False) -> Response:
    return render(request, "account.html", user=user, changed=changed, error=None)


@router.post("/account/password", response_class=HTMLResponse, dependencies=[Csrf])
def change_password(
    request: Request,
    user: User,
    current: Annotated[str, Form(max_length=1024)],
    new: Annotated[str, Form(max_length=1024)],
    again: Annotated[str, Form(max_length=1024)],
) -> Response:
    try:
        member = staff.change_own_password(
            request.app.state.ctx.engine, user, current=current, new=new, again=again
        )
    except CityError as exc:
        return render(
            request,
            "account.html",
            user=user,
            status_code=422,
            changed=False,
            error=say_refusal(request, exc),
        )
    return password_changed(request, member.id, member.session_generation)


@router.post("/staff/{staff_id}/disable", dependencies=[Csrf])
@area("staff")
def disable(request: Request, staff_id: StaffId, user: User) -> Response:
    staff.disable(request.app.state.ctx.engine, staff_id, by=_leader(user))
    return _back()


@router.post("/staff/{staff_id}/enable", dependencies=[Csrf])
@area("staff")
def enable(request: Request, staff_id: StaffId, user: User) -> Response:
    staff.enable(request.app.state.ctx.engine, staff_id, by=_leader(user))
    return _back()


@router.post("/staff/{staff_id}/password", dependencies=[Csrf])
@area("staff")
def reset_password(
    request: Request,
    staff_id: StaffId,
    user: User,
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    staff.reset_password(request.app.state.ctx.engine, staff_id, password, by=_leader(user))
    return _back()


@router.post("/staff/{staff_id}/role", dependencies=[Csrf])
@area("staff")
def set_role(
    request: Request,
    staff_id: StaffId,
    user: User,
    role: Annotated[str, Form(max_length=32)],
) -> Response:
    staff.set_role(request.app.state.ctx.engine, staff_id, role, by=_leader(user))
    return _back()
