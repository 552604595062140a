"""Hub accounts: who may sign in to the supervisor web, in which role.

The roles are the province's posts (mission.md, "People at each tier"); what each may open
is the web's area table (:mod:`province_hub.web.access`). Passwords are scrypt hashes with
a random salt per account (:mod:`sync.passwords`, the same scheme as the city's staff).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, insert, select, update

from province_hub import audit
from province_hub.audit import CLI_ADDRESS, Action
from province_hub.store import HubStaff
from sync.db import UnitOfWork
from sync.passwords import MIN_PASSWORD, burn, hash_password, verify_password

_ID = re.compile(r"^[A-Za-z0-9._-]{2,64}$")


class HubRole(StrEnum):
    SUPERVISOR = "supervisor"  # 服务督查岗
    STATISTICS_MANAGER = "statistics_manager"  # 统计管理岗
    MATERIALS_MANAGER = "materials_manager"  # 资料管理岗
    GM_HOTLINE = "gm_hotline"  # 总经理热线
    ANNOUNCER = "announcer"  # 公告发布
    ADMIN = "admin"  # 系统管理员


class StaffError(ValueError):
    """A refused account change; the message says what to give instead."""


class UnknownStaff(LookupError):
    """No account with that id."""


@dataclass(frozen=True)
class HubMember:
    id: str
    name: str
    role: HubRole
    active: bool


def _role(value: str | HubRole) -> HubRole:
    try:
        return HubRole(value)
    except ValueError:
        raise StaffError(
            f"role {value!r} is not one of: {', '.join(r.value for r in HubRole)}"
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
        raise StaffError(f"staff id {staff_id!r}: use 2-64 letters, digits, '.', '_' or '-'")
    the_role = _role(role)
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password must have at least {MIN_PASSWORD} characters")
    display = name.strip() or staff_id
    with UnitOfWork(engine) as uow:
        taken = uow.conn.execute(select(HubStaff.id).where(HubStaff.id == staff_id)).first()
        if taken is not None:
            raise StaffError(f"staff id {staff_id!r} is taken")
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
        audit.record(
            uow.conn,
            actor=by,
            role="",
            action=Action.STAFF_ADDED,
            target=f"staff:{staff_id}",
            detail=f"role {the_role.value}",
            address=address,
        )
        uow.commit()
    return HubMember(staff_id, display, the_role, True)


def set_active(
    engine: Engine, *, staff_id: str, active: bool, by: str = "", address: str = CLI_ADDRESS
) -> None:
    """Disable or re-enable an account (audited like :func:`add_staff`)."""
    with UnitOfWork(engine) as uow:
        done = uow.conn.execute(
            update(HubStaff).where(HubStaff.id == staff_id).values(active=active)
        )
        if done.rowcount != 1:
            raise UnknownStaff(f"no hub staff member {staff_id!r}")
        audit.record(
            uow.conn,
            actor=by,
            role="",
            action=Action.STAFF_CHANGED if active else Action.STAFF_DISABLED,
            target=f"staff:{staff_id}",
            detail="enabled" if active else "disabled",
            address=address,
        )
        uow.commit()


def authenticate(engine: Engine, staff_id: str, password: str) -> HubMember | None:
    """The active account whose password this is, else None (same answer, and the same
    time, for an unknown id and a wrong password, so ids cannot be probed)."""
    with engine.connect() as conn:
        row = conn.execute(select(HubStaff).where(HubStaff.id == staff_id)).first()
    if row is None:
        burn(password)
        return None
    if not row.active or not verify_password(password, row.password_hash):
        return None
    return HubMember(row.id, row.name, HubRole(row.role), row.active)


def get_staff(engine: Engine, staff_id: str) -> HubMember | None:
    with engine.connect() as conn:
        row = conn.execute(select(HubStaff).where(HubStaff.id == staff_id)).first()
    return None if row is None else HubMember(row.id, row.name, HubRole(row.role), row.active)


def list_staff(engine: Engine) -> list[HubMember]:
    with engine.connect() as conn:
        rows = conn.execute(select(HubStaff).order_by(HubStaff.role, HubStaff.id)).all()
    return [HubMember(r.id, r.name, HubRole(r.role), r.active) for r in rows]
