"""Views read from the records themselves: quarantined records and suggestion batches (their
texts are only in the records)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, tuple_

from province_hub.consolidation.core import DAY, iso
from province_hub.store import Record
from sync.categories import code_of
from sync.masking import mask_text
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
    (only those of ``category`` or its sub-categories when given, codes compared without
    regard to case); dates inclusive. A page
    of ``limit`` batches after the first ``offset`` of that order (the batches that hold a
    suggestion of ``category`` when given).

    A city's batch (date and number) is one batch however often it arrived: a city restored
    from an older copy numbers its next batch as one the hub holds already, with the
    suggestions it classified again. The latest copy is shown, with the suggestions of the
    earlier copies it does not carry (a ticket in both counts once, as the latest copy
    classed it) and their seqs in ``earlier_seqs``."""
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
    # larger, so "…/19" comes before "…/9" (text alone puts 9 first and 19 after 2). The
    # copies of one city's batch follow each other, the latest first.
    batch_date = func.substr(Record.subject, 1, len(prefix) + len("YYYY-MM-DD"))
    order = (
        batch_date.desc(),
        func.length(Record.subject).desc(),
        Record.subject.desc(),
        Record.city_code,
        Record.received_at.desc(),
        Record.seq.desc(),
    )
    skip = max(0, offset)
    if category is None:
        return _page_without_category(engine, conditions, order, skip, wanted)
    query = (
        select(Record.city_code, Record.seq, Record.subject, Record.received_at, Record.body)
        .where(and_(*conditions))
        .order_by(*order)
    )
    # Codes compare as a person types them: "svc.install" finds SVC.INSTALL.
    code = category.casefold()
    out: list[dict[str, Any]] = []
    # The category is inside each batch's bytes: read on (a page of rows at a time) until
    # ``limit`` batches hold a suggestion of it, however far back they are.
    with (
        engine.connect() as conn,
        conn.execution_options(yield_per=200).execute(query) as rows,
    ):
        for copies in _copies(rows):
            if len(out) >= wanted:
                break
            batch = _merged(conn, copies)
            batch["suggestions"] = [
                s for s in batch["suggestions"] if _under(s["category_code"].casefold(), code)
            ]
            if not batch["suggestions"]:
                continue
            if skip:
                skip -= 1
                continue
            out.append(batch)
    return out


def _under(code: str, wanted: str) -> bool:
    """Whether ``code`` is the category ``wanted`` or one of its sub-categories."""
    return code == wanted or code.startswith(wanted + ".")


def _page_without_category(
    engine: Engine, conditions: list[Any], order: tuple[Any, ...], skip: int, wanted: int
) -> list[dict[str, Any]]:
    """A page of batches with no category asked: the keys in order first (copies of one
    batch grouped, the batches before the page skipped without their bytes), then the
    bytes of the page's records alone."""
    keys = (
        select(Record.city_code, Record.seq, Record.subject)
        .where(and_(*conditions))
        .order_by(*order)
    )
    page: list[list[tuple[str, int]]] = []
    with engine.connect() as conn:
        with conn.execution_options(yield_per=1000).execute(keys) as rows:
            for copies in _copies(rows):
                if len(page) >= wanted:
                    break
                if skip:
                    skip -= 1
                    continue
                page.append([(r.city_code, int(r.seq)) for r in copies])
        wanted_keys = [key for copies in page for key in copies]
        found: dict[tuple[str, int], Any] = {}
        for i in range(0, len(wanted_keys), 500):
            part = wanted_keys[i : i + 500]
            for r in conn.execute(
                select(
                    Record.city_code, Record.seq, Record.subject, Record.received_at, Record.body
                ).where(tuple_(Record.city_code, Record.seq).in_(part))
            ):
                found[(r.city_code, int(r.seq))] = r
        return [_merged(conn, [found[key] for key in copies]) for copies in page]


def _copies(rows: Iterable[Any]) -> Iterator[list[Any]]:
    """The rows in groups of one city's copies of one batch (they follow each other)."""
    group: list[Any] = []
    for r in rows:
        if group and (r.city_code, r.subject) != (group[0].city_code, group[0].subject):
            yield group
            group = []
        group.append(r)
    if group:
        yield group


def _merged(conn: Connection, copies: list[Any]) -> dict[str, Any]:
    """The latest copy of a batch with the earlier copies' suggestions it does not carry.

    A suggestion is its ticket as registered (number and registration time): a store
    restored from an older copy gives a lost ticket's number to a new one, and the lost
    customer's suggestion is another than the new one's. One carried by the latest copy
    counts once, as that copy classed it; one the city sent again in a later batch of
    another number (it was unsent in the restored copy) counts there, not here too."""
    batch = _batch(copies[0])
    held = {_suggestion_key(s) for s in batch["suggestions"]}
    if len(copies) > 1:
        held |= _sent_again(conn, copies[0].city_code, copies[0].subject, copies[-1].seq)
    for r in copies[1:]:
        earlier = _batch(r)
        batch["suggestions"] += [
            s for s in earlier["suggestions"] if _suggestion_key(s) not in held
        ]
        held |= {_suggestion_key(s) for s in earlier["suggestions"]}
        batch["earlier_seqs"].append(earlier["seq"])
    return batch


def _suggestion_key(item: Mapping[str, Any]) -> tuple[str, str | None]:
    return item["ticket_id"], item["received_at"]


def _sent_again(conn: Connection, city_code: str, subject: str, after_seq: int) -> set[Any]:
    """The suggestions ``city_code`` sent in batches of other numbers after ``after_seq``
    (the earliest copy of the batch ``subject``). Read only for a batch that came more than
    once, which only a restored city sends."""
    rows = conn.execute(
        select(Record.city_code, Record.seq, Record.received_at, Record.body).where(
            Record.city_code == city_code,
            Record.kind == "suggestion_batch",
            Record.status == "accepted",
            Record.seq > after_seq,
            Record.subject != subject,
        )
    )
    return {_suggestion_key(s) for r in rows for s in _batch(r)["suggestions"]}


def _batch(r: Any) -> dict[str, Any]:
    """One record's batch with all its suggestions."""
    batch = pb.SuggestionBatch.FromString(r.body)
    items = []
    for s in batch.suggestions:
        items.append(
            {
                "ticket_id": s.ticket_id,
                # A suggestion carries no customer: a phone-like number a clerk typed into
                # the class or the customer into the text is masked for every reader (a city
                # masks them before sending; one that did not is not passed on).
                "category": mask_text(s.category),
                # A city sends the clerk's class and the code ("装机 / SVC.INSTALL"): the
                # code counts.
                "category_code": code_of(s.category),
                "content": mask_text(s.content),
                "received_at": (
                    iso(s.received_at.ToDatetime(UTC)) if s.HasField("received_at") else None
                ),
            }
        )
    return {
        "city_code": r.city_code,
        "seq": r.seq,
        "batch_date": batch.batch_date,
        "batch_number": batch.batch_number,
        "classified_by": batch.classified_by,
        "received_at": iso(r.received_at),
        "suggestions": items,
        "earlier_seqs": [],
    }
