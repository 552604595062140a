"""The city node's use cases for the link: send a body, take a notice, record a receipt."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf.message import Message
from sqlalchemy import Connection, Engine, Table, bindparam, select, update

from city_node import province_notices
from city_node.context import CityError, NotFound, check_city_note, existing_id
from city_node.store import Escalation, InboxNotice, Report, SuggestionBatch
from sync import outbox
from sync.db import UnitOfWork, insert_ignore
from sync.envelopes import body_kind
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.validation import broken_rule
from sync.vocabulary import ReceiptAction

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def open_store(engine: Engine, city_code: str) -> str:
    """Make sure the store is this city's and initialised; return its epoch."""
    with UnitOfWork(engine) as uow:
        epoch = outbox.initialise(uow.conn, city_code)
        uow.commit()
    return epoch


def send(engine: Engine, body: Message, *, tz_name: str | None = None) -> int:
    """Queue one body for the province; return its seq.

    With ``tz_name`` the body is first checked against the hub's business rules, so a person
    gets the error now rather than a rejection later.
    """
    if tz_name is not None:
        problem = broken_rule(body_kind(body), body, tz_name=tz_name)
        if problem:
            raise CityError(problem)
    with UnitOfWork(engine) as uow:
        seq = outbox.append(uow.conn, body)
        uow.commit()
    return seq


def accept_notice(engine: Engine, notice: pb.Notice, *, now: datetime | None = None) -> bool:
    """Persist a notice from the hub and advance the cursor in the same transaction.

    Returns False when it was already in the inbox (a replay after a reconnect).
    """
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        exists = uow.conn.execute(
            select(InboxNotice.notice_seq).where(InboxNotice.notice_seq == notice.seq)
        ).first()
        insert_ignore(
            uow.conn,
            InboxNotice.__table__,  # type: ignore[arg-type]
            [
                {
                    "notice_seq": notice.seq,
                    "kind": pb.NoticeKind.Name(notice.kind),
                    "priority": pb.Priority.Name(notice.priority),
                    "title": notice.title,
                    "body": notice.body,
                    "sender": notice.sender,
                    "created_at": notice.created_at.ToDatetime(UTC),
                    "received_at": moment,
                    "task_deadline": (
                        notice.task_deadline.ToDatetime(UTC)
                        if notice.HasField("task_deadline")
                        else None
                    ),
                    "payload": notice.SerializeToString(),
                }
            ],
        )
        outbox.advance_notice_cursor(uow.conn, notice.seq)
        if exists is None:
            # Applying a notice (trace, resolution, standard answer) may fail on its content;
            # the notice itself must still be kept and the cursor advanced, or one bad
            # notice would be replayed forever and block every later one. A savepoint keeps
            # the failed part out and the rest of the transaction in.
            try:
                with uow.conn.begin_nested():
                    handled = province_notices.apply(uow.conn, notice, moment)
            except Exception as exc:
                log.exception("notice %d could not be applied", notice.seq)
                handled = f"not applied: {type(exc).__name__}: {exc}"[:2000]
            if handled:
                province_notices.mark_handled(uow.conn, notice.seq, handled)
        if exists is None and notice.kind == pb.REJECTION:
            # The operator sees it on the link status as well as in the inbox.
            uow.conn.execute(
                update(outbox.LinkState)
                .where(outbox.LinkState.id == outbox.LINK_ROW_ID)
                .values(last_rejection=f"notice {notice.seq}: {notice.body}")
            )
        uow.commit()
    return exists is None


_ACTIONS = {a.value: a.pb for a in ReceiptAction}


def record_receipt(
    engine: Engine,
    *,
    notice_seq: int,
    action: str,
    actor: str,
    note: str = "",
    now: datetime | None = None,
) -> int:
    """Mark a notice read, done (with a note) or objected to (with the reason).

    The inbox change and the receipt's outbox row commit together; returns the receipt's seq.
    """
    if action not in _ACTIONS:
        raise CityError(f"action {action!r}: use one of {', '.join(_ACTIONS)}")
    if action == ReceiptAction.OBJECTION and not note.strip():
        raise CityError("an objection needs its reason (note)")
    # The hub quarantines a receipt whose note is over its limit; refuse it here, before it is
    # queued and shown as sent.
    check_city_note(note, "note")
    if not actor.strip():
        raise CityError("say who acts (actor)")
    existing_id(notice_seq, "notice")
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        row = uow.conn.execute(
            select(InboxNotice.notice_seq).where(InboxNotice.notice_seq == notice_seq)
        ).first()
        if row is None:
            raise NotFound(f"notice {notice_seq} is not in this city's inbox")
        values: dict[str, Any] = {}
        if action == ReceiptAction.READ:
            values.update(read_at=moment, read_by=actor)
        elif action == ReceiptAction.DONE:
            values.update(done_at=moment, done_by=actor, done_note=note)
        else:
            values.update(objection_at=moment, objection_by=actor, objection_reason=note)
        uow.conn.execute(
            update(InboxNotice).where(InboxNotice.notice_seq == notice_seq).values(**values)
        )
        receipt = pb.NoticeReceipt(
            notice_seq=notice_seq,
            action=_ACTIONS[action],
            note=note,
            actor=actor,
        )
        receipt.acted_at.FromDatetime(moment)
        seq = outbox.append(uow.conn, receipt, now=moment)
        uow.commit()
    return seq


def inbox(engine: Engine, *, limit: int = 100) -> list[InboxNotice]:
    """The latest notices, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(InboxNotice).order_by(InboxNotice.notice_seq.desc()).limit(limit)
        ).all()
    return [InboxNotice(**row._mapping) for row in rows]


def search_answers(engine: Engine, query: str, category: str | None = None) -> list[Any]:
    """Standard answers (统一口径) matching every word of ``query``, for operators answering."""
    with engine.connect() as conn:
        return province_notices.search_answers(conn, query, category)


def follow_rebase(conn: Connection, seq_map: Mapping[int, int]) -> None:
    """After a re-base, point escalations, reports and suggestion batches at their new seqs.

    Runs in the re-base's own transaction. Old and new numbers overlap (71 -> 118 while
    118 -> 165), so every reference first goes to the negated new value, then flips sign:
    no row is moved twice.
    """
    pairs = [{"old": old, "new": -new} for old, new in seq_map.items()]
    for model in (Escalation, Report, SuggestionBatch):
        table = cast(Table, model.__table__)
        column = table.c.outbox_seq
        for start in range(0, len(pairs), 1000):
            conn.execute(
                update(table).where(column == bindparam("old")).values(outbox_seq=bindparam("new")),
                pairs[start : start + 1000],
            )
        conn.execute(update(table).where(column < 0).values(outbox_seq=-column))
