"""City staff accounts: who may sign in to the console, in which role.

Passwords are stored as scrypt hashes with a random salt per account (:mod:`sync.passwords`,
shared with the hub's accounts); checking uses a constant-time comparison. A password has at
least ``MIN_PASSWORD`` characters, is not the account's id and is not only spaces.

Managing accounts (disable, enable, reset a password, change a role) is the leader's
(``Action.MANAGE_STAFF``) when a staff member acts (``by``: the console, ``fedsync city staff
… --as``); ``by=None`` is the node's administrator at the shell, who holds the store itself.
A leader acting never changes their own account — no disabling, enabling, password
reset or role change, not even to the role held (ask another leader or the administrator;
nobody resets their own password without giving the current one) — so a leader acting
always leaves one active leader behind; the administrator can always add one.
Disabling, resetting and re-roling bump the
account's ``session_generation``, and so does logging out (:func:`end_sessions`); the
console signs the generation into its session cookie and refuses a cookie of an older one,
so each of these ends every open session of the account, copies of the cookie included.

Signing in costs one password check whether the account exists, is disabled or the password
is wrong (:func:`authenticate`), so the answer's timing does not tell them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from city_node import domain
from city_node.context import Actor, CityError, NotFound
from city_node.domain import STAFF_ROLES, Action, Role
from city_node.store import Staff
from sync.db import UnitOfWork
from sync.limits import staff_name_refusal
from sync.passwords import (
    MIN_PASSWORD,
    burn,
    change_refusal,
    hash_password,
    password_refusal,
)
from sync.passwords import verify_password as _verify

__all__ = [
    "MIN_PASSWORD",
    "StaffMember",
    "add",
    "all_staff",
    "authenticate",
    "end_sessions",
    "get",
    "hash_password",
    "set_active",
]

_ID = re.compile(r"^[A-Za-z0-9._-]{2,64}$")


@dataclass(frozen=True)
class StaffMember:
    id: str
    name: str
    role: Role
    active: bool
    session_generation: int = 0


def _role(value: str | Role) -> Role:
    try:
        role = Role(value)
    except ValueError:
        role = None
    if role not in STAFF_ROLES:
        raise CityError(
            "staff.bad_role", value=value, roles=", ".join(r.value for r in STAFF_ROLES)
        ) from None
    assert role is not None
    return role


def check_password(password: str, staff_id: str) -> str:
    """``password`` if it may be an account's password, else ``CityError`` saying why."""
    problem = password_refusal(password, staff_id)
    if problem:
        raise CityError(problem[0], **problem[1])
    return password


def add(
    engine: Engine, *, staff_id: str, name: str, role: str | Role, password: str
) -> StaffMember:
    """Create an account; refuses a taken id, an unknown role or a short password."""
    if not _ID.match(staff_id):
        raise CityError("staff.bad_id", staff_id=staff_id)
    the_role = _role(role)
    name_problem = staff_name_refusal(name)
    if name_problem:
        raise CityError(name_problem[0], field="name", **name_problem[1])
    check_password(password, staff_id)
    with UnitOfWork(engine) as uow:
        taken = uow.conn.execute(select(Staff.id).where(Staff.id == staff_id)).first()
        if taken is not None:
            raise CityError("staff.id_taken", staff_id=staff_id)
        uow.conn.execute(
            insert(Staff).values(
                id=staff_id,
                name=name.strip(),
                role=the_role.value,
                password_hash=hash_password(password),
                active=True,
                created_at=datetime.now(UTC),
            )
        )
        uow.commit()
    return StaffMember(staff_id, name.strip(), the_role, True)


def _member(row: Any) -> StaffMember:
    return StaffMember(row.id, row.name, Role(row.role), row.active, row.session_generation)


def _may_manage(by: Actor | None) -> None:
    if by is not None:
        domain.check_may(by.role, Action.MANAGE_STAFF)


def _own(by: Actor | None, staff_id: str) -> bool:
    """Whether the staff member acting would change their own account."""
    return by is not None and by.id == staff_id


def _locked(conn: Connection, staff_id: str) -> Any:
    row = conn.execute(select(Staff).where(Staff.id == staff_id).with_for_update()).first()
    if row is None:
        raise NotFound("staff.unknown", staff_id=staff_id)
    return row


def _change(conn: Connection, staff_id: str, **values: Any) -> None:
    conn.execute(
        update(Staff)
        .where(Staff.id == staff_id)
        .values(session_generation=Staff.session_generation + 1, **values)
    )


