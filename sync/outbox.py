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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
    state: Mapped[str] = mapped_column(String(16), default="never")
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


class OutboxError(RuntimeError):
    """The outbox cannot do what was asked (wrong city store, purged rows...)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
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


def append(conn: Connection, body: Message, *, now: datetime | None = None) -> int:
    """Put ``body`` into the outbox in the caller's transaction; return its seq."""
    bumped = conn.execute(
        update(LinkState)
        .where(LinkState.id == LINK_ROW_ID)
        .values(last_seq=LinkState.last_seq + 1)
        .returning(LinkState.last_seq, LinkState.city_code, LinkState.epoch)
    ).one_or_none()
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
        insert(OutboxRow).values(
            seq=bumped.last_seq,
            kind=envelope.WhichOneof("body"),
            created_at=moment,
            envelope=envelope.SerializeToString(),
        )
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
            last_error_at=_aware(row.last_error_at),
            last_push_at=_aware(row.last_push_at),
            last_contact_at=_aware(row.last_contact_at),
            hub_acked_seq=row.hub_acked_seq,
            last_rejection=row.last_rejection,
            oldest_unsent_at=_aware(oldest),
            conflict_seq=row.conflict_seq,
        )

    def pending(self, *, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` serialized envelopes after ``after_seq``, in seq order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(OutboxRow.seq, OutboxRow.envelope)
                .where(OutboxRow.seq > after_seq)
                .order_by(OutboxRow.seq)
                .limit(limit)
            ).all()
        return [(row.seq, row.envelope) for row in rows]

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
                    state="connected",
                    last_error="",
                )
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
            first_kept = uow.conn.execute(
                select(func.min(OutboxRow.seq)).where(OutboxRow.seq > hub_acked_seq)
            ).scalar()
            if first_kept != hub_acked_seq + 1:
                raise OutboxError(
                    f"the hub holds seqs only up to {hub_acked_seq} but this city delivered up "
                    f"to {delivered} and no longer keeps seq {hub_acked_seq + 1} (purged after "
                    "retention); the hub's loss cannot be refilled from here — re-base the city"
                )
            uow.conn.execute(
                update(OutboxRow).where(OutboxRow.seq > hub_acked_seq).values(delivered_at=None)
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

    def rebase(self, *, hub_acked_seq: int) -> tuple[str, int]:
        """Start a new epoch that continues after the hub's high-water mark.

        Rows the hub holds identically (below the first conflicting seq, when the conflict
        named one, and up to the hub's mark) count as delivered; every later row is
        renumbered, in its order, from ``hub_acked_seq + 1`` and re-wrapped under the new
        epoch. Returns (epoch, rows moved). Only for an operator after reviewing a conflict.
        """
        new_epoch = uuid.uuid4().hex
        with UnitOfWork(self.engine) as uow:
            state = _lock_state(uow.conn)
            if state.conflict_seq > state.delivered_seq:
                same_through = min(hub_acked_seq, state.conflict_seq - 1)
            else:
                same_through = min(hub_acked_seq, state.delivered_seq)
            rows = uow.conn.execute(
                select(OutboxRow.seq, OutboxRow.envelope, OutboxRow.created_at, OutboxRow.kind)
                .where(OutboxRow.seq > same_through)
                .order_by(OutboxRow.seq)
            ).all()
            # Everything above the identical prefix goes, delivered or not, so the new numbers
            # cannot collide with rows left behind.
            uow.conn.execute(delete(OutboxRow).where(OutboxRow.seq > same_through))
            moment = _now()
            uow.conn.execute(
                update(OutboxRow)
                .where(OutboxRow.seq <= same_through, OutboxRow.delivered_at.is_(None))
                .values(delivered_at=moment)
            )
            next_seq = hub_acked_seq
            for row in rows:
                next_seq += 1
                envelope = pb.Envelope.FromString(row.envelope)
                envelope.epoch = new_epoch
                envelope.seq = next_seq
                uow.conn.execute(
                    insert(OutboxRow).values(
                        seq=next_seq,
                        kind=row.kind,
                        created_at=row.created_at,
                        envelope=envelope.SerializeToString(),
                    )
                )
            uow.conn.execute(
                update(LinkState)
                .where(LinkState.id == LINK_ROW_ID)
                .values(
                    epoch=new_epoch,
                    last_seq=next_seq,
                    delivered_seq=hub_acked_seq,
                    hub_acked_seq=hub_acked_seq,
                    state="never",
                    last_error="",
                    conflict_seq=0,
                )
            )
            uow.commit()
        return new_epoch, len(rows)


def advance_notice_cursor(conn: Connection, seq: int) -> None:
    """Move the inbox cursor forward, in the caller's transaction (never backwards)."""
    conn.execute(
        update(LinkState)
        .where(LinkState.id == LINK_ROW_ID, LinkState.notice_cursor < seq)
        .values(notice_cursor=seq)
    )
