"""City staff accounts: who may sign in to the console, in which role.

Passwords are stored as scrypt hashes with a random salt per account (:mod:`sync.passwords`,
shared with the hub's accounts); checking uses a constant-time comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update

from city_node.context import CityError, NotFound
from city_node.domain import STAFF_ROLES, Role
from city_node.store import Staff
from sync.db import UnitOfWork
from sync.passwords import MIN_PASSWORD, burn, hash_password
from sync.passwords import verify_password as _verify

__all__ = [
    "MIN_PASSWORD",
    "StaffMember",
    "add",
    "all_staff",
    "authenticate",
    "get",
    "hash_password",
    "set_active",
    "set_password",
]

_ID = re.compile(r"^[A-Za-z0-9._-]{2,64}$")


@dataclass(frozen=True)
class StaffMember:
    id: str
    name: str
    role: Role
    active: bool


def _role(value: str | Role) -> Role:
    try:
        role = Role(value)
    except ValueError:
        role = None
    if role not in STAFF_ROLES:
        raise CityError(
            f"role {value!r} is not one of: {', '.join(r.value for r in STAFF_ROLES)}"
        ) from None
    assert role is not None
    return role


def add(
    engine: Engine, *, staff_id: str, name: str, role: str | Role, password: str
) -> StaffMember:
    """Create an account; refuses a taken id, an unknown role or a short password."""
    if not _ID.match(staff_id):
        raise CityError(f"staff id {staff_id!r}: use 2-64 letters, digits, '.', '_' or '-'")
    the_role = _role(role)
    if len(password) < MIN_PASSWORD:
        raise CityError(f"password must have at least {MIN_PASSWORD} characters")
    with UnitOfWork(engine) as uow:
        taken = uow.conn.execute(select(Staff.id).where(Staff.id == staff_id)).first()
        if taken is not None:
            raise CityError(f"staff id {staff_id!r} is taken")
        uow.conn.execute(
            insert(Staff).values(
                id=staff_id,
                name=name.strip() or staff_id,
                role=the_role.value,
                password_hash=hash_password(password),
                active=True,
                created_at=datetime.now(UTC),
            )
        )
        uow.commit()
    return StaffMember(staff_id, name.strip() or staff_id, the_role, True)


def set_active(engine: Engine, staff_id: str, active: bool) -> None:
    with UnitOfWork(engine) as uow:
        done = uow.conn.execute(update(Staff).where(Staff.id == staff_id).values(active=active))
        if done.rowcount != 1:
            raise NotFound(f"no staff member {staff_id!r}")
        uow.commit()


def set_password(engine: Engine, staff_id: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise CityError(f"password must have at least {MIN_PASSWORD} characters")
    with UnitOfWork(engine) as uow:
        done = uow.conn.execute(
            update(Staff).where(Staff.id == staff_id).values(password_hash=hash_password(password))
        )
        if done.rowcount != 1:
            raise NotFound(f"no staff member {staff_id!r}")
        uow.commit()


def authenticate(engine: Engine, staff_id: str, password: str) -> StaffMember | None:
    """The active account whose password this is, else None (same answer for an unknown id
    and a wrong password, so ids cannot be probed)."""
    with engine.connect() as conn:
        row = conn.execute(select(Staff).where(Staff.id == staff_id)).first()
    if row is None:
        burn(password)  # same time as a real check
        return None
    if not row.active or not _verify(password, row.password_hash):
        return None
    return StaffMember(row.id, row.name, Role(row.role), row.active)


def get(engine: Engine, staff_id: str) -> StaffMember | None:
    with engine.connect() as conn:
        row = conn.execute(select(Staff).where(Staff.id == staff_id)).first()
    return None if row is None else StaffMember(row.id, row.name, Role(row.role), row.active)


def all_staff(engine: Engine) -> list[StaffMember]:
    with engine.connect() as conn:
        rows = conn.execute(select(Staff).order_by(Staff.role, Staff.id)).all()
    return [StaffMember(r.id, r.name, Role(r.role), r.active) for r in rows]
