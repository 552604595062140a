"""The hub's use cases: ingest a city's batch, answer Hello, send and replay notices.

Each function is one thing a city link or a province person does; each runs in one
transaction (``UnitOfWork``) and returns plain data. gRPC and the CLI are thin layers on top.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from province_hub.broker import announce_notice
from province_hub.escalations import land_escalations
from province_hub.escalations import subject as escalation_subject
from province_hub.figures import FIGURE_KINDS, land_figures
from province_hub.store import CityLink, Counter, Notice, NoticeDelivery, Record
from sync import errors
from sync.db import UnitOfWork, bulk_insert, datetime_param, insert_ignore, timestamp_param
from sync.envelopes import UNSEQUENCED_KINDS, check_identity, check_structure
from sync.limits import MAX_HEARTBEAT_TEXT_CHARS
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import PeriodError, parse_period, today_in
from sync.validation import broken_rule, clamp_to_int64
from sync.vocabulary import LinkStatus
from sync.wire import RawBody

log = logging.getLogger(__name__)
NOTICE_COUNTER = "notice_seq"
#: Column order of the rows ``_apply`` hands to ``bulk_insert``.
RECORD_COLUMNS = (
    "city_code",
    "seq",
    "epoch",
    "kind",
    "status",
    "reason",
    "subject",
    "revision",
    "created_at",
    "received_at",
    "digest",
    "body",
)
HUB_SENDER = "hub"
#: Far under every gRPC message limit, so a notice can always be streamed.
MAX_NOTICE_BYTES = 1024 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class IngestResult:
    acked_through_seq: int
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    #: Cities that got a new notice in this transaction (rejections), to wake their streams.
    notified_cities: tuple[str, ...] = ()


@dataclass(frozen=True)
class HelloResult:
    acked_through_seq: int
    epoch: str


@dataclass
class _Link:
    epoch: str
    acked_seq: int
    state: str
    updates: dict[str, Any] = field(default_factory=dict)


def _lock_link(conn: Any, city_code: str) -> _Link:
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
    return _Link(epoch=row.epoch, acked_seq=row.acked_seq, state=row.state)


def _subject(kind: str, body: Any) -> tuple[str | None, int | None]:
    """What a record is about, so revisions of the same report can be found."""
    if kind in ("statistics_report", "qa_report", "overtime_report"):
        try:
            period_kind, start = parse_period(body.period)
        except PeriodError:
            return None, body.revision
        period_name = pb.PeriodKind.Name(period_kind)  # type: ignore[arg-type]
        return f"{kind}/{period_name}/{start.isoformat()}", body.revision
    if kind == "suggestion_batch":
        return f"{kind}/{body.batch_date}/{body.batch_number}", None
    if kind == "escalation":
        return escalation_subject(body), None
    if kind == "ticket_trace":
        return f"{kind}/{body.request_notice_seq}", None
    if kind == "notice_receipt":
        return f"{kind}/{body.notice_seq}", None
    return None, None


def ingest_batch(
    engine: Engine,
    *,
    city_code: str,
    envelopes: Sequence[pb.Envelope],
    tz_name: str,
    max_batch: int,
    bodies: Sequence[RawBody] | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Apply one city's batch in order, in one transaction; idempotent for re-sent envelopes.

    ``bodies`` are the envelopes' body members as they travelled (``sync.wire.push_bodies``),
    which the digests cover and which are stored; without them the deterministic
    serialization of each parsed body stands in.

    Raises a ``LinkError`` (nothing stored) for identity, structure, gap and conflict
    problems, carrying the hub's mark and epoch for the city; quarantines envelopes that
    break a business rule and tells the city through a REJECTION notice created in the same
    transaction.
    """
    moment = now or _now()
    try:
        heartbeats, sequenced = _check_batch(city_code, envelopes, max_batch, bodies)
    except errors.LinkError as exc:
        raise with_link_mark(engine, city_code=city_code, exc=exc) from None
    # A heartbeat is link status, not a record: a value the store cannot hold must not fail
    # the batch it rides in. Counts are clamped (they only feed the status view); a cursor
    # that large is dropped, as confirming it would mark every notice delivered.
    cursor_dropped = False  # of the last heartbeat, the one recorded
    for hb in heartbeats:
        clamped = clamp_to_int64(hb)
        if clamped:
            log.warning(
                "city %s sent a heartbeat with %s above 2^63 - 1; counts stored as 2^63 - 1, "
                "a notice cursor ignored",
                city_code,
                ", ".join(clamped),
            )
        cursor_dropped = "notice_cursor" in clamped

    try:
        with UnitOfWork(engine) as uow:
            link = _lock_link(uow.conn, city_code)
            result = _apply(uow.conn, city_code, link, sequenced, tz_name, moment)
            link.updates.update(last_contact_at=moment, state=LinkStatus.CONNECTED)
            if sequenced:
                link.updates["last_push_at"] = moment
            if heartbeats:
                hb = heartbeats[-1]
                link.updates.update(
                    backlog=hb.backlog,
                    oldest_unsent_age_s=hb.oldest_unsent_age_seconds,
                    heartbeat_at=moment,
                    # Status text for a person: a city (or whoever holds its key) must not
                    # make the hub store megabytes per heartbeat.
                    city_last_error=_status_text(hb.last_error),
                    software_version=_status_text(hb.software_version),
                )
                if not cursor_dropped:
                    link.updates["notice_cursor"] = hb.notice_cursor
                    _confirm_cursor(uow.conn, city_code, hb.notice_cursor, moment)
            uow.conn.execute(
                update(CityLink).where(CityLink.city_code == city_code).values(**link.updates)
            )
            uow.commit()
            return result
    except (errors.SequenceConflict, errors.SequenceGap) as exc:
        record_refusal(engine, city_code=city_code, exc=exc, now=moment)
        raise


