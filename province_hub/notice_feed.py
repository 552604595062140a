"""The hub's notice feed: numbered notices to cities, replayed after each city's cursor.

A notice is created in the caller's transaction (:func:`create_notice`, with one delivery row
per target city) under a counter's row lock, so seqs become visible in commit order across
replicas (:mod:`province_hub.broker` relies on it); streams read :func:`notices_after` a
city's cursor, mark what they streamed and move the cursor the city confirms.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from province_hub.broker import announce_notice
from province_hub.store import Counter, Notice, NoticeDelivery
from sync.db import UnitOfWork, insert_ignore
from sync.pb.fedsync.v1 import federation_pb2 as pb

log = logging.getLogger("province_hub.services")

NOTICE_COUNTER = "notice_seq"
#: A city's cursor further than this beyond the hub's counter and clock (a day of notices at
#: one a millisecond) is not followed: no restore explains it, a broken client may.
MAX_CURSOR_LEAD_MS = 24 * 3600 * 1000
#: Most notices below a cursor re-sent when a stream opens (the rest at the next one).
MAX_MISSED_NOTICES = 500
HUB_SENDER = "hub"
#: Far under every gRPC message limit, so a notice can always be streamed.
MAX_NOTICE_BYTES = 1024 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


def _next_counter(conn: Any, name: str, *, at_least: int = 0) -> int:
    """Bump a counter under its row lock: increasing in commit order across replicas.

    With ``at_least`` the counter jumps to that value when it is behind it.
    """
    insert_ignore(conn, Counter.__table__, [{"name": name, "value": 0}])  # type: ignore[arg-type]
    current = conn.execute(
        select(Counter.value).where(Counter.name == name).with_for_update()
    ).scalar_one()
    value: int = max(int(current) + 1, at_least)
    conn.execute(update(Counter).where(Counter.name == name).values(value=value))
    return value


def create_notice(conn: Any, *, notice: pb.Notice, targets: Sequence[str], moment: datetime) -> int:
    """Store ``notice`` for ``targets`` in the caller's transaction; its seq."""
    # Notice seqs follow the hub's clock (milliseconds) when it is ahead of the counter, so a
    # hub restored from a backup never hands out a number a city's cursor has already passed.
    seq = _next_counter(conn, NOTICE_COUNTER, at_least=int(moment.timestamp() * 1000))
    notice.seq = seq
    notice.created_at.FromDatetime(moment)
    conn.execute(
        insert(Notice).values(
            seq=seq,
            kind=pb.NoticeKind.Name(notice.kind),
            priority=pb.Priority.Name(notice.priority),
            title=notice.title,
            created_at=moment,
            sender=notice.sender,
            targets=",".join(notice.targets),
            task_deadline=(
                notice.task_deadline.ToDatetime(UTC) if notice.HasField("task_deadline") else None
            ),
            payload=notice.SerializeToString(),
            reply_to_seq=notice.reply_to_seq or None,
            answer_key=notice.standard_answer.key or None
            if notice.HasField("standard_answer")
            else None,
            answer_version=notice.standard_answer.version or None
            if notice.HasField("standard_answer")
            else None,
        )
    )
    conn.execute(
        insert(NoticeDelivery), [{"notice_seq": seq, "city_code": code} for code in targets]
    )
    announce_notice(conn, seq)  # other replicas hear of it at commit (PostgreSQL)
    return seq


def send_notice(
    engine: Engine,
    *,
    notice: pb.Notice,
    roster_codes: Sequence[str],
    now: datetime | None = None,
) -> pb.Notice:
    """Create a notice for its targets (all of the roster when none are named)."""
    with UnitOfWork(engine) as uow:
        send_notice_in(uow.conn, notice=notice, roster_codes=roster_codes, now=now)
        uow.commit()
    return notice


