"""The hub's side of each city link: Hello, the link's mark and refusals, ListHeld.

One row per city (``CityLink``) holds the epoch, the acknowledged seq and the link's state;
:func:`lock_link` takes it under a row lock so pushes of one city are serialised across hub
replicas. Each function runs in one transaction (``UnitOfWork``) and returns plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update

from province_hub.store import CityLink, Record
from sync import errors
from sync.db import UnitOfWork, insert_ignore
from sync.envelopes import epoch_problem
from sync.limits import INT64_MAX, MAX_HEARTBEAT_TEXT_CHARS, terminal_safe
from sync.pb.fedsync.v1 import federation_pb2 as pb


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HelloResult:
    acked_through_seq: int
    epoch: str
    #: Why the hub holds the link as it does, when the city has something to act on (a
    #: conflict: re-base; behind: send the rest again); empty when all is well.
    message: str = ""


@dataclass
class Link:
    epoch: str
    acked_seq: int
    state: str
    updates: dict[str, Any] = field(default_factory=dict)


def lock_link(conn: Any, city_code: str) -> Link:
    """Fetch the city's link row, creating it, under a row lock (PostgreSQL: FOR UPDATE).

    The lock serialises pushes of one city across hub replicas; SQLite's BEGIN IMMEDIATE
    already serialises every writer.
    """
    insert_ignore(conn, CityLink.__table__, [{"city_code": city_code}])  # type: ignore[arg-type]
    row = conn.execute(
        select(CityLink.epoch, CityLink.acked_seq, CityLink.state)
        .where(CityLink.city_code == city_code)
        .with_for_update()
    ).one()
    return Link(epoch=row.epoch, acked_seq=row.acked_seq, state=row.state)


def status_text(value: str) -> str:
    """A heartbeat's free text cut to ``MAX_HEARTBEAT_TEXT_CHARS`` (marked when cut), a NUL
    character (which PostgreSQL's text columns refuse) shown as U+FFFD, and any other
    control character or bidirectional override as a visible escape (``\\x1b``): a city's
    status text is printed in the hub's terminal and exported to spreadsheets."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    # Cut before escaping (a city may send megabytes), and again after (escapes are longer).
    value = terminal_safe(_cut(value, MAX_HEARTBEAT_TEXT_CHARS))
    return _cut(value, MAX_HEARTBEAT_TEXT_CHARS)


def _cut(value: str, most: int) -> str:
    return value if len(value) <= most else value[: most - 1] + "…"


def with_link_mark(engine: Engine, *, city_code: str, exc: errors.LinkError) -> errors.LinkError:
    """``exc`` carrying the hub's mark and epoch for the city, when it does not yet.

    Every refusal tells the city what the hub holds, so a client can resynchronise from any
    answer (``SyncError.acked_through_seq`` / ``hub_epoch``), not only from gaps and
    conflicts. A city the hub has never heard of keeps 0 and "".
    """
    if exc.acked_through_seq or exc.hub_epoch:
        return exc
    with engine.connect() as conn:
        row = conn.execute(
            select(CityLink.acked_seq, CityLink.epoch).where(CityLink.city_code == city_code)
        ).first()
    if row is not None:
        exc.acked_through_seq, exc.hub_epoch = int(row.acked_seq), row.epoch
    return exc


#: A link whose city delivered more than the hub holds (a hub restored from an older copy),
#: until the city's Push brings the rest again.
BEHIND = "behind"


def record_refusal(
    engine: Engine, *, city_code: str, exc: errors.LinkError, now: datetime | None = None
) -> None:
    """Remember the last refusal on the city's link (the refused batch itself left nothing)."""
    moment = now or _now()
    state = "conflict" if isinstance(exc, errors.SequenceConflict) else None
    if isinstance(exc, errors.CertificateRevoked):
        state = "revoked"
    with UnitOfWork(engine) as uow:
        insert_ignore(uow.conn, CityLink.__table__, [{"city_code": city_code}])  # type: ignore[arg-type]
        values: dict[str, Any] = {
            "last_error": f"{type(exc).__name__}: {exc.message}",
            "last_error_at": moment,
            "last_contact_at": moment,
        }
        if state:
            values["state"] = state
        uow.conn.execute(update(CityLink).where(CityLink.city_code == city_code).values(**values))
        uow.commit()


def hello(
    engine: Engine,
    *,
    city_code: str,
    request: pb.HelloRequest,
    compatible: bool = True,
    now: datetime | None = None,
) -> HelloResult:
    """Record the city's hello and state what the hub holds for it."""
    moment = now or _now()
    if request.city_code != city_code:
        raise with_link_mark(
            engine,
            city_code=city_code,
            exc=errors.IdentityMismatch(
                f"Hello names city {errors.shown(request.city_code)} but the client certificate "
                f"belongs to city {city_code}",
                field="city_code",
            ),
        )
    # Checked before anything is written: the epoch is compared with the link's and quoted
    # in its last error, where a NUL breaks PostgreSQL's text and a long one bloats status.
    problem = epoch_problem(request.epoch, "epoch")
    if problem:
        raise errors.MalformedEnvelope(f"Hello: {problem}", field="epoch")
    with UnitOfWork(engine) as uow:
        link = lock_link(uow.conn, city_code)
        values: dict[str, Any] = {
            "last_contact_at": moment,
            "software_version": status_text(request.software_version),
            "schema_version": status_text(request.schema_version),
        }
        conflict = message = ""
        # Another epoch is a conflict only when the hub holds more than the city says it
        # delivered: a re-created or restored store. A re-based city continues after the
        # hub's mark (delivered == held), and a city that delivered *more* than the hub holds
        # under an epoch it used before is meeting a hub restored from a backup — it re-sends
        # what the hub lost, and the digest check at Push is the judge.
        if (
            link.epoch
            and request.epoch != link.epoch
            and link.acked_seq > request.delivered_through_seq
        ):
            conflict = (
                f"city {city_code} says hello with epoch {request.epoch} but the hub holds seqs "
                f"up to {link.acked_seq} under epoch {link.epoch}: its store was re-created"
            )
        elif link.epoch == request.epoch and link.acked_seq > request.last_assigned_seq:
            conflict = (
                f"city {city_code} has assigned seqs only up to {request.last_assigned_seq} but "
                f"the hub holds up to {link.acked_seq}: its store was restored from an older copy"
            )
        if not compatible:
            values.update(
                state="incompatible",
                last_error=status_text(
                    f"SchemaUnsupported: the city speaks {errors.shown(request.schema_version)}"
                ),
                last_error_at=moment,
            )
        elif conflict:
            values.update(
                state="conflict",
                last_error=f"SequenceConflict: {conflict}",
                last_error_at=moment,
            )
            message = (
                f"SequenceConflict: {conflict}. Nothing will be stored until the city is "
                "re-based (fedsync city rebase)"
            )
        elif request.delivered_through_seq > link.acked_seq:
            # The city delivered more than this hub holds: the hub was restored from an older
            # copy. Until its Push brings the lost seqs again (ingest sets "connected"), say
            # so: a city that no longer keeps them cannot, and stops until it is re-based —
            # it would otherwise look connected here while nothing arrives.
            message = (
                f"the city has delivered up to seq {request.delivered_through_seq}; this hub "
                f"holds up to {link.acked_seq} (restored from an older copy?): waiting for "
                "the city to send the rest again — a city that no longer keeps them needs "
                "`fedsync city rebase`"
            )
            values.update(state=BEHIND, last_error=status_text(message), last_error_at=moment)
        elif link.state != "conflict" or request.epoch != link.epoch:
            # A conflict found by digest stays until the city re-bases (a new epoch).
            values["state"] = "connected"
        uow.conn.execute(
            update(CityLink)
            .where(CityLink.city_code == city_code)
            .values(first_contact_at=func.coalesce(CityLink.first_contact_at, moment), **values)
        )
        uow.commit()
    return HelloResult(acked_through_seq=link.acked_seq, epoch=link.epoch, message=message)


#: Most held envelopes ListHeld returns in one answer (the city pages through the rest).
LIST_HELD_PAGE = 10_000


@dataclass(frozen=True)
class HeldPage:
    acked_through_seq: int
    epoch: str
    #: (seq, digest, epoch) in seq order.
    held: list[tuple[int, bytes, str]]
    #: 0 when the range is complete, else where the next page starts.
    next_seq: int


def list_held(
    engine: Engine,
    *,
    city_code: str,
    from_seq: int,
    through_seq: int = 0,
    page: int = LIST_HELD_PAGE,
) -> HeldPage:
    """The envelopes the hub holds for ``city_code`` in [from_seq, through_seq], with digests.

    ``through_seq`` 0 means "up to the hub's mark". What a re-basing city compares its own
    rows against, so nothing the hub already holds is sent again under a new number.
    """
    if from_seq < 1:
        raise errors.MalformedEnvelope("from_seq must be at least 1", field="from_seq")
    if from_seq > INT64_MAX:
        raise errors.MalformedEnvelope(
            f"from_seq {from_seq} is above {INT64_MAX}, the largest seq the hub stores",
            field="from_seq",
        )
    if through_seq and through_seq < from_seq:
        raise errors.MalformedEnvelope(
            f"through_seq {through_seq} is below from_seq {from_seq}", field="through_seq"
        )
    with engine.connect() as conn:
        link = conn.execute(
            select(CityLink.acked_seq, CityLink.epoch).where(CityLink.city_code == city_code)
        ).one_or_none()
        acked = int(link.acked_seq) if link else 0
        epoch = str(link.epoch) if link else ""
        last = min(through_seq or acked, acked)
        rows = conn.execute(
            select(Record.seq, Record.digest, Record.epoch)
            .where(Record.city_code == city_code, Record.seq.between(from_seq, last))
            .order_by(Record.seq)
            .limit(page + 1)
        ).all()
    more = len(rows) > page
    held = [(int(r.seq), bytes(r.digest), str(r.epoch)) for r in rows[:page]]
    return HeldPage(
        acked_through_seq=acked,
        epoch=epoch,
        held=held,
        next_seq=int(rows[page].seq) if more else 0,
    )