def _status_text(value: str) -> str:
    """A heartbeat's free text cut to ``MAX_HEARTBEAT_TEXT_CHARS`` (marked when cut)."""
    if len(value) <= MAX_HEARTBEAT_TEXT_CHARS:
        return value
    return value[: MAX_HEARTBEAT_TEXT_CHARS - 1] + "…"


def _check_batch(
    city_code: str,
    envelopes: Sequence[pb.Envelope],
    max_batch: int,
    bodies: Sequence[RawBody] | None,
) -> tuple[list[pb.Heartbeat], list[tuple[pb.Envelope, str, bytes]]]:
    """The batch's heartbeats and sequenced envelopes, or the ``LinkError`` refusing it."""
    if len(envelopes) > max_batch:
        raise errors.BatchTooLarge(
            f"batch holds {len(envelopes)} envelopes; this hub accepts at most {max_batch} "
            "per Push (see HelloResponse.max_batch_envelopes)"
        )
    check_identity(envelopes, city_code)
    heartbeats: list[pb.Heartbeat] = []
    sequenced: list[tuple[pb.Envelope, str, bytes]] = []
    if bodies is not None and len(bodies) != len(envelopes):
        raise ValueError(f"{len(bodies)} raw bodies for {len(envelopes)} envelopes")
    for index, envelope in enumerate(envelopes):
        travelled = None
        if bodies is not None:
            raw = bodies[index]
            if raw.kind != envelope.WhichOneof("body"):
                # Cannot happen when both come from the same bytes; refuse rather than store
                # bytes that are not the parsed body.
                raise errors.MalformedEnvelope(
                    f"envelopes[{index}]: its body could not be located in the bytes sent",
                    seq=envelope.seq,
                    field=f"envelopes[{index}].body",
                )
            travelled = raw.data
        kind, body_bytes = check_structure(envelope, index=index, travelled=travelled)
        if kind in UNSEQUENCED_KINDS:
            heartbeats.append(envelope.heartbeat)
            continue
        if sequenced:
            previous = sequenced[-1][0]
            if envelope.seq != previous.seq + 1:
                raise errors.MalformedEnvelope(
                    f"envelopes[{index}].seq is {envelope.seq} after {previous.seq}; a batch "
                    "must carry consecutive sequence numbers",
                    seq=envelope.seq,
                    field=f"envelopes[{index}].seq",
                )
            if envelope.epoch != previous.epoch:
                raise errors.MalformedEnvelope(
                    f"envelopes[{index}].epoch differs from the batch's; one epoch per batch",
                    seq=envelope.seq,
                    field=f"envelopes[{index}].epoch",
                )
        sequenced.append((envelope, kind, body_bytes))
    return heartbeats, sequenced


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


