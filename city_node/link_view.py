"""The city's link to the province as a person should read it.

The stored ``state`` says what the last event was (connected, backing-off, conflict,
revoked…); it is not aged by itself, so a node whose hub went away would go on saying
"connected". This derives what is true now: **connected** (contact within three heartbeat
intervals), **silent since** the last contact, **never** connected, or the refusal that
stops the link until a person acts (**conflict**, **revoked**, **hub-revoked**,
**incompatible**, and **stopped** for the link client's own failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sync.outbox import LinkSnapshot
from sync.vocabulary import LinkStatus

#: Three heartbeat intervals of the node's default 10 s.
SILENT_AFTER = timedelta(seconds=30)
#: Stored states that stop the link until a person acts: shown as they are.
_STOPPED = (
    LinkStatus.CONFLICT,
    LinkStatus.REVOKED,
    LinkStatus.HUB_REVOKED,
    LinkStatus.INCOMPATIBLE,
    LinkStatus.ERROR,
)


@dataclass(frozen=True)
class LinkView:
    #: connected / silent / never / conflict / revoked / hub-revoked / incompatible / stopped
    state: str
    #: For "silent": the last contact.
    since: datetime | None
    #: The last error, only when it says something about the link now (not when connected).
    error: str
    error_at: datetime | None
    backlog: int
    oldest_unsent_at: datetime | None
    oldest_unsent_age: timedelta | None
    snapshot: LinkSnapshot


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def silent_after(heartbeat_seconds: float) -> timedelta:
    """When a connected link reads as silent: three of the node's heartbeat intervals."""
    return timedelta(seconds=3 * heartbeat_seconds)


def link_view(
    snap: LinkSnapshot, *, now: datetime | None = None, silent_after: timedelta = SILENT_AFTER
) -> LinkView:
    moment = now or datetime.now(UTC)
    contact = _aware(snap.last_contact_at)
    if snap.state in _STOPPED:
        # The link client's own failure reads "stopped": it waits for a person (its error
        # says what to do, a re-base as a rule), as a refusal does.
        state = "stopped" if snap.state == LinkStatus.ERROR else snap.state
        since = None
    elif contact is None:
        state, since = "never", None
    elif snap.state == LinkStatus.CONNECTED and moment - contact <= silent_after:
        state, since = "connected", None
    else:
        state, since = "silent", contact
    oldest = _aware(snap.oldest_unsent_at) if snap.backlog else None
    # An error is the matter while the link is not connected, unless a contact came after
    # it: a node stopped an hour after its link recovered fell silent for another reason.
    error_at = _aware(snap.last_error_at)
    current = state != "connected" and not (
        state == "silent" and error_at is not None and contact is not None and error_at < contact
    )
    return LinkView(
        state=state,
        since=since,
        error=snap.last_error if current else "",
        error_at=error_at if current else None,
        backlog=snap.backlog,
        oldest_unsent_at=oldest,
        oldest_unsent_age=max(timedelta(0), moment - oldest) if oldest else None,
        snapshot=snap,
    )