def _check_notice(notice: pb.Notice, roster_codes: Sequence[str]) -> None:
    """Refuse (ValueError) a notice that cannot be sent; fill in defaults."""
    if notice.kind == pb.NOTICE_KIND_UNSPECIFIED:
        raise ValueError("a notice needs a kind")
    if not notice.title.strip():
        raise ValueError("a notice needs a title")
    unknown = sorted(set(notice.targets) - set(roster_codes))
    if unknown:
        raise ValueError(f"unknown target city code(s): {', '.join(unknown)}")
    if notice.kind == pb.TASK and not notice.HasField("task_deadline"):
        raise ValueError("a TASK notice needs a deadline")
    if notice.priority == pb.PRIORITY_UNSPECIFIED:
        notice.priority = pb.NORMAL
    if not notice.sender:
        notice.sender = HUB_SENDER
    if len(set(notice.targets)) != len(notice.targets):
        unique = list(dict.fromkeys(notice.targets))
        del notice.targets[:]
        notice.targets.extend(unique)
    if notice.ByteSize() > MAX_NOTICE_BYTES:
        raise ValueError(
            f"the notice is {notice.ByteSize()} bytes; at most {MAX_NOTICE_BYTES} (link to "
            "large documents instead of attaching them)"
        )


def send_notice_in(
    conn: Any, *, notice: pb.Notice, roster_codes: Sequence[str], now: datetime | None = None
) -> pb.Notice:
    """:func:`send_notice` in the caller's transaction (the audit row goes in with it)."""
    _check_notice(notice, roster_codes)
    targets = list(notice.targets) or list(roster_codes)
    create_notice(conn, notice=notice, targets=targets, moment=now or _now())
    return notice


def open_stream(
    engine: Engine, *, city_code: str, cursor: int, now: datetime | None = None
) -> list[bytes]:
    """A city opens its notice stream after ``cursor``: follow the cursor, confirm it, and
    return the notices it lacks below it (serialized, in seq order).

    After the hub's store was restored from an older copy, a city can hold a cursor above
    every seq the hub remembers. The counter is raised to that cursor, or new notices would
    get numbers the city has passed and never reach it. Notices the restored hub numbered
    below the cursor before the city came back (targeted to it, never streamed to it) are
    returned to be streamed first: the city files a notice by its seq, once, whatever the
    order, and a cursor never moves back. (A streamed mark lost in a crash makes a notice
    the city has look missed: sending it again costs nothing, the city keeps its copy.)
    """
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        missed = uow.conn.execute(
            select(Notice.seq, Notice.payload)
            .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
            .where(
                NoticeDelivery.city_code == city_code,
                Notice.seq <= cursor,
                NoticeDelivery.streamed_at.is_(None),
            )
            .order_by(Notice.seq)
            .limit(MAX_MISSED_NOTICES)
        ).all()
        if missed:
            log.warning(
                "city %s opens its notice stream after notice %d, but %d notice(s) for it "
                "numbered at or below that were never streamed to it (%s); the city store "
                "lacks them (this hub's store is older than the city's, or a streamed mark "
                "was lost): sending them first",
                city_code,
                cursor,
                len(missed),
                ", ".join(str(row.seq) for row in missed[:10])
                + (", ..." if len(missed) > 10 else ""),
            )
        _follow_cursor(uow.conn, city_code, cursor, moment)
        confirm_cursor_in(uow.conn, city_code, cursor, moment)
        uow.commit()
    return [row.payload for row in missed]