def _apply(
    conn: Any,
    city_code: str,
    link: _Link,
    sequenced: list[tuple[pb.Envelope, str, bytes]],
    tz_name: str,
    moment: datetime,
) -> IngestResult:
    if not sequenced:
        return IngestResult(acked_through_seq=link.acked_seq)
    first = sequenced[0][0]
    if first.epoch != link.epoch:
        if link.acked_seq == 0 and not link.epoch:
            pass  # first contact: the city's epoch becomes the one the hub holds
        elif first.seq <= link.acked_seq:
            raise errors.SequenceConflict(
                f"city {city_code} sends seq {first.seq} under epoch {first.epoch}, but the hub "
                f"holds seqs up to {link.acked_seq} under epoch {link.epoch}: the city store "
                "was re-created or restored. Nothing was stored; review and re-base the city "
                "(fedsync city rebase)",
                acked_through_seq=link.acked_seq,
                seq=first.seq,
                hub_epoch=link.epoch,
            )
        link.updates["epoch"] = first.epoch
    duplicates = 0
    held_through = link.acked_seq
    if first.seq <= held_through:
        last_old = min(sequenced[-1][0].seq, held_through)
        held = dict(
            conn.execute(
                select(Record.seq, Record.digest).where(
                    Record.city_code == city_code, Record.seq.between(first.seq, last_old)
                )
            ).all()
        )
        for envelope, _kind, _body in sequenced:
            if envelope.seq > held_through:
                break
            if held.get(envelope.seq) != envelope.content_digest:
                raise errors.SequenceConflict(
                    f"city {city_code} seq {envelope.seq} differs from the envelope the hub "
                    "already holds under that seq (different content digest): the city store "
                    "was restored from an older copy. Nothing was stored; review and re-base "
                    "the city (fedsync city rebase)",
                    acked_through_seq=link.acked_seq,
                    seq=envelope.seq,
                    hub_epoch=link.epoch,
                )
            duplicates += 1
    fresh = sequenced[duplicates:]
    if not fresh:
        # Ack what this batch carried, not the hub's mark: the city's rows after it may differ
        # from what the hub holds (a restored city), and must meet the digest check.
        return IngestResult(acked_through_seq=sequenced[-1][0].seq, duplicates=duplicates)
    if fresh[0][0].seq != link.acked_seq + 1:
        raise errors.SequenceGap(
            f"city {city_code}: the hub holds seqs up to {link.acked_seq} and expects "
            f"{link.acked_seq + 1} next, but the batch continues at {fresh[0][0].seq}; "
            f"re-send from {link.acked_seq + 1}",
            acked_through_seq=link.acked_seq,
            seq=fresh[0][0].seq,
            hub_epoch=link.epoch,
        )

    rows: list[tuple[Any, ...]] = []
    rejections: list[pb.Rejection] = []
    receipts: list[pb.NoticeReceipt] = []
    reports: list[tuple[int, Any, bytes | None]] = []
    escalations: list[tuple[int, datetime, pb.Escalation]] = []
    today = today_in(tz_name, moment)
    received_at = datetime_param(conn, moment)
    for envelope, kind, body_bytes in fresh:
        body = getattr(envelope, kind)
        reason = broken_rule(kind, body, today=today)
        if reason is None and kind == "notice_receipt":
            reason = _receipt_problem(conn, city_code, body)
            if reason is None:
                receipts.append(body)
        if reason is None and kind in FIGURE_KINDS:
            reports.append((envelope.seq, body, body_bytes))
        if reason is None and kind == "escalation":
            escalations.append((envelope.seq, envelope.created_at.ToDatetime(UTC), body))
        subject, revision = _subject(kind, body)
        rows.append(
            (
                city_code,
                envelope.seq,
                envelope.epoch,
                kind,
                "accepted" if reason is None else "quarantined",
                reason,
                subject,
                revision,
                timestamp_param(conn, envelope.created_at.seconds, envelope.created_at.nanos),
                received_at,
                envelope.content_digest,
                body_bytes,
            )
        )
        if reason is not None:
            rejections.append(pb.Rejection(seq=envelope.seq, body_kind=kind, reason=reason))
    bulk_insert(conn, Record.__tablename__, RECORD_COLUMNS, rows)
    land_figures(conn, city_code=city_code, reports=reports, received_at=received_at)
    land_escalations(conn, city_code=city_code, escalations=escalations, received_at=moment)
    for receipt in receipts:
        _apply_receipt(conn, city_code, receipt, moment)
    for rejection in rejections:
        create_notice(
            conn,
            notice=pb.Notice(
                kind=pb.REJECTION,
                priority=pb.HIGH,
                title=f"{rejection.body_kind} seq {rejection.seq} quarantined",
                body=(
                    f"The hub stored your {rejection.body_kind} (seq {rejection.seq}) as "
                    f"quarantined: {rejection.reason}. Send a corrected revision."
                ),
                sender=HUB_SENDER,
                targets=[city_code],
                rejection=rejection,
            ),
            targets=[city_code],
            moment=moment,
        )
    acked = fresh[-1][0].seq
    link.updates["acked_seq"] = acked
    return IngestResult(
        acked_through_seq=acked,
        accepted=len(fresh) - len(rejections),
        quarantined=len(rejections),
        duplicates=duplicates,
        notified_cities=(city_code,) if rejections else (),
    )


