"""Hub accounts (the supervisor web), on SQLite and PostgreSQL, over a real server:

- ``fedsync hub staff disable|enable|reset-password|set-role`` exist and are audited; each
  of disable, reset and role change ends the account's sessions (a copied cookie too);
  refusals exit 2 naming what is wrong, with nothing changed;
- a member changes their own password at ``/account``: the current one is asked, the rules
  of a password apply, every other session of the account ends, this browser stays in;
- logging out ends every session of the account, so a copy of the cookie is no use after.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from province_hub import staff
from province_hub.audit import Action
from province_hub.store import AuditEntry
from sync.cli import main
from sync.db import make_engine
from tests.conftest import serving
from tests.hub_web_support import PASSWORD, fill, web_app

NEW = "a-fresh-secret-77"


@pytest.fixture
def site(databases: Any) -> Iterator[tuple[str, str, Engine]]:
    url = databases("hubaccounts")
    engine = make_engine(url)
    fill(engine)
    with serving(web_app(engine)) as base:
        yield base, url, engine
    engine.dispose()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@contextmanager
def signed_in(base: str, who: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        token = _csrf(c.get("/login").text)
        r = c.post("/login", data={"csrf_token": token, "staff_id": who, "password": password})
        assert r.status_code == 303, r.text
        yield c


def _copy(client: httpx.Client, base: str) -> httpx.Client:
    """Another client holding the same session cookie (a copied or stolen cookie)."""
    return httpx.Client(base_url=base, cookies=dict(client.cookies), timeout=30)


def _in(client: httpx.Client) -> bool:
    return client.get("/api/v1/me").status_code == 200


def _audit(engine: Engine, action: Action) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.target, AuditEntry.detail).where(AuditEntry.action == action.value)
        ).all()
    return [(r.target, r.detail) for r in rows]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, str, str]:
    """``fedsync`` in-process, with ``stdin`` as its standard input (``--password-stdin``)."""
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin + "\n")
    try:
        code = main(list(argv))
    finally:
        sys.stdin = saved
    out, err = capsys.readouterr()
    return code, out, err


def test_shell_commands_end_sessions_and_are_audited(site: Any, capsys: Any) -> None:
    base, url, engine = site
    db = ["--database-url", url]

    def member() -> staff.HubMember:
        found = staff.get_staff(engine, "supervisor")
        assert found is not None
        return found

    with signed_in(base, "supervisor") as browser, _copy(browser, base) as copy:
        assert _in(browser) and _in(copy)
        code, out, err = _cli(capsys, "hub", "staff", "disable", "--id", "supervisor", *db)
        assert code == 0 and "disabled" in out, err
        assert not _in(browser) and not _in(copy)
        # Again: nothing changes, and no second audit row says it did.
        code, out, err = _cli(capsys, "hub", "staff", "disable", "--id", "supervisor", *db)
        assert code == 0 and "disabled already: nothing changed" in out, err
        assert len(_audit(engine, Action.STAFF_DISABLED)) == 1
        code, out, err = _cli(capsys, "hub", "staff", "enable", "--id", "supervisor", *db)
        assert code == 0 and "enabled" in out, err
        # Enabling lets the account sign in again; it does not revive ended sessions.
        assert member().active and not _in(copy)
    with signed_in(base, "supervisor") as browser, _copy(browser, base) as copy:
        generation = member().generation
        code, out, err = _cli(
            capsys,
            "hub",
            "staff",
            "reset-password",
            "--id",
            "supervisor",
            "--password-stdin",
            *db,
            stdin=NEW,
        )
        assert code == 0 and "password reset" in out, err
        assert member().generation == generation + 1
        assert not _in(browser) and not _in(copy)
        assert staff.authenticate(engine, "supervisor", PASSWORD) is None
        assert staff.authenticate(engine, "supervisor", NEW) is not None
    with signed_in(base, "supervisor", NEW) as browser:
        code, out, err = _cli(
            capsys, "hub", "staff", "set-role", "--id", "supervisor", "--role", "admin", *db
        )
        assert code == 0 and "is admin" in out, err
        assert not _in(browser)
    with signed_in(base, "supervisor", NEW) as browser:
        assert browser.get("/api/v1/me").json()["role"] == "admin"
    assert ("staff:supervisor", "disabled") in _audit(engine, Action.STAFF_DISABLED)
    changed = _audit(engine, Action.STAFF_CHANGED)
    for detail in ("enabled", "password reset", "role admin"):
        assert ("staff:supervisor", detail) in changed, changed


def test_set_role_to_the_role_held_changes_nothing_and_says_so(site: Any, capsys: Any) -> None:
    base, url, engine = site
    before = staff.get_staff(engine, "supervisor")
    assert before is not None
    with signed_in(base, "supervisor") as browser:
        code, out, err = _cli(
            capsys,
            "hub",
            "staff",
            "set-role",
            "--id",
            "supervisor",
            "--role",
            before.role.value,
            "--database-url",
            url,
        )
        assert code == 0 and "nothing changed" in out and "ended" not in out, (out, err)
        assert _in(browser), "the sessions go on: nothing was changed"
    assert staff.get_staff(engine, "supervisor") == before


@pytest.mark.parametrize(
    ("argv", "stdin", "named"),
    [
        (["reset-password", "--id", "announcer", "--password-stdin"], "short-1", "at least 12"),
        (["reset-password", "--id", "announcer", "--password-stdin"], "announcer", "at least 12"),
        (["reset-password", "--id", "announcer", "--password-stdin"], " " * 14, "only spaces"),
        (["reset-password", "--id", "announcer", "--password-stdin"], " Announcer  ", "staff id"),
        (["reset-password", "--id", "nobody", "--password-stdin"], NEW, "no hub staff member"),
        (["disable", "--id", "nobody"], "", "no hub staff member 'nobody'"),
        (["enable", "--id", "nobody"], "", "no hub staff member 'nobody'"),
        (["set-role", "--id", "nobody", "--role", "admin"], "", "no hub staff member 'nobody'"),
        (["reset-password", "--id", "announcer"], NEW, "--password-stdin"),
    ],
)
def test_refused_shell_commands_change_nothing(
    site: Any, capsys: Any, argv: list[str], stdin: str, named: str
) -> None:
    _, url, engine = site
    before = staff.list_staff(engine)
    code, _, err = _cli(capsys, "hub", "staff", *argv, "--database-url", url, stdin=stdin)
    assert code == 2 and named in err and "Traceback" not in err, err
    assert staff.list_staff(engine) == before
    assert staff.authenticate(engine, "announcer", PASSWORD) is not None


def test_a_member_changes_their_own_password(site: Any) -> None:
    base, _, engine = site
    with (
        signed_in(base, "gm_hotline") as browser,
        signed_in(base, "gm_hotline") as elsewhere,
    ):
        page = browser.get("/account")
        assert page.status_code == 200 and "gm_hotline" in page.text
        token = _csrf(page.text)

        def change(
            current: str, new: str, again: str | None = None, lang: str = "zh"
        ) -> httpx.Response:
            form = {"csrf_token": token, "current": current, "new": new, "again": again or new}
            return browser.post(f"/account/password?lang={lang}", data=form)

        # Each refusal in the page's language: Chinese by default, English when asked.
        for current, new, again, zh, en in (
            ("wrong-password-1", NEW, None, "当前密码不正确", "the current password is wrong"),
            (PASSWORD, NEW, NEW + "x", "两次输入的新密码不一致", "differ"),
            (PASSWORD, "short", None, "密码至少需要 12 个字符", "at least 12 characters"),
            (PASSWORD, "GM_HOTLINE  ", None, "密码不能与工号相同", "staff id"),
            (PASSWORD, PASSWORD, None, "新密码与当前密码相同", "is the current one"),
        ):
            for lang, named in (("zh", zh), ("en", en)):
                refused = change(current, new, again, lang)
                assert refused.status_code == 422 and named in refused.text, (named, refused.text)
        assert staff.authenticate(engine, "gm_hotline", PASSWORD) is not None
        assert _in(elsewhere)
        # Without the form's token nothing happens.
        bare = browser.post("/account/password", data={"current": PASSWORD, "new": NEW})
        assert bare.status_code == 403
        done = change(PASSWORD, NEW)
        assert done.status_code == 303 and done.headers["location"] == "/account?changed=1"
        assert _in(browser), "the browser that changed the password stays signed in"
        assert not _in(elsewhere), "another session of the account ended"
        assert staff.authenticate(engine, "gm_hotline", NEW) is not None
        assert staff.authenticate(engine, "gm_hotline", PASSWORD) is None
    assert ("staff:gm_hotline", "own password changed") in _audit(engine, Action.STAFF_CHANGED)


def test_logging_out_ends_a_copied_cookie(site: Any) -> None:
    base, _, _ = site
    with signed_in(base, "announcer") as browser, _copy(browser, base) as copy:
        assert _in(copy)
        token = _csrf(browser.get("/account").text)
        assert browser.post("/logout", data={"csrf_token": token}).status_code == 303
        assert not _in(browser) and not _in(copy)
        assert copy.get("/account").headers["location"].startswith("/login")
