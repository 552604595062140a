"""Views read from the records themselves: quarantined records and suggestion batches (their
texts are only in the records)."""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

from sqlalchemy import Engine, and_, func, select

from province_hub.consolidation.core import DAY, iso
from province_hub.store import Record
from sync.categories import code_of
from sync.pb.fedsync.v1 import federation_pb2 as pb


def quarantined_records(
    engine: Engine, *, city_code: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Quarantined records, newest first: city, seq, kind, subject, reason, when."""
    query = select(
        Record.city_code,
        Record.seq,
        Record.kind,
        Record.subject,
        Record.revision,
        Record.reason,
        Record.received_at,
    ).where(Record.status == "quarantined")
    if city_code is not None:
        query = query.where(Record.city_code == city_code)
    query = query.order_by(Record.received_at.desc(), Record.city_code, Record.seq.desc())
    with engine.connect() as conn:
        rows = conn.execute(query.limit(max(1, min(limit, 5000)))).all()
    return [
        {
            "city_code": r.city_code,
            "seq": r.seq,
            "kind": r.kind,
            "subject": r.subject,
            "revision": r.revision,
            "reason": r.reason,
            "received_at": iso(r.received_at),
        }
        for r in rows
    ]


def suggestion_batches(
    engine: Engine,
    *,
    city_code: str | None = None,
    category: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Accepted suggestion batches, newest batch date first and within a date the highest
    batch number first (as numbers: 10 before 9), with their suggestions
    (only those of ``category`` or its sub-categories when given); dates inclusive. A page
    of ``limit`` batches after the first ``offset`` of that order (the batches that hold a
    suggestion of ``category`` when given)."""
    prefix = "suggestion_batch/"
    conditions = [Record.kind == "suggestion_batch", Record.status == "accepted"]
    if city_code is not None:
        conditions.append(Record.city_code == city_code)
    if date_from is not None:
        conditions.append(Record.subject >= f"{prefix}{date_from.isoformat()}")
    if date_to is not None:
        # Subjects are "suggestion_batch/YYYY-MM-DD/N": compare as text up to the next day.
        conditions.append(Record.subject < f"{prefix}{(date_to + DAY).isoformat()}")
    wanted = max(1, min(limit, 1000))
    # Newest date first, and within a date the highest batch number: the subject's text up
    # to the number is the date, and of two numbers (no leading zeros) the longer is the
    # larger, so "…/19" comes before "…/9" (text alone puts 9 first and 19 after 2).
    batch_date = func.substr(Record.subject, 1, len(prefix) + len("YYYY-MM-DD"))
    query = (
        select(Record.city_code, Record.seq, Record.received_at, Record.body)
        .where(and_(*conditions))
        .order_by(
            batch_date.desc(),
            func.length(Record.subject).desc(),
            Record.subject.desc(),
            Record.city_code,
            Record.seq,
        )
    )
    skip = max(0, offset)
    if category is None:
        query = query.offset(skip).limit(wanted)
        skip = 0
    out: list[dict[str, Any]] = []
    # The category is inside each batch's bytes: with one, read on (a page of rows at a
    # time) until ``limit`` batches hold a suggestion of it, however far back they are.
    with (
        engine.connect() as conn,
        conn.execution_options(yield_per=200).execute(query) as rows,
    ):
        for r in rows:
            if len(out) >= wanted:
                break
            batch = _matching_batch(r, category)
            if batch is None:
                continue
            if skip:
                skip -= 1
                continue
            out.append(batch)
    return out


def _matching_batch(r: Any, category: str | None) -> dict[str, Any] | None:
    """One record's batch with its suggestions of ``category`` (None: every one), or None
    when it holds none of them."""
    batch = pb.SuggestionBatch.FromString(r.body)
    items = []
    for s in batch.suggestions:
        # A city sends the clerk's class and the code ("装机 / SVC.INSTALL"): the code counts.
        code = code_of(s.category)
        if category is not None and code != category and not code.startswith(category + "."):
            continue
        items.append(
            {
                "ticket_id": s.ticket_id,
                "category": s.category,
                "category_code": code,
                "content": s.content,
                "received_at": (
                    iso(s.received_at.ToDatetime(UTC)) if s.HasField("received_at") else None
                ),
            }
        )
    if category is not None and not items:
        return None
    return {
        "city_code": r.city_code,
        "seq": r.seq,
        "batch_date": batch.batch_date,
        "batch_number": batch.batch_number,
        "classified_by": batch.classified_by,
        "received_at": iso(r.received_at),
        "suggestions": items,
    }