def _receipt_problem(conn: Any, city_code: str, receipt: pb.NoticeReceipt) -> str | None:
    exists = conn.execute(
        select(NoticeDelivery.notice_seq).where(
            NoticeDelivery.notice_seq == receipt.notice_seq, NoticeDelivery.city_code == city_code
        )
    ).first()
    if exists is None:
        return f"notice_seq {receipt.notice_seq}: no such notice was sent to city {city_code}"
    return None


def _apply_receipt(conn: Any, city_code: str, receipt: pb.NoticeReceipt, moment: datetime) -> None:
    acted_at = receipt.acted_at.ToDatetime(UTC) if receipt.HasField("acted_at") else moment
    values: dict[str, Any] = {"last_actor": receipt.actor or None}
    if receipt.action == pb.READ:
        values["read_at"] = func.coalesce(NoticeDelivery.read_at, acted_at)
    elif receipt.action == pb.DONE:
        values.update(
            done_at=acted_at,
            done_note=receipt.note,
            read_at=func.coalesce(NoticeDelivery.read_at, acted_at),
        )
    else:
        values.update(
            objection_at=acted_at,
            objection_reason=receipt.note,
            read_at=func.coalesce(NoticeDelivery.read_at, acted_at),
        )
    conn.execute(
        update(NoticeDelivery)
        .where(
            NoticeDelivery.notice_seq == receipt.notice_seq, NoticeDelivery.city_code == city_code
        )
        .values(**values)
    )


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
                f"Hello names city {request.city_code!r} but the client certificate belongs to "
                f"city {city_code}",
                field="city_code",
            ),
        )
    with UnitOfWork(engine) as uow:
        link = _lock_link(uow.conn, city_code)
        values: dict[str, Any] = {
            "last_contact_at": moment,
            "software_version": _status_text(request.software_version),
            "schema_version": request.schema_version,
        }
        conflict = ""
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
                last_error=f"SchemaUnsupported: the city speaks {request.schema_version!r}",
                last_error_at=moment,
            )
        elif conflict:
            values.update(
                state="conflict",
                last_error=f"SequenceConflict: {conflict}",
                last_error_at=moment,
            )
        elif link.state != "conflict" or request.epoch != link.epoch:
            # A conflict found by digest stays until the city re-bases (a new epoch).
            values["state"] = "connected"
        uow.conn.execute(
            update(CityLink)
            .where(CityLink.city_code == city_code)
            .values(first_contact_at=func.coalesce(CityLink.first_contact_at, moment), **values)
        )
        uow.commit()
    return HelloResult(acked_through_seq=link.acked_seq, epoch=link.epoch)


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


# --- notices ---------------------------------------------------------------------------------


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
        _confirm_cursor(uow.conn, city_code, cursor, now or _now())
        uow.commit()


def _confirm_cursor(conn: Any, city_code: str, cursor: int, moment: datetime) -> None:
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
            uow.conn.execute(
                update(NoticeDelivery)
                .where(
                    NoticeDelivery.city_code == city_code,
                    NoticeDelivery.notice_seq.in_(seq_list),
                    NoticeDelivery.streamed_at.is_(None),
                )
                .values(streamed_at=moment)
            )
        uow.commit()
