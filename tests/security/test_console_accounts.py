"""The leader's account desk in the console (real console, SQLite and PostgreSQL).

- The leader disables / enables an account, resets its password and changes its role from
  the staff page; each change ends the account's open sessions (a replayed cookie gets the
  login page), as the same commands do at the shell.
- Nobody else may (403), a form without its CSRF token is refused, the leader cannot
  disable, re-role or reset the password of their own account, a too-short password is
  refused: and in each of those cases nothing about the account changes.
"""

from __future__ import annotations

import httpx
import pytest

from city_node import staff
from city_node.domain import Role
from tests.security.conftest import PASSWORD, Console, csrf_of
from tests.security.test_console_sessions import assert_ended, copied_cookie, replay

NEW_PASSWORD = "another-long-password"


def _post(client: httpx.Client, path: str, **data: str) -> httpx.Response:
    token = csrf_of(client.get("/staff").text)
    return client.post(path, data={"csrf_token": token, **data})


def _can_log_in(console: Console, who: str, password: str = PASSWORD) -> bool:
    with console.api(who, password) as client:
        return client.get("/api/v1/me").status_code == 200


def test_the_leader_sees_the_forms_and_others_do_not_get_the_page(console: Console) -> None:
    with console.browser("leader") as leader:
        page = leader.get("/staff")
        assert page.status_code == 200
        assert 'action="/staff/junior/disable"' in page.text
        assert 'action="/staff/junior/password"' in page.text
        # No form to disable or re-role oneself.
        assert 'action="/staff/leader/disable"' not in page.text
        assert 'action="/staff/leader/role"' not in page.text
        assert 'action="/staff/leader/password"' not in page.text
    with console.browser("stat") as stat:
        assert stat.get("/staff").status_code == 403


def test_disable_then_enable_from_the_page(console: Console) -> None:
    with console.browser("junior") as junior, console.browser("leader") as leader:
        old = copied_cookie(junior)
        assert _post(leader, "/staff/junior/disable").status_code == 303
        assert_ended(*replay(console, old))
        assert not _can_log_in(console, "junior")
        assert staff.get(console.engine, "junior").active is False  # type: ignore[union-attr]
        assert _post(leader, "/staff/junior/enable").status_code == 303
    assert _can_log_in(console, "junior")


def test_a_password_reset_from_the_page_ends_sessions_and_takes_effect(
    console: Console,
) -> None:
    with console.browser("junior") as junior, console.browser("leader") as leader:
        old = copied_cookie(junior)
        done = _post(leader, "/staff/junior/password", password=NEW_PASSWORD)
        assert done.status_code == 303
        assert_ended(*replay(console, old))
    assert not _can_log_in(console, "junior")
    assert _can_log_in(console, "junior", NEW_PASSWORD)


def test_a_role_change_from_the_page_ends_sessions(console: Console) -> None:
    with console.browser("junior") as junior, console.browser("leader") as leader:
        old = copied_cookie(junior)
        assert _post(leader, "/staff/junior/role", role="operator_senior").status_code == 303
        assert_ended(*replay(console, old))
    member = staff.get(console.engine, "junior")
    assert member is not None and member.role is Role.OPERATOR_SENIOR


@pytest.mark.parametrize(
    ("who", "path", "data"),
    [
        ("stat", "/staff/junior/disable", {}),
        ("senior", "/staff/junior/password", {"password": NEW_PASSWORD}),
        ("manager", "/staff/junior/role", {"role": "leader"}),
        ("leader", "/staff/leader/disable", {}),
        ("leader", "/staff/leader/role", {"role": "statistician"}),
        ("leader", "/staff/leader/role", {"role": "leader"}),
        ("leader", "/staff/leader/password", {"password": NEW_PASSWORD}),
        ("leader", "/staff/junior/password", {"password": "short"}),
        ("leader", "/staff/junior/role", {"role": "province"}),
        ("leader", "/staff/junior/role", {"role": "emperor"}),
        ("leader", "/staff/nobody/disable", {}),
        ("leader", "/staff/bad%20id/disable", {}),
    ],
)
def test_refused_changes_change_nothing(
    console: Console, who: str, path: str, data: dict[str, str]
) -> None:
    before = {m.id: m for m in staff.all_staff(console.engine)}
    with console.browser(who) as client:
        answer = (
            _post(client, path, **data)
            if who == "leader"
            else client.post(
                path, data={"csrf_token": csrf_of(client.get("/tickets").text), **data}
            )
        )
    assert 400 <= answer.status_code < 500, answer.text
    assert {m.id: m for m in staff.all_staff(console.engine)} == before
    assert _can_log_in(console, "junior") and _can_log_in(console, "leader")


def test_a_form_without_its_csrf_token_is_refused(console: Console) -> None:
    with console.browser("leader") as leader:
        answer = leader.post("/staff/junior/disable", data={})
    assert answer.status_code == 403
    assert _can_log_in(console, "junior")


@pytest.mark.parametrize("who", ["junior", "leader"])
def test_a_member_changes_their_own_password_on_the_account_page(
    console: Console, who: str
) -> None:
    with console.browser(who) as browser, console.browser(who) as elsewhere:
        page = browser.get("/account")
        assert page.status_code == 200 and who in page.text
        assert 'href="/account"' in browser.get("/tickets").text  # the name in the header
        token = csrf_of(page.text)

        def change(
            current: str, new: str, again: str | None = None, lang: str = "zh"
        ) -> httpx.Response:
            form = {"csrf_token": token, "current": current, "new": new, "again": again or new}
            return browser.post(f"/account/password?lang={lang}", data=form)

        # Each refusal in the page's language; the password stays as it was.
        for current, new, again, zh, en in (
            ("wrong-password-1", NEW_PASSWORD, None, "当前密码不正确", "current password is wrong"),
            (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "两次输入的新密码不一致", "differ"),
            (PASSWORD, "short", None, "密码至少需要 12 个字符", "at least 12 characters"),
            (PASSWORD, f" {who.upper():<12}", None, "密码不能与工号相同", "staff id"),
            (PASSWORD, PASSWORD, None, "新密码与当前密码相同", "is the current one"),
        ):
            for lang, named in (("zh", zh), ("en", en)):
                refused = change(current, new, again, lang)
                assert refused.status_code == 422 and named in refused.text, (named, refused.text)
        assert _can_log_in(console, who)
        assert elsewhere.get("/tickets").status_code == 200
        # Without the form's token nothing happens.
        bare = browser.post("/account/password", data={"current": PASSWORD, "new": NEW_PASSWORD})
        assert bare.status_code == 403
        assert _can_log_in(console, who)

        old = copied_cookie(elsewhere)
        done = change(PASSWORD, NEW_PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/account?changed=1"
        assert browser.get("/tickets").status_code == 200, "this browser stays signed in"
        assert_ended(*replay(console, old))
    assert not _can_log_in(console, who)
    assert _can_log_in(console, who, NEW_PASSWORD)
