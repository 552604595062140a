"""The Push path: check a city's batch, store its records, land what they carry.

:func:`ingest_batch` checks identity, structure, gaps and conflicts (a ``LinkError``, nothing
stored), stores every envelope as a ``Record`` row (quarantined when it breaks a business
rule, with a REJECTION notice in the same transaction), lands report figures, escalations
and notice receipts, and moves the city's mark — all in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import DecodeError, Message
from sqlalchemy import Engine, case, func, select, update

from province_hub.escalations import land_escalations
from province_hub.escalations import subject as escalation_subject
from province_hub.figures import FIGURE_KINDS, land_figures
from province_hub.links import Link, lock_link, record_refusal, status_text, with_link_mark
from province_hub.notice_feed import HUB_SENDER, confirm_cursor_in, create_notice, mark_first
from province_hub.store import REPEATED, CityLink, Notice, NoticeDelivery, Record
from sync import errors
from sync.db import UnitOfWork, bulk_insert, datetime_param, driver_mark, timestamp_param
from sync.envelopes import UNSEQUENCED_KINDS, check_identity, check_structure
from sync.limits import timestamp_problem
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import PeriodError, parse_period, today_in
from sync.validation import broken_rule, clamp_to_int64, nul_problem
from sync.vocabulary import LinkStatus
from sync.wire import RawBody

# The use cases' log under one name (operators filter on it).
log = logging.getLogger("province_hub.services")
#: Column order of the rows ``_apply`` hands to ``bulk_insert``.
#: The largest ``Rejection.next_revision`` the hub states (a signed 32-bit SQL integer).
MAX_NEXT_REVISION = 2**31 - 1

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


#: Longest ``records.subject`` kept: the column is indexed, and PostgreSQL refuses an index
#: entry over about 2.7 kB (a quarantined record's subject can hold any text the city sent).
MAX_SUBJECT_CHARS = 256


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
    acked_before: Mapping[int, Any] | None = None,
) -> IngestResult:
    """Apply one city's batch in order, in one transaction; idempotent for re-sent envelopes.

    ``bodies`` are the envelopes' body members as they travelled (``sync.wire.push_bodies``),
    which the digests cover and which are stored; without them the deterministic
    serialization of each parsed body stands in.

    ``acked_before`` (``PushRequest.acked_before``: seq -> Timestamp) names envelopes this
    hub had acknowledged before and lost (restored from an older backup); each is stored as
    received at that moment when it lies between the envelope's ``created_at`` and now, so a
    report delivered on time is not judged late for the re-send.

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
            link = lock_link(uow.conn, city_code)
            result = _apply(
                uow.conn, city_code, link, sequenced, tz_name, moment, acked_before or {}
            )
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
                    city_last_error=status_text(hb.last_error),
                    software_version=status_text(hb.software_version),
                )
                if not cursor_dropped:
                    link.updates["notice_cursor"] = hb.notice_cursor
                    confirm_cursor_in(uow.conn, city_code, hb.notice_cursor, moment)
            uow.conn.execute(
                update(CityLink).where(CityLink.city_code == city_code).values(**link.updates)
            )
            uow.commit()
            return result
    except (errors.SequenceConflict, errors.SequenceGap) as exc:
        record_refusal(engine, city_code=city_code, exc=exc, now=moment)
        raise


