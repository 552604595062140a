"""Suggestions (建议): classified by the materials clerk, sent up in daily batches.

A suggestion ticket gets a class label (the clerk's own vocabulary: "tariff", "coverage",
…); :func:`send_batch` puts every classified suggestion not yet sent into one
SuggestionBatch in the outbox, marking them in the same transaction so none is sent twice.
The customer's name and phone, and any phone-like number, are masked in the content and
the class label the batch carries: personal data does not leave the city with a suggestion.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from city_node import domain, personal_data
from city_node.context import Actor, CityContext, CityError, Conflict
from city_node.domain import Action, NoteCode, Role, TicketKind
from city_node.store import SuggestionBatch, TicketRow
from city_node.ticket_store import load_row, record_step
from city_node.tickets import check_ticket_id
from sync import outbox
from sync.db import UnitOfWork
from sync.masking import mask_text
from sync.pb.fedsync.v1 import federation_pb2 as pb

_T: Table = TicketRow.__table__  # type: ignore[assignment]
MAX_BATCH = 10_000


MAX_LABEL = 64


@dataclass(frozen=True)
class SuggestionView:
    """A suggestion ticket as the materials clerk works it."""

    ticket_id: int
    category: str
    content: str
    registered_at: datetime
    label: str | None
    classified_by: str | None


def unclassified(ctx: CityContext, limit: int = 100) -> list[Any]:
    with ctx.engine.connect() as conn:
        return list(
            conn.execute(
                select(_T.c.id, _T.c.category, _T.c.content, _T.c.registered_at)
                .where(_T.c.kind == TicketKind.SUGGESTION.value, _T.c.suggestion_class.is_(None))
                .order_by(_T.c.id)
                .limit(max(1, min(limit, 1000)))
            )
        )


def _view(row: Any, role: Role | None) -> SuggestionView:
    """A suggestion's row as ``role`` reads it: the content and the class label with the
    customer's name and phone masked unless the role sees customers (the ticket views' rule)."""
    contact = {"name": row.customer_name, "phone": row.customer_phone}
    content = personal_data.shown_text(role, row.content, **contact)
    label = row.suggestion_class
    if label:
        label = personal_data.shown_label(role, label, **contact)
    return SuggestionView(
        row.id, row.category, content, row.registered_at, label, row.classified_by
    )


def worklist(
    ctx: CityContext,
    *,
    classified: bool = False,
    limit: int = 100,
    role: Role | None = None,
) -> list[SuggestionView]:
    """Suggestions not yet sent to the province, oldest first: those still to classify, or
    (``classified``) those classified and waiting for the next batch; as ``role`` reads
    them (None: the node's administrator at the shell)."""
    label = _T.c.suggestion_class
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(
                _T.c.id,
                _T.c.category,
                _T.c.content,
                _T.c.registered_at,
                label,
                _T.c.classified_by,
                _T.c.customer_name,
                _T.c.customer_phone,
            )
            .where(
                _T.c.kind == TicketKind.SUGGESTION.value,
                _T.c.suggestion_batch_id.is_(None),
                label.is_not(None) if classified else label.is_(None),
            )
            .order_by(_T.c.id)
            .limit(max(1, min(limit, 1000)))
        ).all()
    return [_view(row, role) for row in rows]


def get(ctx: CityContext, ticket_id: int, *, role: Role | None = None) -> SuggestionView:
    """One suggestion ticket as ``role`` sees it (see :func:`worklist`); NotFound, or
    CityError if not one."""
    number = check_ticket_id(ticket_id)
    with ctx.engine.connect() as conn:
        row = load_row(conn, number)
    if row.kind != TicketKind.SUGGESTION.value:
        raise CityError("suggestion.not_suggestion", ticket=number, kind=row.kind)
    return _view(row, role)


def check_label(label: str) -> str:
    """A class label, stripped: 1-64 characters, no control characters."""
    if not isinstance(label, str):
        raise CityError("text.not_text", field="label")
    label = label.strip()
    if not label or len(label) > MAX_LABEL:
        raise CityError("suggestion.label_length", field="label", maximum=MAX_LABEL)
    for ch in label:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise CityError("text.bad_char", field="label", code=f"{ord(ch):04X}")
    return label


