"""Promises about console sessions and logins (real console, SQLite and PostgreSQL).

- The session cookie carries the account's session generation: logging out, a password
  reset, a role change and disabling the account each end every session of it. A copy of
  the old cookie, replayed, gets the login page (pages) or 401 (API), not the account.
- Signing in costs exactly one password check whether the account exists, is disabled or
  the password is wrong, so its timing cannot tell them apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from city_node import staff
from city_node.context import Actor
from city_node.domain import Role
from tests.security.conftest import PASSWORD, Console, csrf_of

LEADER = Actor("leader", Role.LEADER)
OTHER = "a-brand-new-password"


def copied_cookie(client: httpx.Client) -> dict[str, str]:
    return dict(client.cookies.items())


def replay(console: Console, cookies: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
    """The old cookie, from another client: a page and an API call."""
    with httpx.Client(base_url=console.base_url, cookies=cookies, timeout=30) as thief:
        return thief.get("/tickets"), thief.get("/api/v1/me")


def assert_ended(page: httpx.Response, api: httpx.Response) -> None:
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert api.status_code == 401


def test_a_current_cookie_works_from_a_copy(console: Console) -> None:
    # The control: without any of the events below, the copied cookie is the account.
    with console.browser("junior") as browser:
        page, api = replay(console, copied_cookie(browser))
    assert page.status_code == 200
    assert api.status_code == 200 and api.json()["id"] == "junior"


def test_logging_out_ends_the_session_everywhere(console: Console) -> None:
    with console.browser("junior") as browser, console.browser("junior") as other_tab:
        old = copied_cookie(browser)
        token = csrf_of(browser.get("/tickets").text)
        assert browser.post("/logout", data={"csrf_token": token}).status_code == 303
        assert_ended(*replay(console, old))
        # The same account's other session ended too (one generation per account).
        assert other_tab.get("/api/v1/me").status_code == 401
    with console.browser("junior") as again:  # logging in again works
        assert again.get("/api/v1/me").status_code == 200


CHANGES: dict[str, Callable[[Any], object]] = {
    "password reset": lambda e: staff.reset_password(e, "junior", OTHER, by=LEADER),
    "role change": lambda e: staff.set_role(e, "junior", Role.OPERATOR_SENIOR, by=LEADER),
    "disable": lambda e: staff.disable(e, "junior", by=LEADER),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_account_changes_end_open_sessions(console: Console, change: str) -> None:
    with console.browser("junior") as browser:
        old = copied_cookie(browser)
        CHANGES[change](console.engine)
        assert_ended(*replay(console, old))
        assert_ended(browser.get("/tickets"), browser.get("/api/v1/me"))


def test_the_cookie_api_refuses_an_ended_session_for_changes_too(console: Console) -> None:
    with console.browser("junior") as browser:
        token = csrf_of(browser.get("/tickets").text)
        staff.reset_password(console.engine, "junior", OTHER, by=LEADER)
        refused = browser.post(
            "/api/v1/tickets",
            json={"kind": "enquiry"},
            headers={"X-CSRF-Token": token},
        )
    assert refused.status_code == 401


def test_every_login_path_costs_one_password_check(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff.add(console.engine, staff_id="gone", name="Gone", role="surveyor", password=PASSWORD)
    staff.disable(console.engine, "gone", by=LEADER)
    checks: list[int] = []
    real = hashlib.scrypt

    def counting(*args: Any, **kwargs: Any) -> bytes:
        checks.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    cases = {
        "right password": ("junior", PASSWORD, 200),
        "wrong password": ("senior", "wrong-password-1", 401),
        "unknown account": ("nobody-here", PASSWORD, 401),
        "disabled account, right password": ("gone", PASSWORD, 401),
    }
    for name, (who, password, status) in cases.items():
        checks.clear()
        with console.api(who, password) as client:
            assert client.get("/api/v1/me").status_code == status, name
        assert len(checks) == 1, f"{name}: {len(checks)} password checks"
