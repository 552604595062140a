"""The city's link to the province as a person should read it.

The stored ``state`` says what the last event was (connected, backing-off, conflict,
revoked…); it is not aged by itself, so a node whose hub went away would go on saying
"connected". This derives what is true now: **connected** (contact within three heartbeat
intervals), **silent since** the last contact, **never** connected, or the refusal that
stops the link (**conflict**, **revoked**, **incompatible**).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sync.outbox import LinkSnapshot
from sync.vocabulary import LinkStatus

#: Three heartbeat intervals of the node's default 10 s.
SILENT_AFTER = timedelta(seconds=30)
#: Stored states that stop the link until a person acts: shown as they are.
_STOPPED = (LinkStatus.CONFLICT, LinkStatus.REVOKED, LinkStatus.INCOMPATIBLE)


@dataclass(frozen=True)
class LinkView:
    #: connected / silent / never / conflict / revoked / incompatible
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
        state, since = snap.state, None
    elif contact is None:
        state, since = "never", None
    elif snap.state == LinkStatus.CONNECTED and moment - contact <= silent_after:
        state, since = "connected", None
    else:
        state, since = "silent", contact
    oldest = _aware(snap.oldest_unsent_at) if snap.backlog else None
    return LinkView(
        state=state,
        since=since,
        error=snap.last_error if state != "connected" else "",
        error_at=_aware(snap.last_error_at) if state != "connected" else None,
        backlog=snap.backlog,
        oldest_unsent_at=oldest,
        oldest_unsent_age=max(timedelta(0), moment - oldest) if oldest else None,
        snapshot=snap,
    )
