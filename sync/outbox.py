"""The city's transactional outbox and link state.

``append`` writes an envelope into the outbox inside the *caller's* transaction, so a report
approval, an escalation or a receipt is sent if and only if it was committed. Sequence
numbers come from bumping ``link_state.last_seq`` under its row lock in that same
transaction: gap-free, and assigned in commit order (a rolled-back transaction gives its
number back).

Rows are delivered strictly in seq order, so "delivered" is one number
(``link_state.delivered_seq``); rows keep ``delivered_at`` for the retention purge, and are
kept ``retention_days`` after delivery so a hub restored from a backup can be refilled.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast, overload

from google.protobuf.message import Message
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sync.db import UnitOfWork, insert_ignore
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.vocabulary import LinkStatus

LINK_ROW_ID = 1


class OutboxBase(DeclarativeBase):
    pass


class LinkState(OutboxBase):
    """The city's one row of link state (identity, epoch, counters, last errors)."""

    __tablename__ = "link_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6))
    #: Random id of this store, fixed at creation (and replaced by a re-base).
    epoch: Mapped[str] = mapped_column(String(64))
    #: Highest seq assigned to an outbox row.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Highest seq the hub acknowledged (everything up to it is committed there).
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Highest notice seq persisted in the inbox.
    notice_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    #: connected / backing-off / conflict / revoked / incompatible / never
    state: Mapped[str] = mapped_column(String(16), default=LinkStatus.NEVER.value)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: What the hub said it holds at the last Hello.
    hub_acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hub_epoch: Mapped[str] = mapped_column(String(64), default="")
    #: The latest REJECTION notice's text (a quarantined envelope to correct).
    last_rejection: Mapped[str] = mapped_column(Text, default="")
    #: First seq the hub found different (sequence conflict), 0 when none is known.
    conflict_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class OutboxRow(OutboxBase):
    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The whole fedsync.v1.Envelope, serialized, exactly as it will be pushed.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    #: When the hub first acknowledged this row, kept when a hub restored from a backup lost
    #: it and it is sent again (``PushRequest.acked_before``): the hub stores it as received
    #: then, not at the re-send. The earliest of several losses is kept.
    acked_before_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Pending(NamedTuple):
    """One row to push: its seq, the serialized envelope, and when the hub acknowledged it
    before (a hub that lost it: ``OutboxRow.acked_before_at``), else None."""

    seq: int
    envelope: bytes
    acked_before: datetime | None


class OutboxError(RuntimeError):
    """The outbox cannot do what was asked (wrong city store, purged rows...)."""


def _now() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """A time read from the store, aware: SQLite hands back naive datetimes, and everything
    stored is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _lock_state(conn: Connection) -> Any:
    """The link-state row under its lock (PostgreSQL: FOR UPDATE; SQLite: BEGIN IMMEDIATE),
    so delivery marks, rewinds and re-bases never interleave with ``append``."""
    return conn.execute(
        select(LinkState).where(LinkState.id == LINK_ROW_ID).with_for_update()
    ).one()


def initialise(conn: Connection, city_code: str) -> str:
    """Create the link-state row on first use (random epoch); refuse another city's store."""
    insert_ignore(
        conn,
        LinkState.__table__,  # type: ignore[arg-type]
        [{"id": LINK_ROW_ID, "city_code": city_code, "epoch": uuid.uuid4().hex}],
    )
    row = conn.execute(
        select(LinkState.city_code, LinkState.epoch).where(LinkState.id == LINK_ROW_ID)
    ).one()
    if row.city_code != city_code:
        raise OutboxError(
            f"this database belongs to city {row.city_code}, not {city_code}; "
            "point --database-url at the right store"
        )
    epoch: str = row.epoch
    return epoch


