"""The city node's use cases for the link: send a body, take a notice, record a receipt."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf.message import DecodeError, Message
from sqlalchemy import Connection, Engine, Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from city_node import domain, province_notices, reports
from city_node.context import Actor, CityError, NotFound, check_city_note, existing_id
from city_node.domain import Action, Role
from city_node.personal_data import sees_customers
from city_node.store import Escalation, InboxNotice, Report, SuggestionBatch, TicketRow
from sync import outbox
from sync.db import UnitOfWork
from sync.envelopes import body_kind
from sync.limits import blank
from sync.masking import mask_text
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
            raise CityError("rules.broken", problem=problem)
    with UnitOfWork(engine) as uow:
        seq = outbox.append(uow.conn, body)
        uow.commit()
    return seq


def accept_notice(engine: Engine, notice: pb.Notice, *, now: datetime | None = None) -> bool:
    """Persist a notice from the hub and advance the cursor in the same transaction.

    Returns False when it was already in the inbox (a replay after a reconnect).
    """
    moment = now or _now()
    rejection_key = _rejection_key(notice)
    with UnitOfWork(engine) as uow:
        if rejection_key is not None and _rejection_filed(uow.conn, rejection_key):
            # A hub restored from an older backup quarantined the same envelope again: the
            # city was told once, and it is the same correction to make.
            outbox.advance_notice_cursor(uow.conn, notice.seq)
            uow.commit()
            return False
        # One statement both stores the notice and tells whether it is new (a round trip
        # less per notice than looking first, on the path every notice takes).
        new = _insert_new(
            uow.conn,
            InboxNotice.__table__,  # type: ignore[arg-type]
            {
                "notice_seq": notice.seq,
                "kind": pb.NoticeKind.Name(notice.kind),
                # Unset (a hub that left it out) reads as normal, as the hub's own default;
                # "PRIORITY_UNSPECIFIED" would not fit the column on PostgreSQL either.
                "priority": pb.Priority.Name(notice.priority or pb.NORMAL),
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
                "reply_to_seq": notice.reply_to_seq or None,
                "rejection_key": rejection_key,
            },
        )
        outbox.advance_notice_cursor(uow.conn, notice.seq)
        if new and province_notices.acts_on(notice):
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
        if new and notice.kind == pb.REJECTION and _own_envelope(uow.conn, notice.rejection):
            # The operator sees it on the link status as well as in the inbox; a rejection
            # of an envelope this store never sent (the store it was restored in place of
            # sent it) stays in the inbox only: there is nothing here to correct.
            uow.conn.execute(
                update(outbox.LinkState)
                .where(outbox.LinkState.id == outbox.LINK_ROW_ID)
                .values(last_rejection=f"notice {notice.seq}: {notice.body}")
            )
            # The report it names reads as refused wherever reports are listed; and where
            # the hub holds this period's revision with other figures (this store was
            # restored from an older copy), the next draft starts where the hub said.
            refused: dict[str, Any] = {
                "hub_rejection": notice.rejection.reason or notice.body or "refused"
            }
            if notice.rejection.next_revision:
                refused["hub_next_revision"] = notice.rejection.next_revision
            uow.conn.execute(
                update(Report).where(Report.outbox_seq == notice.rejection.seq).values(**refused)
            )
            if notice.rejection.next_revision:
                # A draft of that period made before this came would be refused in turn.
                reports.renumber_drafts(
                    uow.conn, notice.rejection.seq, notice.rejection.next_revision
                )
        uow.commit()
    return new


def _rejection_key(notice: pb.Notice) -> str | None:
    """The envelope a REJECTION is about, as the inbox keys it; None for other notices and
    for a rejection from a hub that does not name the envelope's epoch."""
    if notice.kind != pb.REJECTION or not notice.rejection.epoch:
        return None
    rejection = notice.rejection
    named = hashlib.sha256()
    for part in (rejection.epoch.encode(), str(rejection.seq).encode(), rejection.content_digest):
        named.update(len(part).to_bytes(4, "big"))
        named.update(part)
    return named.hexdigest()


def _rejection_filed(conn: Connection, key: str) -> bool:
    found = conn.execute(
        select(InboxNotice.notice_seq).where(InboxNotice.rejection_key == key).limit(1)
    ).first()
    return found is not None


def _own_envelope(conn: Connection, rejection: pb.Rejection) -> bool:
    if not rejection.epoch:  # an older hub does not say which envelope: take it as ours
        return True
    return outbox.holds_envelope(
        conn, seq=rejection.seq, epoch=rejection.epoch, digest=rejection.content_digest
    )


