"""The hub's audit log: every action that sends something or changes state, with who, in
which role, when, what and from where.

Writers call :func:`record` with the connection of the use case's own transaction, so the
audit row commits (or rolls back) together with the change it describes; a refused action
that changed nothing writes nothing, except failed logins, which are recorded on their own.
The table is append-only: this module inserts and reads, nothing updates or deletes.
No customer data goes into ``detail`` (ids and counts only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection, Engine, Table, insert, select

from province_hub.store import AuditEntry
from sync.db import UnitOfWork

_TABLE: Table = AuditEntry.__table__  # type: ignore[assignment]
#: Addresses as long as the column holds (an IPv6 address with zone fits easily).
_ADDRESS_MAX = 64


class Action(StrEnum):
    """What was done; the audit page filters by these."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    NOTICE_SENT = "notice_sent"
    OBJECTION_ANSWERED = "objection_answered"
    ESCALATION_TAKEN = "escalation_taken"
    ESCALATION_NOTED = "escalation_noted"
    ESCALATION_CONTACTED = "escalation_contacted"
    ESCALATION_RESOLVED = "escalation_resolved"
    TRACE_REQUESTED = "trace_requested"
    STAFF_ADDED = "staff_added"
    STAFF_DISABLED = "staff_disabled"
    STAFF_CHANGED = "staff_changed"
    SUGGESTIONS_SEEN = "suggestions_seen"
    PERSONAL_DATA_EXPORTED = "personal_data_exported"


#: The address recorded for actions taken with ``fedsync hub ...`` at the hub's shell.
CLI_ADDRESS = "cli"


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    role: str
    action: Action
    target: str
    detail: str
    address: str


def record(
    conn: Connection,
    *,
    actor: str,
    role: str,
    action: Action,
    target: str = "",
    detail: str = "",
    address: str = "",
    at: datetime | None = None,
) -> None:
    """Append one audit row in the caller's transaction."""
    conn.execute(
        insert(_TABLE).values(
            at=at or datetime.now(UTC),
            actor=actor[:64],
            role=str(role)[:32],
            action=Action(action).value,
            target=target,
            detail=detail,
            address=address[:_ADDRESS_MAX],
        )
    )


def record_alone(engine: Engine, **fields: object) -> None:
    """Append one audit row in a transaction of its own (failed logins, logouts: actions
    with no other change to commit alongside)."""
    with UnitOfWork(engine) as uow:
        record(uow.conn, **fields)  # type: ignore[arg-type]
        uow.commit()


def entries(
    engine: Engine,
    *,
    actor: str | None = None,
    action: Action | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
    offset: int = 0,
) -> Sequence[Entry]:
    """Newest first, filtered; ``until`` is exclusive."""
    query = select(_TABLE).order_by(_TABLE.c.at.desc(), _TABLE.c.id.desc())
    if actor:
        query = query.where(_TABLE.c.actor == actor)
    if action is not None:
        query = query.where(_TABLE.c.action == Action(action).value)
    if since is not None:
        query = query.where(_TABLE.c.at >= since)
    if until is not None:
        query = query.where(_TABLE.c.at < until)
    query = query.limit(limit).offset(offset)
    with engine.connect() as conn:
        return [
            Entry(
                id=row.id,
                at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),
                actor=row.actor,
                role=row.role,
                action=Action(row.action),
                target=row.target,
                detail=row.detail,
                address=row.address,
            )
            for row in conn.execute(query)
        ]
