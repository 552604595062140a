"""A ticket and its history as values: what the rules in :mod:`city_node.domain` take and
return, and what the ticket repository stores and loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from city_node.vocabulary import (
    OPEN_STATUSES,
    Action,
    Channel,
    CustomerTier,
    NoteCode,
    NoteParams,
    Role,
    Satisfaction,
    Status,
    TicketKind,
)

# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    """One step in a ticket's life: who (actor, role) did what (action) when, what it
    recorded (``code`` and ``params``) and why, in the person's words (``note``)."""

    at: datetime
    actor: str
    role: Role
    action: Action
    note: str = ""
    from_status: Status | None = None
    to_status: Status | None = None
    code: NoteCode = NoteCode.NOTE
    params: NoteParams = field(default_factory=dict)


@dataclass(frozen=True)
class ExtensionRequest:
    """A pending request for more working days, waiting for the leader."""

    days: int
    reason: str
    requested_by: str
    requested_at: datetime


@dataclass
class Ticket:
    """A city ticket. Change it only through the action functions, which keep ``history``
    append-only and return a new object. ``id`` is the store's key (0 until it is stored)."""

    id: int
    kind: TicketKind
    category: str
    channel: Channel
    customer_phone: str
    customer_name: str
    tier: CustomerTier
    content: str
    registered_at: datetime
    deadline: datetime
    status: Status = Status.REGISTERED
    history: list[HistoryEntry] = field(default_factory=list)
    operator: str | None = None  # who holds it now (the last operator to act)
    branch: str | None = None  # the branch it was dispatched to
    closed_at: datetime | None = None
    satisfaction: Satisfaction | None = None
    surveyed_at: datetime | None = None
    surveyed_by: str | None = None
    reopen_count: int = 0
    chase_count: int = 0
    pending_extension: ExtensionRequest | None = None

    @property
    def is_open(self) -> bool:
        """True until the ticket is answered or closed (again open after a reopen)."""
        return self.status in OPEN_STATUSES