def _insert_new(conn: Connection, table: Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its primary key exists; whether it was inserted."""
    # RETURNING rather than rowcount, which the PostgreSQL driver does not report here.
    if conn.dialect.name == "postgresql":
        statement: Any = pg_insert(table).on_conflict_do_nothing()
    else:
        statement = sqlite_insert(table).on_conflict_do_nothing()
    key = list(table.primary_key.columns)
    return conn.execute(statement.returning(*key), row).first() is not None


_ACTIONS = {a.value: a.pb for a in ReceiptAction}


def record_receipt(
    engine: Engine,
    *,
    notice_seq: int,
    action: str,
    actor: Actor,
    note: str = "",
    now: datetime | None = None,
) -> int:
    """Mark a notice read, done (with a note) or objected to (with the reason). Only the
    leader answers for the center (``Action.RECORD_RECEIPT``), whichever edge asks.

    The inbox change and the receipt's outbox row commit together; returns the receipt's seq.
    """
    domain.check_may(actor.role, Action.RECORD_RECEIPT)
    if action not in _ACTIONS:
        raise CityError("receipt.action", value=action, allowed=", ".join(_ACTIONS))
    if action == ReceiptAction.OBJECTION and blank(note):
        raise CityError("receipt.objection_reason")
    # The hub quarantines a receipt whose note is over its limit; refuse it here, before it is
    # queued and shown as sent.
    check_city_note(note, "note")
    existing_id(notice_seq, "notice")
    moment = now or _now()
    with UnitOfWork(engine) as uow:
        row = uow.conn.execute(
            select(
                InboxNotice.notice_seq, InboxNotice.read_at, InboxNotice.kind, InboxNotice.payload
            ).where(InboxNotice.notice_seq == notice_seq)
        ).first()
        if row is None:
            raise NotFound("notice.not_in_inbox", notice=notice_seq)
        # Done and objected imply read; a repeated read keeps the first (as the hub does).
        values: dict[str, Any] = {}
        if row.read_at is None:
            values.update(read_at=moment, read_by=actor.id)
        if action == ReceiptAction.DONE:
            values.update(done_at=moment, done_by=actor.id, done_note=note)
        elif action == ReceiptAction.OBJECTION:
            values.update(objection_at=moment, objection_by=actor.id, objection_reason=note)
        if values:
            uow.conn.execute(
                update(InboxNotice).where(InboxNotice.notice_seq == notice_seq).values(**values)
            )
        # The inbox keeps the leader's words; what leaves the city has every phone-like
        # number masked, and on a resolution its customer's name and phone: a note saying
        # "called 张丽桂 back" is no escalation.
        name, phone = _resolution_customers(uow.conn, [row]).get(notice_seq, ("", ""))
        receipt = pb.NoticeReceipt(
            notice_seq=notice_seq,
            action=_ACTIONS[action],
            note=mask_text(note, name=name, phone=phone),
            actor=actor.id,
        )
        receipt.acted_at.FromDatetime(moment)
        seq = outbox.append(uow.conn, receipt, now=moment)
        uow.commit()
    return seq


def inbox(engine: Engine, *, limit: int = 100, role: Role | None = None) -> list[InboxNotice]:
    """The latest notices, newest first, as ``role`` may read them (None: the node's
    administrator at the shell). A province's words may quote a customer — a resolution
    saying what was agreed with them, a trace request — so for a role that does not see
    customers every phone-like number in a notice's text is masked, and a resolution's
    customer's name and phone wherever they appear, as in the ticket's own history."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(InboxNotice).order_by(InboxNotice.notice_seq.desc()).limit(limit)
        ).all()
        notices = [InboxNotice(**row._mapping) for row in rows]
        if not sees_customers(role):
            _mask_notices(conn, notices)
    return notices


def _resolution_customers(conn: Connection, notices: Sequence[Any]) -> dict[int, tuple[str, str]]:
    """notice seq -> (name, phone) of the customer whose ticket a resolution among
    ``notices`` (rows with ``notice_seq``, ``kind``, ``payload``) is about; one read."""
    resolved: dict[int, int] = {}  # notice seq -> the ticket its resolution is about
    for n in notices:
        if n.kind == "ESCALATION_RESOLUTION":
            try:
                ticket = pb.Notice.FromString(n.payload).escalation_resolution.ticket_id
            except DecodeError:
                continue
            if ticket.isdigit() and len(ticket) < 19:
                resolved[int(n.notice_seq)] = int(ticket)
    if not resolved:
        return {}
    customers = {
        int(row.id): (row.customer_name, row.customer_phone)
        for row in conn.execute(
            select(TicketRow.id, TicketRow.customer_name, TicketRow.customer_phone).where(
                TicketRow.id.in_(set(resolved.values()))
            )
        )
    }
    return {seq: customers[t] for seq, t in resolved.items() if t in customers}


def _mask_notices(conn: Connection, notices: list[InboxNotice]) -> None:
    customers = _resolution_customers(conn, notices)
    for n in notices:
        name, phone = customers.get(int(n.notice_seq), ("", ""))
        # The notice an answer replies to is named by its seq ("Re #1795997375509"): a
        # reference, not a phone.
        keep = (f"#{n.reply_to_seq}",) if n.reply_to_seq else ()
        for field in ("title", "body", "handled_note", "done_note", "objection_reason"):
            text = getattr(n, field)
            if text:
                setattr(n, field, mask_text(text, name=name, phone=phone, keep=keep))


def superseded_answers(engine: Engine, seqs: list[int]) -> dict[int, int]:
    """Of these notice seqs, the standard answers a newer version replaced: seq -> newer seq."""
    with engine.connect() as conn:
        return province_notices.superseded(conn, seqs)


#: Most words a standard-answer search may have: each is a LIKE term, and thousands of them
#: overflow SQLite's expression tree. Nobody types more than a few.
MAX_SEARCH_WORDS = 20


def search_answers(engine: Engine, query: str, category: str | None = None) -> list[Any]:
    """Standard answers (统一口径) matching every word of ``query``, for operators answering."""
    words = len(query.split())
    if words > MAX_SEARCH_WORDS:
        raise CityError("search.too_many_words", words=words, maximum=MAX_SEARCH_WORDS)
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
