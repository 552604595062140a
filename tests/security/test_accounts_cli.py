"""Promises about staff accounts and the command line (city stores on SQLite and PostgreSQL).

- Passwords have at least 12 characters, are not the staff id and are not only spaces.
- ``fedsync city staff disable|enable|reset-password|set-role`` exist; each of disable,
  reset and role change ends the account's sessions (its session generation moves on).
- With ``--as``, the same rule as the console applies: only a leader manages accounts, and
  not their own.
- A command that cannot reach its database exits 2 with the reason, not a traceback.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import Engine

from city_node import staff
from city_node.context import Actor, CityError
from city_node.domain import PermissionDenied, Role
from city_node.services import open_store
from city_node.staff import StaffMember
from city_node.store import create_schema
from sync.cli import main
from sync.db import make_engine

CITY = "620100"
GOOD = "correct horse battery"


def member(engine: Engine, staff_id: str) -> StaffMember:
    found = staff.get(engine, staff_id)
    assert found is not None, f"no staff member {staff_id!r}"
    return found


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store(databases: Any) -> Any:
    url = databases("accounts")
    engine = make_engine(url)
    create_schema(engine)
    open_store(engine, CITY)
    for staff_id, role in (("lead-1", "leader"), ("lead-2", "leader"), ("op-1", "operator_junior")):
        staff.add(engine, staff_id=staff_id, name=staff_id, role=role, password=GOOD)
    yield url, engine
    engine.dispose()


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("elevenchars", "at least 12 characters"),
        (" " * 16, "only spaces"),
        ("new-person-01", "not be the staff id"),
        ("NEW-PERSON-01 ", "not be the staff id"),
    ],
)
def test_weak_passwords_are_refused(store: Any, password: str, why: str) -> None:
    _, engine = store
    with pytest.raises(CityError, match=why):
        staff.add(engine, staff_id="new-person-01", name="n", role="surveyor", password=password)
    assert staff.get(engine, "new-person-01") is None
    staff.add(engine, staff_id="new-person-01", name="n", role="surveyor", password=GOOD)
    with pytest.raises(CityError, match=why):
        staff.reset_password(engine, "new-person-01", password, by=None)
    assert staff.authenticate(engine, "new-person-01", GOOD) is not None


def reset(capsys, monkeypatch, password: str, *argv: str) -> tuple[int, str, str]:
    """``fedsync city staff reset-password ARGV --password-stdin`` with ``password`` piped in."""
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{password}\n"))
    return run(capsys, "city", "staff", "reset-password", *argv, "--password-stdin")


def test_staff_commands_end_sessions(store: Any, capsys, monkeypatch) -> None:
    url, engine = store
    flags = ["--code", CITY, "--database-url", url]
    generation = member(engine, "op-1").session_generation

    def moved() -> bool:
        nonlocal generation
        now = member(engine, "op-1").session_generation
        changed, generation = now > generation, now
        return changed

    code, out, err = run(capsys, "city", "staff", "disable", "--id", "op-1", *flags)
    assert code == 0 and "disabled" in out, err
    assert staff.authenticate(engine, "op-1", GOOD) is None and moved()
    assert run(capsys, "city", "staff", "enable", "--id", "op-1", *flags)[0] == 0
    assert staff.authenticate(engine, "op-1", GOOD) is not None and not moved()
    code, _, err = reset(capsys, monkeypatch, "x" * 11, "--id", "op-1", *flags)
    assert code == 2 and "at least 12 characters" in err and "Traceback" not in err
    code, _, err = reset(capsys, monkeypatch, "fresh-secret-99", "--id", "op-1", *flags)
    assert code == 0, err
    assert staff.authenticate(engine, "op-1", GOOD) is None
    assert staff.authenticate(engine, "op-1", "fresh-secret-99") is not None and moved()
    code, out, err = run(
        capsys, "city", "staff", "set-role", "--id", "op-1", "--role", "operator_senior", *flags
    )
    assert code == 0 and "operator_senior" in out, err
    assert member(engine, "op-1").role is Role.OPERATOR_SENIOR and moved()
    code, _, err = run(capsys, "city", "staff", "disable", "--id", "nobody", *flags)
    assert code == 2 and "no staff member 'nobody'" in err


def test_only_a_leader_manages_accounts_and_not_their_own(store: Any, capsys) -> None:
    url, engine = store
    flags = ["--code", CITY, "--database-url", url]
    code, _, err = run(capsys, "city", "staff", "disable", "--id", "lead-1", "--as", "op-1", *flags)
    assert code == 2 and "may not manage_staff" in err
    assert member(engine, "lead-1").active
    code, _, err = run(
        capsys, "city", "staff", "disable", "--id", "lead-1", "--as", "lead-1", *flags
    )
    assert code == 2 and "your own account" in err
    with pytest.raises(CityError, match="your own role"):
        staff.set_role(engine, "lead-1", "surveyor", by=Actor("lead-1", Role.LEADER))
    with pytest.raises(PermissionDenied):
        staff.reset_password(
            engine, "lead-1", "another-secret-1", by=Actor("op-1", Role.OPERATOR_JUNIOR)
        )
    assert staff.authenticate(engine, "lead-1", GOOD) is not None
    code, _, err = run(
        capsys, "city", "staff", "disable", "--id", "lead-1", "--as", "lead-2", *flags
    )
    assert code == 0, err
    assert not member(engine, "lead-1").active


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["reset-password", "--password-stdin"], "your own password"),
        (["set-role", "--role", "leader"], "your own role"),  # the role held: refused too
        (["set-role", "--role", "surveyor"], "your own role"),
        (["enable"], "your own account"),
        (["disable"], "your own account"),
    ],
)
def test_a_leader_acting_never_changes_their_own_account(
    store: Any, capsys, monkeypatch, argv: list[str], named: str
) -> None:
    url, engine = store
    monkeypatch.setattr("sys.stdin", io.StringIO("another-secret-1\n"))
    before = member(engine, "lead-1")
    code, out, err = run(
        capsys,
        "city",
        "staff",
        argv[0],
        "--id",
        "lead-1",
        *argv[1:],
        "--as",
        "lead-1",
        "--code",
        CITY,
        "--database-url",
        url,
    )
    assert code == 2 and named in err and "Traceback" not in err, (out, err)
    assert member(engine, "lead-1") == before  # role, activity and sessions as they were
    assert staff.authenticate(engine, "lead-1", GOOD) is not None
    # Another leader may.
    flags = ["--as", "lead-2", "--code", CITY, "--database-url", url]
    code, _, err = reset(capsys, monkeypatch, "another-secret-1", "--id", "lead-1", *flags)
    assert code == 0, err
    assert staff.authenticate(engine, "lead-1", "another-secret-1") is not None


def test_set_role_to_the_role_held_says_nothing_changed(store: Any, capsys) -> None:
    url, engine = store
    flags = ["--code", CITY, "--database-url", url]
    before = member(engine, "op-1")
    for actor in ([], ["--as", "lead-1"]):
        code, out, err = run(
            capsys,
            "city",
            "staff",
            "set-role",
            "--id",
            "op-1",
            "--role",
            "operator_junior",
            *actor,
            *flags,
        )
        assert code == 0 and "nothing changed" in out and "session" not in out, (out, err)
        assert member(engine, "op-1") == before  # its sessions go on
    code, out, _ = run(
        capsys, "city", "staff", "set-role", "--id", "op-1", "--role", "surveyor", *flags
    )
    assert code == 0 and "sessions end" in out
    assert member(engine, "op-1").session_generation == before.session_generation + 1


@pytest.mark.parametrize(
    "argv",
    [
        ["city", "staff", "list", "--code", CITY],
        ["city", "ticket", "list", "--code", CITY],
        ["hub", "status"],
    ],
    ids=["city staff list", "city ticket list", "hub status"],
)
def test_a_command_that_cannot_reach_its_database_exits_2(capsys, argv: list[str]) -> None:
    url = "postgresql+psycopg://fedsync@127.0.0.1:1/fedsync"  # nothing listens on port 1
    code, _, err = run(capsys, *argv, "--database-url", url)
    assert code == 2
    assert err.startswith("fedsync: error: cannot use the database:")
    assert "Connection refused" in err and "Traceback" not in err


def test_a_store_that_cannot_be_created_exits_2(capsys, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'city.sqlite'}"  # a folder under a regular file
    code, _, err = run(capsys, "city", "staff", "list", "--code", CITY, "--database-url", url)
    assert code == 2 and str(blocker) in err and "Traceback" not in err


def test_stdin_passwords_work_for_reset(store: Any, capsys, monkeypatch) -> None:
    url, engine = store
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-secret\n"))
    code, _, err = run(
        capsys,
        "city",
        "staff",
        "reset-password",
        "--id",
        "op-1",
        "--password-stdin",
        "--code",
        CITY,
        "--database-url",
        url,
    )
    assert code == 0, err
    assert staff.authenticate(engine, "op-1", "from-stdin-secret") is not None


@pytest.mark.parametrize(
    "argv",
    [
        ["city", "staff", "add", "--code", CITY, "--id", "op-9", "--name", "n", "--role", "leader"],
        ["city", "staff", "reset-password", "--code", CITY, "--id", "op-1"],
        ["hub", "staff", "add", "--id", "sup-9", "--name", "n", "--role", "supervisor"],
        ["hub", "staff", "reset-password", "--id", "sup-9"],
    ],
    ids=["city add", "city reset", "hub add", "hub reset"],
)
def test_a_password_is_never_taken_from_the_command_line(argv: list[str], tmp_path, capsys) -> None:
    """On the command line a password shows in the process list and the shell's history:
    only --password-stdin takes one."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--password", "long-enough-secret", "--database-url", url])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --password: " in err and "--password-stdin" in err
    assert "long-enough-secret" not in err  # the refusal does not print it back
    assert not (tmp_path / "store.sqlite").exists()
