"""Hub accounts: who may sign in to the supervisor web, in which role.

The roles are the province's posts (docs/domain.md, "People at each tier"); what each may open
is the web's area table (:mod:`province_hub.web.access`). Passwords are scrypt hashes with
a random salt per account (:mod:`sync.passwords`, the same scheme and rules as the city's
staff).

Accounts are managed at the hub's shell (``fedsync hub staff``: add, disable, enable,
reset a password, change a role); a member changes their own password in the supervisor
web. Each change but enabling moves the account's ``session_generation`` on, and so does
logging out (:func:`end_sessions`): the web signs the generation into its session cookie
and refuses a cookie of an older one, so these end every open session of the account,
copies of the cookie included. Every change is in the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from province_hub import audit
from province_hub.audit import CLI_ADDRESS, Action
from province_hub.refusals import HubRefusal
from province_hub.store import HubStaff
from sync.db import UnitOfWork
from sync.limits import staff_name_refusal
from sync.passwords import (
    burn,
    change_refusal,
    hash_password,
    password_refusal,
    verify_password,
)

_ID = re.compile(r"^[A-Za-z0-9._-]{2,64}$")


class HubRole(StrEnum):
    SUPERVISOR = "supervisor"  # 服务督查岗
    STATISTICS_MANAGER = "statistics_manager"  # 统计管理岗
    MATERIALS_MANAGER = "materials_manager"  # 资料管理岗
    GM_HOTLINE = "gm_hotline"  # 总经理热线
    ANNOUNCER = "announcer"  # 公告发布
    ADMIN = "admin"  # 系统管理员


class StaffError(HubRefusal, ValueError):
    """A refused account change; the message says what to give instead."""


class UnknownStaff(HubRefusal, LookupError):
    """No account with that id."""


@dataclass(frozen=True)
class HubMember:
    id: str
    name: str
    role: HubRole
    active: bool
    #: The account's session generation (see the module's docs).
    generation: int = 0


def _member(row: Any) -> HubMember:
    return HubMember(row.id, row.name, HubRole(row.role), row.active, row.session_generation)


def _check_password(password: str, staff_id: str) -> None:
    problem = password_refusal(password, staff_id)
    if problem:
        raise StaffError(problem[0], **problem[1])


def _role(value: str | HubRole) -> HubRole:
    try:
        return HubRole(value)
    except ValueError:
        raise StaffError(
            "staff.bad_role", value=value, roles=", ".join(r.value for r in HubRole)
        ) from None


def add_staff(
    engine: Engine,
    *,
    staff_id: str,
    name: str,
    role: str | HubRole,
    password: str,
    by: str = "",
    address: str = CLI_ADDRESS,
) -> HubMember:
    """Create an account; refuses a taken id, an unknown role or a short password. Audited
    as done by ``by`` from ``address`` (the hub's shell by default)."""
    if not _ID.match(staff_id):
        raise StaffError("staff.bad_id", staff_id=staff_id)
    the_role = _role(role)
    name_problem = staff_name_refusal(name)
    if name_problem:
        raise StaffError(name_problem[0], field="name", **name_problem[1])
    _check_password(password, staff_id)
    display = name.strip()
    with UnitOfWork(engine) as uow:
        taken = uow.conn.execute(select(HubStaff.id).where(HubStaff.id == staff_id)).first()
        if taken is not None:
            raise StaffError("staff.id_taken", staff_id=staff_id)
        uow.conn.execute(
            insert(HubStaff).values(
                id=staff_id,
                name=display,
                role=the_role.value,
                password_hash=hash_password(password),
                active=True,
                created_at=datetime.now(UTC),
            )
        )
        _audit(
            uow.conn, staff_id, Action.STAFF_ADDED, f"role {the_role.value}", by=by, address=address
        )
        uow.commit()
    return HubMember(staff_id, display, the_role, True)


def _audit(
    conn: Connection,
    staff_id: str,
    action: Action,
    detail: str,
    *,
    by: str,
    address: str,
    role: str = "",
) -> None:
    """The audit row of a change to account ``staff_id``, in the change's transaction."""
    audit.record(
        conn,
        actor=by,
        role=role,
        action=action,
        target=f"staff:{staff_id}",
        detail=detail,
        address=address,
    )


def _change(conn: Connection, staff_id: str, *, end_sessions: bool = True, **values: Any) -> Any:
    """Apply ``values`` to the account (its sessions end unless told otherwise); the row."""
    if end_sessions:
        values["session_generation"] = HubStaff.session_generation + 1
    done = conn.execute(update(HubStaff).where(HubStaff.id == staff_id).values(**values))
    if done.rowcount != 1:
        raise UnknownStaff("staff.unknown", staff_id=staff_id)
    return conn.execute(select(HubStaff).where(HubStaff.id == staff_id)).one()


def set_active(
    engine: Engine, *, staff_id: str, active: bool, by: str = "", address: str = CLI_ADDRESS
) -> bool:
    """Disable an account (its web sessions end) or re-enable it with its password as it
    was (audited like :func:`add_staff`); False, and nothing written, when it already is
    so (as :func:`set_role` with the same role)."""
    with UnitOfWork(engine) as uow:
        row = uow.conn.execute(
            select(HubStaff.active).where(HubStaff.id == staff_id).with_for_update()
        ).first()
        if row is None:
            raise UnknownStaff("staff.unknown", staff_id=staff_id)
        if bool(row.active) == active:
            return False
        _change(uow.conn, staff_id, end_sessions=not active, active=active)
        _audit(
            uow.conn,
            staff_id,
            Action.STAFF_CHANGED if active else Action.STAFF_DISABLED,
            "enabled" if active else "disabled",
            by=by,
            address=address,
        )
        uow.commit()
    return True


def reset_password(
    engine: Engine, *, staff_id: str, password: str, by: str = "", address: str = CLI_ADDRESS
) -> None:
    """Give an account a new password (the administrator's, at the shell); its web sessions
    end. Audited."""
    _check_password(password, staff_id)
    with UnitOfWork(engine) as uow:
        _change(uow.conn, staff_id, password_hash=hash_password(password))
        _audit(uow.conn, staff_id, Action.STAFF_CHANGED, "password reset", by=by, address=address)
        uow.commit()


def set_role(
    engine: Engine,
    *,
    staff_id: str,
    role: str | HubRole,
    by: str = "",
    address: str = CLI_ADDRESS,
) -> HubMember:
    """Move an account to another role; its web sessions end (what it may open changed).
    Audited; the same role again changes nothing."""
    the_role = _role(role)
    with UnitOfWork(engine) as uow:
        row = uow.conn.execute(
            select(HubStaff).where(HubStaff.id == staff_id).with_for_update()
        ).first()
        if row is None:
            raise UnknownStaff("staff.unknown", staff_id=staff_id)
        if row.role == the_role.value:
            return _member(row)
        row = _change(uow.conn, staff_id, role=the_role.value)
        _audit(
            uow.conn,
            staff_id,
            Action.STAFF_CHANGED,
            f"role {the_role.value}",
            by=by,
            address=address,
        )
        uow.commit()
    return _member(row)


def change_own_password(
    engine: Engine, member: HubMember, *, current: str, new: str, again: str, address: str
) -> HubMember:
    """A member's own new password, given the current one and the new one twice; every
    session of the account ends, the caller signs the member in again under the new
    generation. Audited."""
    with engine.connect() as conn:
        row = conn.execute(select(HubStaff).where(HubStaff.id == member.id)).first()
    if row is None or not row.active:
        raise UnknownStaff("staff.unknown_active", staff_id=member.id)
    refusal = change_refusal(
        row.password_hash, current=current, new=new, again=again, account_id=member.id
    )
    if refusal is not None:
        raise StaffError(refusal[0], **refusal[1])
    with UnitOfWork(engine) as uow:
        row = _change(uow.conn, member.id, password_hash=hash_password(new))
        _audit(
            uow.conn,
            member.id,
            Action.STAFF_CHANGED,
            "own password changed",
            by=member.id,
            address=address,
            role=member.role.value,
        )
        uow.commit()
    return _member(row)


def end_sessions(engine: Engine, staff_id: str) -> None:
    """End every web session of the account (logging out): its generation moves on."""
    with UnitOfWork(engine) as uow:
        _change(uow.conn, staff_id)
        uow.commit()


def authenticate(engine: Engine, staff_id: str, password: str) -> HubMember | None:
    """The active account whose password this is, else None (same answer, and the same
    time, for an unknown id and a wrong password, so ids cannot be probed)."""
    with engine.connect() as conn:
        row = conn.execute(select(HubStaff).where(HubStaff.id == staff_id)).first()
    if row is None:
        burn(password)
        return None
    # Check the password even for a disabled account: answering at once would tell it apart.
    right = verify_password(password, row.password_hash)
    if not row.active or not right:
        return None
    return _member(row)


def get_staff(engine: Engine, staff_id: str) -> HubMember | None:
    with engine.connect() as conn:
        row = conn.execute(select(HubStaff).where(HubStaff.id == staff_id)).first()
    return None if row is None else _member(row)


def list_staff(engine: Engine) -> list[HubMember]:
    with engine.connect() as conn:
        rows = conn.execute(select(HubStaff).order_by(HubStaff.role, HubStaff.id)).all()
    return [_member(r) for r in rows]