def _holds_same_body(conn: Any, city_code: str, seq: int, kind: str, body: Message) -> bool:
    """Whether the record held at ``seq`` is ``body`` however either was encoded.

    A digest covers the bytes as sent, so one body has several valid digests: a sender that
    wrote explicit defaults hashed those bytes, another hashed the canonical form. A re-send
    of the same envelope under the other digest is the same envelope, not a restored store's
    different one; compared as parsed messages (the canonical form of each), it is
    acknowledged again. Only read when the digests differ, which is rare."""
    stored = conn.execute(
        select(Record.kind, Record.body).where(Record.city_code == city_code, Record.seq == seq)
    ).first()
    if stored is None or stored.kind != kind:
        return False
    try:
        held = type(body).FromString(bytes(stored.body))
    except DecodeError:  # pragma: no cover - the hub stores only bodies it parsed
        return False
    return held.SerializeToString(deterministic=True) == body.SerializeToString(deterministic=True)


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
    previous_seq, previous_epoch = 0, ""
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
        seq, epoch = envelope.seq, envelope.epoch  # read once: each read builds a new object
        if sequenced:
            if seq != previous_seq + 1:
                raise errors.MalformedEnvelope(
                    f"envelopes[{index}].seq is {seq} after {previous_seq}; a batch "
                    "must carry consecutive sequence numbers",
                    seq=seq,
                    field=f"envelopes[{index}].seq",
                )
            if epoch != previous_epoch:
                raise errors.MalformedEnvelope(
                    f"envelopes[{index}].epoch differs from the batch's; one epoch per batch",
                    seq=seq,
                    field=f"envelopes[{index}].epoch",
                )
        previous_seq, previous_epoch = seq, epoch
        sequenced.append((envelope, kind, body_bytes))
    return heartbeats, sequenced


