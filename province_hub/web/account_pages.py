"""The supervisor web's account page: who is signed in, in which role, and the change of
one's own password.

Changing the password ends every session of the account — other browsers, copied cookies —
through the account's session generation (:mod:`province_hub.staff`); the browser that made
the change is signed in again under the new generation. Accounts themselves (add, disable,
reset, role) are managed at the hub's shell, ``fedsync hub staff``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from province_hub import staff
from province_hub.web.context import hub_of
from province_hub.web.pages import CsrfForm, User, render
from sync.web.app import say_refusal
from sync.web.auth import client_address, password_changed

router = APIRouter(include_in_schema=False)


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, user: User, changed: bool = False) -> Response:
    return render(request, "account.html", user=user, changed=changed, error=None)


@router.post("/account/password", response_class=HTMLResponse)
def change_password(request: Request, user: User, form: CsrfForm) -> Response:
    current, new, again = (str(form.get(name, "")) for name in ("current", "new", "again"))
    try:
        member = staff.change_own_password(
            hub_of(request).engine,
            user,
            current=current,
            new=new,
            again=again,
            address=client_address(request),
        )
    except staff.StaffError as exc:
        return render(
            request,
            "account.html",
            user=user,
            status_code=422,
            changed=False,
            error=say_refusal(request, exc),
        )
    return password_changed(request, member.id, member.generation)