# Built once: ``append`` runs for every body a city queues, and building these per call cost
# more than executing them (SQLAlchemy then finds the compiled form in its cache).
_BUMP_SEQ = (
    update(LinkState)
    .where(LinkState.id == LINK_ROW_ID)
    .values(last_seq=LinkState.last_seq + 1)
    .returning(LinkState.last_seq, LinkState.city_code, LinkState.epoch)
)
_INSERT_ROW = insert(OutboxRow)


def append(conn: Connection, body: Message, *, now: datetime | None = None) -> int:
    """Put ``body`` into the outbox in the caller's transaction; return its seq."""
    bumped = conn.execute(_BUMP_SEQ).one_or_none()
    if bumped is None:
        raise OutboxError("the outbox is not initialised (call outbox.initialise first)")
    moment = now or _now()
    envelope = build_envelope(
        city_code=bumped.city_code,
        epoch=bumped.epoch,
        seq=bumped.last_seq,
        body=body,
        created_at=moment,
    )
    conn.execute(
        _INSERT_ROW,
        {
            "seq": bumped.last_seq,
            "kind": envelope.WhichOneof("body"),
            "created_at": moment,
            "envelope": envelope.SerializeToString(),
        },
    )
    seq: int = bumped.last_seq
    return seq


@dataclass(frozen=True)
class LinkSnapshot:
    city_code: str
    epoch: str
    last_seq: int
    delivered_seq: int
    notice_cursor: int
    state: str
    last_error: str
    last_error_at: datetime | None
    last_push_at: datetime | None
    last_contact_at: datetime | None
    hub_acked_seq: int
    last_rejection: str
    oldest_unsent_at: datetime | None
    #: First seq the hub found different after a sequence conflict (0: none known).
    conflict_seq: int = 0

    @property
    def backlog(self) -> int:
        return self.last_seq - self.delivered_seq

    def oldest_unsent_age(self, now: datetime | None = None) -> timedelta:
        if self.oldest_unsent_at is None:
            return timedelta(0)
        return max(timedelta(0), (now or _now()) - self.oldest_unsent_at)