def _apply(
    conn: Any,
    city_code: str,
    link: Link,
    sequenced: list[tuple[pb.Envelope, str, bytes]],
    tz_name: str,
    moment: datetime,
    acked_before: Mapping[int, Any],
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
        for envelope, kind, _body in sequenced:
            if envelope.seq > held_through:
                break
            if held.get(envelope.seq) != envelope.content_digest and not _holds_same_body(
                conn, city_code, envelope.seq, kind, getattr(envelope, kind)
            ):
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
    traced: list[int] = []  # trace requests answered
    reports: list[tuple[int, Any, bytes | None, Any]] = []
    escalations: list[tuple[int, datetime, pb.Escalation, datetime]] = []
    quarantined = 0
    today = today_in(tz_name, moment)
    now_param = datetime_param(conn, moment)
    earlier = _earlier_receipts(
        conn,
        city_code,
        fresh,
        acked_before,
        moment,
        first_seq=sequenced[0][0].seq,
        held_seq=held_through,
    )
    subjects = [_stored_subject(kind, getattr(envelope, kind)) for envelope, kind, _ in fresh]
    held = _held_subjects(conn, city_code, first.epoch, subjects)
    revisions = _held_revisions(conn, city_code, fresh, subjects)
    batch_bodies: dict[int, Any] = {}  # the reports this batch accepted, by seq
    repeated = 0
    for (envelope, kind, body_bytes), (subject, revision) in zip(fresh, subjects, strict=True):
        received_at = earlier.get(envelope.seq, now_param) if earlier else now_param
        body = getattr(envelope, kind)
        # The same body about the same thing under a new seq: a city restored from an older
        # copy and re-based made it again (a suggestion batch, a receipt…). The hub holds it
        # already; this one is kept, as a repeat, and counted nowhere.
        repeat = (
            None if subject is None else held.get((subject, envelope.content_digest)),
            "subject and content",
        )
        reason = None
        if repeat[0] is None:
            # A NUL is a zero byte in the body's bytes, which most bodies do not hold at all.
            reason = nul_problem(body) if b"\x00" in body_bytes else None
            if reason is None:
                reason = broken_rule(kind, body, today=today)
        same = None
        if repeat[0] is None and reason is None and revision is not None and subject is not None:
            # One revision of a period is one report: the same again is a repeat; other
            # figures under a held revision number (a city restored from an older copy
            # re-drafted it) would make "the latest revision" two reports.
            same = revisions.get(subject, {}).get(revision)
            if same and envelope.content_digest in same:
                repeat = (same[envelope.content_digest], "period, revision and content")
            elif same and kind == "statistics_report":
                # The same figures approved again (a city restored from an older copy, its
                # leader approving the draft once more: another time, perhaps another
                # leader) is the same report, not a correction to refuse.
                held_seq = _same_figures(conn, city_code, body, same.values(), batch_bodies)
                if held_seq is not None:
                    repeat = (held_seq, "period, revision and figures")
        if repeat[0] is not None:
            repeated += 1
            rows.append(
                _record_row(
                    conn,
                    city_code,
                    envelope,
                    kind,
                    REPEATED,
                    f"the same {kind} as seq {repeat[0]} (same {repeat[1]}), held already: "
                    "kept, not counted again",
                    subject,
                    revision,
                    received_at,
                    body_bytes,
                )
            )
            continue
        next_revision = 0
        if same and subject is not None:
            lowest = max(revisions[subject]) + 1
            reason = (
                f"revision {revision} of this period is held already "
                f"(seq {min(same.values())}) with other content: a correction is a new revision, "
                f"{lowest} or above"
            )
            # The wire's field is 32-bit and a city keeps it in a SQL integer: a number past
            # that (a city counting revisions from 2^31) is said in the reason only.
            next_revision = lowest if lowest <= MAX_NEXT_REVISION else 0
        # An answer to a notice this hub did not send to this city (a receipt, a trace, an
        # escalation's follow-up) is kept, but not rejected: the likeliest cause is a hub
        # restored from an older backup, and a rejection asks the city for a corrected
        # revision where there is nothing to correct. Nor is it taken as an answer: another
        # city's notice is not this city's to answer.
        quiet = False
        if reason is None and kind in _ANSWERS:
            reason = _answer_problem(conn, city_code, kind, body)
            if reason is None:
                if kind == "notice_receipt":
                    receipts.append(body)
                elif kind == "ticket_trace":
                    traced.append(body.request_notice_seq)
            else:
                quiet = True
        if reason is None and kind in FIGURE_KINDS:
            reports.append((envelope.seq, body, body_bytes, received_at))
            batch_bodies[envelope.seq] = body
            if subject is not None and revision is not None:
                revisions.setdefault(subject, {}).setdefault(revision, {})[
                    envelope.content_digest
                ] = envelope.seq
        if reason is None and kind == "escalation":
            # The desk's received time is the record's: the first one, for a re-send to a
            # hub restored from an older backup (as report timeliness keeps it).
            first_received = (
                acked_before[envelope.seq].ToDatetime(UTC)
                if earlier and envelope.seq in earlier
                else moment
            )
            escalations.append(
                (envelope.seq, envelope.created_at.ToDatetime(UTC), body, first_received)
            )
        kept, stored_reason = body_bytes, reason
        if reason is not None and len(body_bytes) > MAX_QUARANTINED_BODY_BYTES:
            # A refused body is kept for a person to look at, not to count: one far over
            # anything a city makes (a 20 MiB text, refused at 20,000 characters) would let
            # one city grow the hub's store by a message's size with every push.
            kept = b""
            stored_reason = (
                f"{reason} (its body, {len(body_bytes):,} bytes, is not kept: over "
                f"{MAX_QUARANTINED_BODY_BYTES:,})"
            )
        rows.append(
            _record_row(
                conn,
                city_code,
                envelope,
                kind,
                "accepted" if reason is None else "quarantined",
                stored_reason,
                subject,
                revision,
                received_at,
                kept,
            )
        )
        if reason is not None:
            quarantined += 1
            if not quiet:
                rejections.append(
                    pb.Rejection(
                        seq=envelope.seq,
                        body_kind=kind,
                        reason=reason,
                        epoch=envelope.epoch,
                        content_digest=envelope.content_digest,
                        next_revision=next_revision,
                    )
                )
    bulk_insert(conn, Record.__tablename__, RECORD_COLUMNS, rows)
    land_figures(conn, city_code=city_code, reports=reports)
    land_escalations(conn, city_code=city_code, escalations=escalations)
    for receipt in receipts:
        _apply_receipt(conn, city_code, receipt, moment)
    if traced:
        # An answer proves its request arrived, before the city's cursor may say so.
        mark_first(conn, city_code, traced, "delivered_at", moment)
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
        accepted=len(fresh) - quarantined - repeated,
        quarantined=quarantined,
        duplicates=duplicates,
        notified_cities=(city_code,) if rejections else (),
    )


def _stored_subject(kind: str, body: Any) -> tuple[str | None, int | None]:
    """:func:`_subject` as the record stores it (bounded, no NUL)."""
    subject, revision = _subject(kind, body)
    if subject is not None:
        if "\x00" in subject:  # of a record quarantined for it
            subject = subject.replace("\x00", "\ufffd")
        subject = subject[:MAX_SUBJECT_CHARS]
    return subject, revision