def _follow_cursor(conn: Any, city_code: str, cursor: int, moment: datetime) -> None:
    """Raise the notice counter to a city's ``cursor`` when it is behind it."""
    current = conn.execute(select(Counter.value).where(Counter.name == NOTICE_COUNTER)).scalar()
    if cursor <= (current or 0):
        return
    ceiling = max(int(current or 0), int(moment.timestamp() * 1000)) + MAX_CURSOR_LEAD_MS
    if cursor > ceiling:
        log.warning(
            "city %s holds notice cursor %d, more than a day beyond this hub's notice counter "
            "(%d) and clock; not following it",
            city_code,
            cursor,
            current or 0,
        )
        return
    insert_ignore(conn, Counter.__table__, [{"name": NOTICE_COUNTER, "value": 0}])  # type: ignore[arg-type]
    locked = conn.execute(
        select(Counter.value).where(Counter.name == NOTICE_COUNTER).with_for_update()
    ).scalar_one()
    if cursor > locked:
        conn.execute(update(Counter).where(Counter.name == NOTICE_COUNTER).values(value=cursor))
        log.warning(
            "notice counter raised from %d to %d: city %s holds that cursor (this hub's store "
            "is older than the city's, e.g. restored from a backup)",
            locked,
            cursor,
            city_code,
        )


def notices_after(
    engine: Engine, *, city_code: str, after_seq: int, limit: int = 500
) -> list[bytes]:
    """Serialized notices for the city after its cursor, in seq order (at most ``limit``)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Notice.payload)
                .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
                .where(NoticeDelivery.city_code == city_code, Notice.seq > after_seq)
                .order_by(Notice.seq)
                .limit(limit)
            ).scalars()
        )


def notices_after_many(
    engine: Engine, *, cursors: Sequence[tuple[str, int]], limit: int = 500
) -> list[list[bytes]]:
    """``notices_after`` for several (city, cursor) pairs on one connection, in their order."""
    with engine.connect() as conn:
        return [
            list(
                conn.execute(
                    select(Notice.payload)
                    .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
                    .where(NoticeDelivery.city_code == city_code, Notice.seq > after_seq)
                    .order_by(Notice.seq)
                    .limit(limit)
                ).scalars()
            )
            for city_code, after_seq in cursors
        ]


def confirm_cursor(
    engine: Engine, *, city_code: str, cursor: int, now: datetime | None = None
) -> None:
    """The city persisted every notice up to ``cursor``: mark them delivered."""
    with UnitOfWork(engine) as uow:
        confirm_cursor_in(uow.conn, city_code, cursor, now or _now())
        uow.commit()


def confirm_cursor_in(conn: Any, city_code: str, cursor: int, moment: datetime) -> None:
    if cursor <= 0:
        return
    conn.execute(
        update(NoticeDelivery)
        .where(
            NoticeDelivery.city_code == city_code,
            NoticeDelivery.notice_seq <= cursor,
            NoticeDelivery.delivered_at.is_(None),
        )
        .values(delivered_at=moment)
    )


def mark_streamed(
    engine: Engine, *, city_code: str, seqs: Iterable[int], now: datetime | None = None
) -> None:
    mark_streamed_many(engine, seqs_by_city={city_code: seqs}, now=now)


def mark_streamed_many(
    engine: Engine, *, seqs_by_city: Mapping[str, Iterable[int]], now: datetime | None = None
) -> None:
    """Mark notices streamed to several cities in one transaction (one commit, one fsync)."""
    pending = {city: list(seqs) for city, seqs in seqs_by_city.items()}
    pending = {city: seqs for city, seqs in pending.items() if seqs}
    if not pending:
        return
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        for city_code, seq_list in pending.items():
            mark_first(uow.conn, city_code, seq_list, "streamed_at", moment)
        uow.commit()


def mark_first(
    conn: Any, city_code: str, seqs: Sequence[int], column: str, moment: datetime
) -> None:
    """Set ``column`` (``streamed_at``, ``delivered_at``) of the city's deliveries of
    ``seqs`` to ``moment`` where it is not set yet: the first time counts."""
    conn.execute(
        update(NoticeDelivery)
        .where(
            NoticeDelivery.city_code == city_code,
            NoticeDelivery.notice_seq.in_(seqs),
            getattr(NoticeDelivery, column).is_(None),
        )
        .values({column: moment})
    )