class Outbox:
    """Delivery-side access to the outbox (each method is its own short transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def snapshot(self) -> LinkSnapshot:
        with self.engine.connect() as conn:
            row = conn.execute(select(LinkState).where(LinkState.id == LINK_ROW_ID)).one()
            oldest = conn.execute(
                select(OutboxRow.created_at).where(OutboxRow.seq == row.delivered_seq + 1)
            ).scalar()
        return LinkSnapshot(
            city_code=row.city_code,
            epoch=row.epoch,
            last_seq=row.last_seq,
            delivered_seq=row.delivered_seq,
            notice_cursor=row.notice_cursor,
            state=row.state,
            last_error=row.last_error,
            last_error_at=as_utc(row.last_error_at),
            last_push_at=as_utc(row.last_push_at),
            last_contact_at=as_utc(row.last_contact_at),
            hub_acked_seq=row.hub_acked_seq,
            last_rejection=row.last_rejection,
            oldest_unsent_at=as_utc(oldest),
            conflict_seq=row.conflict_seq,
        )

    def pending(self, *, after_seq: int, limit: int) -> Sequence[Pending]:
        """Up to ``limit`` serialized envelopes after ``after_seq``, in seq order.

        The driver's rows are returned as they are (they read like :class:`Pending`): this
        runs for every envelope a city pushes, and building a tuple per row cost a tenth of
        the city's delivery loop. ``acked_before`` may be naive UTC (SQLite)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    OutboxRow.seq,
                    OutboxRow.envelope,
                    OutboxRow.acked_before_at.label("acked_before"),
                )
                .where(OutboxRow.seq > after_seq)
                .order_by(OutboxRow.seq)
                .limit(limit)
            ).all()
        return cast(Sequence[Pending], rows)

    def mark_delivered(self, through_seq: int, *, now: datetime | None = None) -> None:
        """The hub committed everything up to ``through_seq``."""
        moment = now or _now()
        with UnitOfWork(self.engine) as uow:
            previous = _lock_state(uow.conn).delivered_seq
            if through_seq > previous:
                uow.conn.execute(
                    update(OutboxRow)
                    .where(OutboxRow.seq > previous, OutboxRow.seq <= through_seq)
                    .values(delivered_at=moment)
                )
            uow.conn.execute(
                update(LinkState)
                .where(LinkState.id == LINK_ROW_ID)
                .values(
                    delivered_seq=max(previous, through_seq),
                    last_push_at=moment,
                    last_contact_at=moment,
                    hub_acked_seq=through_seq,
                    state=LinkStatus.CONNECTED,
                    last_error="",
                )
            )
            uow.commit()

    def mark_contact(self, *, now: datetime | None = None) -> None:
        """The hub answered a push that carried no row (a heartbeat alone): the link is up.
        Without it an idle node read as silent three heartbeats after its last row."""
        with UnitOfWork(self.engine) as uow:
            uow.conn.execute(
                update(LinkState)
                .where(LinkState.id == LINK_ROW_ID)
                .values(last_contact_at=now or _now(), state=LinkStatus.CONNECTED)
            )
            uow.commit()

    def rewind(self, hub_acked_seq: int, *, now: datetime | None = None) -> int:
        """The hub holds less than we delivered (restored from a backup): send again.

        Returns how many rows will be re-sent. Raises ``OutboxError`` when rows the hub lost
        were already purged here (past retention); an operator must then re-base.
        """
        with UnitOfWork(self.engine) as uow:
            delivered: int = _lock_state(uow.conn).delivered_seq
            if hub_acked_seq >= delivered:
                return 0
            first_kept, kept = uow.conn.execute(
                select(func.min(OutboxRow.seq), func.count()).where(
                    OutboxRow.seq > hub_acked_seq, OutboxRow.seq <= delivered
                )
            ).one()
            # Every lost row must still be here (a re-base may have left rows the hub held
            # from another copy of this store, which this store never had).
            if first_kept != hub_acked_seq + 1 or kept != delivered - hub_acked_seq:
                here = set(
                    uow.conn.execute(
                        select(OutboxRow.seq).where(
                            OutboxRow.seq > hub_acked_seq, OutboxRow.seq <= delivered
                        )
                    ).scalars()
                )
                missing = _spans(
                    n for n in range(hub_acked_seq + 1, delivered + 1) if n not in here
                )
                raise OutboxError(
                    f"the hub holds seqs only up to {hub_acked_seq} but this city delivered up "
                    f"to {delivered} and no longer keeps seqs {missing} (purged after "
                    "retention, or held by the hub from another copy of this store); the hub's "
                    "loss cannot be refilled from here — re-base the city"
                )
            # The first acknowledgement is kept (SET reads the row as it was): the hub is told
            # when it had received each row it lost, at the re-send.
            uow.conn.execute(
                update(OutboxRow)
                .where(OutboxRow.seq > hub_acked_seq)
                .values(
                    acked_before_at=func.coalesce(
                        OutboxRow.acked_before_at, OutboxRow.delivered_at
                    ),
                    delivered_at=None,
                )
            )
            uow.conn.execute(
                update(LinkState)
                .where(LinkState.id == LINK_ROW_ID)
                .values(delivered_seq=hub_acked_seq, hub_acked_seq=hub_acked_seq)
            )
            uow.commit()
        return delivered - hub_acked_seq

    def set_state(
        self, state: str, *, error: str = "", now: datetime | None = None, **extra: Any
    ) -> None:
        """Record the link's state (and error) for the operator's status view."""
        values: dict[str, Any] = {"state": state, **extra}
        if error:
            values.update(last_error=error, last_error_at=now or _now())
        with UnitOfWork(self.engine) as uow:
            uow.conn.execute(update(LinkState).where(LinkState.id == LINK_ROW_ID).values(**values))
            uow.commit()

    def purge(self, *, retention: timedelta, now: datetime | None = None) -> int:
        """Delete rows both delivered and delivered longer ago than ``retention``."""
        cutoff = (now or _now()) - retention
        with UnitOfWork(self.engine) as uow:
            result = uow.conn.execute(
                delete(OutboxRow).where(
                    OutboxRow.delivered_at.is_not(None), OutboxRow.delivered_at < cutoff
                )
            )
            uow.commit()
        return int(result.rowcount)

    def rebase(
        self,
        *,
        hub_acked_seq: int,
        held: Mapping[int, bytes],
        apply: bool = True,
        on_renumber: Callable[[Connection, Mapping[int, int]], None] | None = None,
        now: datetime | None = None,
    ) -> RebasePlan:
        """Start a new epoch that continues after the hub's high-water mark.

        ``held`` is what the hub holds for this city (seq -> content digest, from
        ``ListHeld``) over the seqs this outbox still keeps. Every row is judged by it:

        - the hub holds the same digest at the row's seq: the row counts as delivered and
          stays where it is;
        - the hub holds the same digest under another seq (a copy of this store was re-based
          before): the row is dropped here, the hub already has it;
        - otherwise the row is renumbered, in its order, from ``hub_acked_seq + 1`` and
          re-wrapped under the new epoch — delivered or not, since the hub does not hold it.

        So after any restore the hub ends up holding each distinct envelope once. With
        ``apply=False`` nothing changes and the plan is returned for the operator to review.
        ``on_renumber(conn, {old: new})`` runs in the same transaction so the caller can
        follow its own references to outbox seqs (moved and dropped rows alike).
        """
        new_epoch = uuid.uuid4().hex
        with UnitOfWork(self.engine) as uow:
            state = _lock_state(uow.conn)
            rows = uow.conn.execute(
                select(
                    OutboxRow.seq,
                    OutboxRow.envelope,
                    OutboxRow.created_at,
                    OutboxRow.kind,
                    OutboxRow.delivered_at,
                    OutboxRow.acked_before_at,
                ).order_by(OutboxRow.seq)
            ).all()
            envelopes = {row.seq: pb.Envelope.FromString(row.envelope) for row in rows}
            in_place = {
                row.seq
                for row in rows
                if row.seq <= hub_acked_seq
                and held.get(row.seq) == envelopes[row.seq].content_digest
            }
            # Digests the hub holds at seqs no in-place row accounts for: each can vouch for one
            # row of ours that sits under another number.
            spare: dict[bytes, list[int]] = {}
            for seq, digest in sorted(held.items()):
                if seq not in in_place:
                    spare.setdefault(digest, []).append(seq)
            elsewhere: dict[int, int] = {}
            moved: list[Any] = []
            for row in rows:
                if row.seq in in_place:
                    continue
                candidates = spare.get(envelopes[row.seq].content_digest)
                if candidates:
                    elsewhere[row.seq] = candidates.pop(0)
                else:
                    moved.append(row)
            seq_map = dict(elsewhere)
            seq_map.update(
                {row.seq: hub_acked_seq + index for index, row in enumerate(moved, start=1)}
            )
            plan = RebasePlan(
                epoch=new_epoch if apply else state.epoch,
                hub_acked_seq=hub_acked_seq,
                already_held=len(in_place),
                held_elsewhere=len(elsewhere),
                renumbered=len(moved),
                seq_map=seq_map,
            )
            if not apply:
                return plan
            # In bounded chunks: an IN list of a month's rows would pass SQLite's and
            # PostgreSQL's limits on bound parameters.
            gone = [row.seq for row in rows if row.seq not in in_place]
            for start in range(0, len(gone), 1000):
                uow.conn.execute(
                    delete(OutboxRow).where(OutboxRow.seq.in_(gone[start : start + 1000]))
                )
            moment = now or _now()
            uow.conn.execute(
                update(OutboxRow)
                .where(OutboxRow.delivered_at.is_(None))
                .values(delivered_at=moment)
            )
            for row in moved:
                envelope = envelopes[row.seq]
                envelope.epoch = new_epoch
                envelope.seq = seq_map[row.seq]
                uow.conn.execute(
                    insert(OutboxRow).values(
                        seq=envelope.seq,
                        kind=row.kind,
                        created_at=row.created_at,
                        envelope=envelope.SerializeToString(),
                        # A row a hub had acknowledged before (one restored from an older copy
                        # since) keeps that time under its new number: a report delivered on
                        # time is not judged late for the re-send.
                        acked_before_at=row.acked_before_at or row.delivered_at,
                    )
                )
            if on_renumber is not None and seq_map:
                on_renumber(uow.conn, seq_map)
            uow.conn.execute(
                update(LinkState)
                .where(LinkState.id == LINK_ROW_ID)
                .values(
                    epoch=new_epoch,
                    last_seq=hub_acked_seq + len(moved),
                    delivered_seq=hub_acked_seq,
                    hub_acked_seq=hub_acked_seq,
                    state=LinkStatus.NEVER,
                    last_error="",
                    conflict_seq=0,
                )
            )
            uow.commit()
        return plan

    def kept_range(self) -> tuple[int, int] | None:
        """(lowest, highest) seq this outbox still keeps, None when it is empty."""
        with self.engine.connect() as conn:
            low, high = conn.execute(select(func.min(OutboxRow.seq), func.max(OutboxRow.seq))).one()
        return None if low is None else (int(low), int(high))