def _held_subjects(
    conn: Any, city_code: str, epoch: str, subjects: Sequence[tuple[str | None, int | None]]
) -> dict[tuple[str, bytes], int]:
    """(subject, content digest) -> the seq of the city's accepted record of it under an
    earlier epoch, for the ``subjects`` a batch under ``epoch`` brings.

    Only a city re-based after a restore can make a body again under a new seq, and then
    under its new epoch: a city whose first record is of this epoch was never re-based, and
    costs one indexed read per batch (comparing every subject cost a third of ingest)."""
    first_epoch = conn.execute(
        select(Record.epoch).where(Record.city_code == city_code).order_by(Record.seq).limit(1)
    ).scalar()
    if first_epoch is None or first_epoch == epoch:
        return {}
    held: dict[tuple[str, bytes], int] = {}
    ordered = sorted({s for s, _ in subjects if s is not None})
    for start in range(0, len(ordered), 500):
        for subject, digest, seq in conn.execute(
            select(Record.subject, Record.digest, Record.seq)
            .where(
                Record.city_code == city_code,
                Record.subject.in_(ordered[start : start + 500]),
                Record.status == "accepted",
                Record.epoch != epoch,
            )
            .order_by(Record.seq)
        ):
            held.setdefault((subject, bytes(digest)), seq)
    return held


def _held_revisions(
    conn: Any,
    city_code: str,
    fresh: Sequence[tuple[pb.Envelope, str, bytes]],
    subjects: Sequence[tuple[str | None, int | None]],
) -> dict[str, dict[int, dict[bytes, int]]]:
    """For the reports of a batch: each period's (subject's) accepted revisions the city
    has at the hub, revision -> {content digest: seq} (a store from before this rule may
    hold several reports under one revision: a copy of any of them is a repeat). One
    indexed read per batch holding reports (``ix_records_subject``)."""
    wanted = sorted(
        {
            subject
            for (_, kind, _), (subject, _) in zip(fresh, subjects, strict=True)
            if kind in FIGURE_KINDS and subject is not None
        }
    )
    held: dict[str, dict[int, dict[bytes, int]]] = {}
    # Straight through the driver: compiling an expanding IN of 500 binds through Core cost
    # more than the index probes (a daily report's ingest grew by a sixth).
    mark = driver_mark(conn)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.exec_driver_sql(
            f"SELECT subject, revision, digest, seq FROM {Record.__tablename__} "
            f"WHERE city_code = {mark} AND status = 'accepted' "
            f"AND subject IN ({', '.join([mark] * len(chunk))})",
            (city_code, *chunk),
        )
        for subject, revision, digest, seq in rows:
            digests = held.setdefault(subject, {}).setdefault(revision, {})
            digests[bytes(digest)] = min(seq, digests.get(bytes(digest), seq))
    return held


def _figures_only(report: pb.StatisticsReport) -> bytes:
    """A statistics report's bytes without who approved it and when."""
    bare = pb.StatisticsReport()
    bare.CopyFrom(report)
    bare.ClearField("approved_by")
    bare.ClearField("approved_at")
    return bare.SerializeToString(deterministic=True)


def _same_figures(
    conn: Any,
    city_code: str,
    report: pb.StatisticsReport,
    held_seqs: Any,
    batch_bodies: Mapping[int, Any],
) -> int | None:
    """The lowest seq among ``held_seqs`` (the city's accepted reports under this period and
    revision) whose figures are ``report``'s, approval apart; None when none is. Read only
    when the content differs, which a city does not make but after a restore."""
    seqs = sorted(held_seqs)
    bodies = {seq: batch_bodies[seq] for seq in seqs if seq in batch_bodies}
    stored = [seq for seq in seqs if seq not in bodies]
    if stored:
        rows = conn.execute(
            select(Record.seq, Record.body).where(
                Record.city_code == city_code, Record.seq.in_(stored)
            )
        )
        bodies.update((int(seq), pb.StatisticsReport.FromString(raw)) for seq, raw in rows)
    mine = _figures_only(report)
    for seq in seqs:
        if seq in bodies and _figures_only(bodies[seq]) == mine:
            return int(seq)
    return None