def classify(
    ctx: CityContext,
    actor: Actor,
    ticket_id: int,
    label: str,
    *,
    now: datetime | None = None,
) -> None:
    domain.check_may(actor.role, Action.CLASSIFY)
    label = check_label(label)
    number = check_ticket_id(ticket_id)
    moment = now or ctx.now()
    with UnitOfWork(ctx.engine) as uow:
        row = load_row(uow.conn, number)
        if row.kind != TicketKind.SUGGESTION.value:
            raise CityError("suggestion.not_suggestion", ticket=number, kind=row.kind)
        if row.suggestion_batch_id is not None:
            raise Conflict("suggestion.already_sent", ticket=number)
        record_step(
            uow.conn,
            row,
            actor,
            Action.CLASSIFY,
            "",
            moment,
            code=NoteCode.CLASSIFIED,
            params={"label": label},
            suggestion_class=label,
            classified_by=actor.id,
            classified_at=moment,
        )
        uow.commit()


def send_batch(
    ctx: CityContext, actor: Actor, *, now: datetime | None = None
) -> tuple[int, int] | None:
    """Queue every classified, unsent suggestion as today's next batch (see
    :func:`_send_batch`); a batch sent at the same instant by someone else gives
    :class:`~city_node.context.Conflict` — send again to pick up what is left."""
    try:
        return _send_batch(ctx, actor, now=now)
    except IntegrityError:
        raise Conflict("suggestion.batch_race") from None


def _send_batch(
    ctx: CityContext, actor: Actor, *, now: datetime | None = None
) -> tuple[int, int] | None:
    """Queue every classified, unsent suggestion as today's next batch.

    Returns (outbox seq, number of suggestions), or None when there is nothing to send.
    """
    domain.check_may(actor.role, Action.SEND_SUGGESTIONS)
    moment = now or ctx.now()
    today = ctx.today(moment).isoformat()
    with UnitOfWork(ctx.engine) as uow:
        rows = uow.conn.execute(
            select(
                _T.c.id,
                _T.c.suggestion_class,
                _T.c.category,
                _T.c.content,
                _T.c.registered_at,
                _T.c.classified_by,
                _T.c.customer_name,
                _T.c.customer_phone,
            )
            .where(
                _T.c.kind == TicketKind.SUGGESTION.value,
                _T.c.suggestion_class.is_not(None),
                _T.c.suggestion_batch_id.is_(None),
            )
            .order_by(_T.c.id)
            .limit(MAX_BATCH)
        ).all()
        if not rows:
            return None
        number = (
            uow.conn.execute(
                select(func.max(SuggestionBatch.batch_number)).where(
                    SuggestionBatch.batch_date == today
                )
            ).scalar()
            or 0
        ) + 1
        clerks = sorted({r.classified_by for r in rows if r.classified_by})
        body = pb.SuggestionBatch(
            batch_date=today, batch_number=number, classified_by=",".join(clerks) or actor.id
        )
        for r in rows:
            # Personal data stays in the city: the customer's name and phone, and any
            # phone-like number, are masked in what the customer suggested.
            content = mask_text(r.content, name=r.customer_name, phone=r.customer_phone)
            # The clerk's class too: a label typed as "账单 李雷 158…" names the customer (by
            # the full name: a given name alone may be the label's own word, 陈建议 → 建议).
            label = mask_text(
                r.suggestion_class,
                name=r.customer_name,
                phone=r.customer_phone,
                given_names=False,
            )
            s = body.suggestions.add(
                ticket_id=str(r.id),
                category=f"{label} / {r.category}",
                content=content,
            )
            s.received_at.FromDatetime(r.registered_at)
        seq = outbox.append(uow.conn, body, now=moment)
        batch_id = uow.conn.execute(
            insert(SuggestionBatch)
            .values(
                batch_date=today,
                batch_number=number,
                count=len(rows),
                sent_at=moment,
                sent_by=actor.id,
                outbox_seq=seq,
            )
            .returning(SuggestionBatch.id)
        ).scalar_one()
        uow.conn.execute(
            update(_T).where(_T.c.id.in_([r.id for r in rows])).values(suggestion_batch_id=batch_id)
        )
        uow.commit()
    return seq, len(rows)