@dataclass(frozen=True)
class RebasePlan:
    """What a re-base does (or did) to the outbox."""

    #: The new epoch (with ``apply=False``: the current one, unchanged).
    epoch: str
    hub_acked_seq: int
    #: Rows the hub holds identically at their own seq: now counted as delivered.
    already_held: int
    #: Rows the hub holds under another seq: dropped here.
    held_elsewhere: int
    #: Rows the hub does not hold: renumbered from ``hub_acked_seq + 1``.
    renumbered: int
    #: Old seq -> the seq the hub holds (or will hold) that envelope under.
    seq_map: Mapping[int, int]


def holds_envelope(conn: Connection, *, seq: int, epoch: str, digest: bytes) -> bool:
    """Whether this store sent the envelope ``(epoch, seq, digest)``.

    A copy restored in place of a lost store hears of the lost store's envelopes too (the
    hub's notices about them are replayed after its older cursor); under the same epoch and
    seq it may hold another envelope. A row purged after its retention is taken as this
    store's when it was assigned here under the store's epoch.
    """
    row = conn.execute(select(OutboxRow.envelope).where(OutboxRow.seq == seq)).scalar()
    if row is not None:
        envelope = pb.Envelope.FromString(row)
        return bool(envelope.epoch == epoch and envelope.content_digest == digest)
    state = conn.execute(
        select(LinkState.epoch, LinkState.last_seq).where(LinkState.id == LINK_ROW_ID)
    ).one()
    return bool(state.epoch == epoch and seq <= state.last_seq)


def advance_notice_cursor(conn: Connection, seq: int) -> None:
    """Move the inbox cursor forward, in the caller's transaction (never backwards)."""
    conn.execute(
        update(LinkState)
        .where(LinkState.id == LINK_ROW_ID, LinkState.notice_cursor < seq)
        .values(notice_cursor=seq)
    )


def _spans(seqs: Iterable[int], most: int = 5) -> str:
    """Ascending ``seqs`` as ranges, ``538-543, 545`` (the first ``most`` ranges, then …)."""
    spans: list[list[int]] = []
    for n in seqs:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    shown = [f"{a}-{b}" if a != b else str(a) for a, b in spans[:most]]
    return ", ".join(shown) + (", …" if len(spans) > most else "")