def _record_row(
    conn: Any,
    city_code: str,
    envelope: pb.Envelope,
    kind: str,
    status: str,
    reason: str | None,
    subject: str | None,
    revision: int | None,
    received_at: Any,
    body_bytes: bytes,
) -> tuple[Any, ...]:
    """A row of ``records`` in :data:`RECORD_COLUMNS` order."""
    return (
        city_code,
        envelope.seq,
        envelope.epoch,
        kind,
        status,
        reason,
        subject,
        revision,
        timestamp_param(conn, envelope.created_at.seconds, envelope.created_at.nanos),
        received_at,
        envelope.content_digest,
        body_bytes,
    )


#: Largest body a quarantined record keeps (1 MiB; the rules refuse any text over 20,000
#: characters, so a refused body beyond this is mostly what was refused).
MAX_QUARANTINED_BODY_BYTES = 1 << 20

#: How far a city's stated ``acked_before`` time may lie before the hub's receipt of the last
#: envelope it holds of that city (the city's clock against the hub's).
ACKED_BEFORE_SLACK = timedelta(minutes=10)


def _earlier_receipts(
    conn: Any,
    city_code: str,
    fresh: Sequence[tuple[pb.Envelope, str, bytes]],
    acked_before: Mapping[int, Any],
    moment: datetime,
    *,
    first_seq: int,
    held_seq: int,
) -> dict[int, Any]:
    """seq -> received_at (driver form) of the fresh envelopes this hub acknowledged before,
    as the city states it; a time outside [created_at, now], for a seq the batch (from
    ``first_seq``, duplicates included) does not carry, or before the hub received the
    city's last envelope it holds (``held_seq``) is not taken (and logged).

    The last rule holds because a city's envelopes are acknowledged in seq order: one the
    hub lost (a seq after those it holds) was acknowledged after the last it holds. Without
    it, a city could state an early time for a report it had never delivered and have a late
    report counted on time. The city's clock states the time and the hub's received the held
    one: :data:`ACKED_BEFORE_SLACK` allows for the two clocks."""
    if not acked_before:
        return {}
    out: dict[int, Any] = {}
    last_seq = fresh[-1][0].seq
    ignored = sum(1 for seq in acked_before if not first_seq <= seq <= last_seq)
    latest = moment.timestamp()
    earliest = float("-inf")
    if held_seq:
        held_at = conn.execute(
            select(Record.received_at).where(Record.city_code == city_code, Record.seq == held_seq)
        ).scalar()
        if held_at is not None:
            held_utc = held_at if held_at.tzinfo else held_at.replace(tzinfo=UTC)
            earliest = held_utc.timestamp() - ACKED_BEFORE_SLACK.total_seconds()
    for envelope, _kind, _body in fresh:
        stated = acked_before.get(envelope.seq)
        if stated is None:
            continue
        seconds, nanos = stated.seconds, stated.nanos
        created = envelope.created_at
        if (
            timestamp_problem(seconds, nanos, "acked_before") is None
            and (created.seconds, created.nanos) <= (seconds, nanos)
            and earliest <= seconds <= latest
        ):
            out[envelope.seq] = timestamp_param(conn, seconds, nanos)
        else:
            ignored += 1
    if out or ignored:
        # Taken times are what a restore is for (INFO); ignored ones are a city stating
        # what cannot be (WARNING: shown at the default level).
        log.log(
            logging.WARNING if ignored else logging.INFO,
            "city %s re-sends %d envelopes this hub had acknowledged before (restored from an "
            "older backup): stored as received then%s",
            city_code,
            len(out),
            f"; {ignored} stated times ignored (outside the envelope's creation and now, "
            "before the last envelope the hub holds was received, or for a seq not in the "
            "batch)"
            if ignored
            else "",
        )
    return out


def _notice_held(conn: Any, notice_seq: int) -> bool:
    return conn.execute(select(Notice.seq).where(Notice.seq == notice_seq)).first() is not None


#: Bodies that answer a notice: the field naming it, and what the body is called.
_ANSWERS = {
    "notice_receipt": ("notice_seq", "receipt"),
    "ticket_trace": ("request_notice_seq", "trace"),
    "escalation": ("follow_up.resolution_notice_seq", "follow-up"),
}