def disable(engine: Engine, staff_id: str, *, by: Actor | None) -> StaffMember:
    """Stop an account from signing in; its console sessions end."""
    _may_manage(by)
    if _own(by, staff_id):
        raise CityError("staff.disable_self")
    with UnitOfWork(engine) as uow:
        _locked(uow.conn, staff_id)
        _change(uow.conn, staff_id, active=False)
        row = _locked(uow.conn, staff_id)
        uow.commit()
    return _member(row)


def enable(engine: Engine, staff_id: str, *, by: Actor | None) -> StaffMember:
    """Let a disabled account sign in again (with its password as it was)."""
    _may_manage(by)
    if _own(by, staff_id):
        raise CityError("staff.enable_self")
    with UnitOfWork(engine) as uow:
        _locked(uow.conn, staff_id)
        uow.conn.execute(update(Staff).where(Staff.id == staff_id).values(active=True))
        row = _locked(uow.conn, staff_id)
        uow.commit()
    return _member(row)


def reset_password(engine: Engine, staff_id: str, password: str, *, by: Actor | None) -> None:
    """Give an account a new password; its open console sessions end."""
    _may_manage(by)
    if _own(by, staff_id):
        raise CityError("staff.own_password")
    check_password(password, staff_id)
    with UnitOfWork(engine) as uow:
        _locked(uow.conn, staff_id)
        _change(uow.conn, staff_id, password_hash=hash_password(password))
        uow.commit()


def set_role(engine: Engine, staff_id: str, role: str | Role, *, by: Actor | None) -> StaffMember:
    """Move an account to another role; its open console sessions end. The role it has
    already changes nothing (its sessions go on)."""
    _may_manage(by)
    if _own(by, staff_id):
        raise CityError("staff.own_role")
    the_role = _role(role)
    with UnitOfWork(engine) as uow:
        row = _locked(uow.conn, staff_id)
        if row.role == the_role.value:
            return _member(row)
        _change(uow.conn, staff_id, role=the_role.value)
        row = _locked(uow.conn, staff_id)
        uow.commit()
    return _member(row)


def change_own_password(
    engine: Engine, member: StaffMember, *, current: str, new: str, again: str
) -> StaffMember:
    """A member's own new password, given the current one and the new one twice (the
    console's account page). Every console session of the account ends; the caller signs
    the member in again under the returned generation."""
    with UnitOfWork(engine) as uow:
        row = _locked(uow.conn, member.id)
        if not row.active:
            raise NotFound("staff.unknown", staff_id=member.id)
        refusal = change_refusal(
            row.password_hash, current=current, new=new, again=again, account_id=member.id
        )
        if refusal is not None:
            raise CityError(refusal[0], **refusal[1])
        _change(uow.conn, member.id, password_hash=hash_password(new))
        row = _locked(uow.conn, member.id)
        uow.commit()
    return _member(row)


def set_active(engine: Engine, staff_id: str, active: bool) -> None:
    """The administrator's switch (``by=None``); see ``disable`` and ``enable``."""
    if active:
        enable(engine, staff_id, by=None)
    else:
        disable(engine, staff_id, by=None)


def authenticate(engine: Engine, staff_id: str, password: str) -> StaffMember | None:
    """The active account whose password this is, else None (same answer for an unknown id
    and a wrong password, so ids cannot be probed)."""
    with engine.connect() as conn:
        row = conn.execute(select(Staff).where(Staff.id == staff_id)).first()
    if row is None:
        burn(password)  # same time as a real check
        return None
    # Check the password even for a disabled account: answering at once would tell it apart.
    right = _verify(password, row.password_hash)
    if not row.active or not right:
        return None
    return _member(row)


def end_sessions(engine: Engine, staff_id: str) -> None:
    """End every console session of the account (logging out): its generation moves on."""
    with UnitOfWork(engine) as uow:
        _change(uow.conn, staff_id)
        uow.commit()


def get(engine: Engine, staff_id: str) -> StaffMember | None:
    with engine.connect() as conn:
        row = conn.execute(select(Staff).where(Staff.id == staff_id)).first()
    return None if row is None else _member(row)


def all_staff(engine: Engine) -> list[StaffMember]:
    with engine.connect() as conn:
        rows = conn.execute(select(Staff).order_by(Staff.role, Staff.id)).all()
    return [_member(r) for r in rows]