#: The notice kind an answer must name, and the notice's detail holding the ticket it is about.
_ANSWERED_KIND = {
    "ticket_trace": (pb.TRACE_REQUEST, "trace_request"),
    "escalation": (pb.ESCALATION_RESOLUTION, "escalation_resolution"),
}


def _same_ticket(answered: str, asked: str) -> bool:
    """Ids as a person typed one (``hub resolve --ticket " 012"``) and the city wrote the
    other (its number, ``12``) name the same ticket."""
    a, b = answered.strip(), asked.strip()
    return a == b or (a.isdecimal() and b.isdecimal() and int(a) == int(b))


def _answer_problem(conn: Any, city_code: str, kind: str, body: Any) -> str | None:
    """Why ``body`` cannot answer the notice it names (None when it can, or names none)."""
    field, what = _ANSWERS[kind]
    if kind == "escalation":
        if not body.HasField("follow_up"):
            return None  # a new escalation answers nothing
        notice_seq = body.follow_up.resolution_notice_seq
    else:
        notice_seq = getattr(body, field)
    exists = conn.execute(
        select(Notice.kind, Notice.payload)
        .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
        .where(NoticeDelivery.notice_seq == notice_seq, NoticeDelivery.city_code == city_code)
    ).first()
    if exists is not None and kind in _ANSWERED_KIND:
        # A trace answers one ticket's request, a follow-up one ticket's resolution: another
        # notice, or another ticket, would put one ticket's story on another's case.
        wanted_kind, detail = _ANSWERED_KIND[kind]
        if exists.kind != pb.NoticeKind.Name(wanted_kind):
            return (
                f"{field}: notice {notice_seq} is of kind {exists.kind}, not "
                f"{pb.NoticeKind.Name(wanted_kind)}; the {what} is kept quarantined"
            )
        asked = getattr(pb.Notice.FromString(exists.payload), detail).ticket_id
        if not _same_ticket(body.ticket_id, asked):
            return (
                f"ticket_id: notice {notice_seq} is about ticket {errors.shown(asked)}, not "
                f"{errors.shown(body.ticket_id)}; the {what} is kept quarantined"
            )
    if exists is None:
        if kind == "escalation" and not _notice_held(conn, notice_seq):
            # A follow-up on a resolution a restored hub lost still tells the desk what came
            # of this city's own ticket (it lands on this city's case of the ticket only).
            return None
        # The city holds the notice (it only answers notices in its inbox), so the likeliest
        # cause is a hub restored from a backup older than the notice.
        return (
            f"{field}: this hub holds no notice {notice_seq} for city {city_code} (never sent "
            f"to it, or lost when the hub was restored from an older backup); the {what} is "
            "kept quarantined, nothing to send again"
        )
    return None


def _earliest(column: Any, moment: datetime) -> Any:
    """The earlier of a delivery's time and ``moment``: done (or objected) is judged by the
    first time the city said so — a task done in time and recorded again after its deadline
    (the leader pressed twice, a store restored) stays done in time; the note is the latest."""
    return case((column.is_(None) | (column > moment), moment), else_=column)


def _apply_receipt(conn: Any, city_code: str, receipt: pb.NoticeReceipt, moment: datetime) -> None:
    acted_at = receipt.acted_at.ToDatetime(UTC) if receipt.HasField("acted_at") else moment
    # A receipt proves the notice arrived: delivered no later than it was acted on (the
    # city's cursor, in the next heartbeat, may confirm it only after the receipt lands).
    values: dict[str, Any] = {
        "last_actor": receipt.actor or None,
        "delivered_at": func.coalesce(NoticeDelivery.delivered_at, min(acted_at, moment)),
    }
    if receipt.action == pb.READ:
        values["read_at"] = func.coalesce(NoticeDelivery.read_at, acted_at)
    elif receipt.action == pb.DONE:
        values.update(
            done_at=_earliest(NoticeDelivery.done_at, acted_at),
            done_note=receipt.note,
            read_at=func.coalesce(NoticeDelivery.read_at, acted_at),
        )
    else:
        values.update(
            objection_at=_earliest(NoticeDelivery.objection_at, acted_at),
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
