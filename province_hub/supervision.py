"""Use cases of the supervisor web that are not figures: which suggestion batches are new
to the materials managers, and marking them seen; the default period a page opens on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, select, tuple_

from province_hub import audit
from province_hub.audit import Action
from province_hub.consolidation import FiguresError, period_ref, suggestion_batches
from province_hub.figures import PERIOD_CODES
from province_hub.store import Record, SuggestionSeen
from sync.db import UnitOfWork, insert_ignore
from sync.periods import period_start_for


def last_complete_start(kind: str, today: date) -> date:
    """The first day of the latest period of ``kind`` that has ended by ``today``: the one
    whose report is due (the current one is still being worked)."""
    current = period_start_for(PERIOD_CODES[kind], today)
    return period_ref(kind, current).previous().start


def suggestions_with_seen(
    engine: Engine,
    *,
    city_code: str | None = None,
    category: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Suggestion batches (see :func:`suggestion_batches`), each with ``new``: no materials
    manager has marked it seen yet."""
    batches = suggestion_batches(
        engine,
        city_code=city_code,
        category=category,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
    )
    keys = [(b["city_code"], b["seq"]) for b in batches]
    seen: set[tuple[str, int]] = set()
    if keys:
        with engine.connect() as conn:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                seen |= {
                    (r.city_code, r.seq)
                    for r in conn.execute(
                        select(SuggestionSeen.city_code, SuggestionSeen.seq).where(
                            tuple_(SuggestionSeen.city_code, SuggestionSeen.seq).in_(part)
                        )
                    )
                }
    for b in batches:
        b["new"] = (b["city_code"], b["seq"]) not in seen
    return batches


def mark_suggestions_seen(
    engine: Engine,
    *,
    batches: Iterable[tuple[str, int]],
    seen_by: str,
    role: str = "",
    address: str = "",
) -> int:
    """Mark batches seen (idempotent: the first viewer and time are kept); return how
    many were new. Audited (SUGGESTIONS_SEEN) in the same transaction.

    Every key must be an accepted suggestion batch the hub holds: otherwise
    :class:`FiguresError` names ``batches`` (and the keys it does not know), and nothing is
    marked or audited."""
    keys = list(dict.fromkeys(batches))
    if not keys:
        raise FiguresError("figures.batches_none", parameter="batches")
    with UnitOfWork(engine) as uow:
        known = {
            (r.city_code, r.seq)
            for r in uow.conn.execute(
                select(Record.city_code, Record.seq).where(
                    Record.kind == "suggestion_batch",
                    Record.status == "accepted",
                    tuple_(Record.city_code, Record.seq).in_(keys),
                )
            )
        }
        unknown = [f"{c}:{s}" for c, s in keys if (c, s) not in known]
        if unknown:
            shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
            raise FiguresError(
                "figures.batches_unknown", parameter="batches", count=len(unknown), shown=shown
            )
        held = {
            (r.city_code, r.seq)
            for r in uow.conn.execute(
                select(SuggestionSeen.city_code, SuggestionSeen.seq).where(
                    tuple_(SuggestionSeen.city_code, SuggestionSeen.seq).in_(keys)
                )
            )
        }
        rows = [
            {"city_code": c, "seq": s, "seen_by": seen_by, "seen_at": datetime.now(UTC)}
            for c, s in keys
            if (c, s) not in held
        ]
        if rows:
            # A second manager marking at the same moment: the first row stands.
            insert_ignore(uow.conn, cast(Table, SuggestionSeen.__table__), rows)
        audit.record(
            uow.conn,
            actor=seen_by,
            role=role,
            action=Action.SUGGESTIONS_SEEN,
            target="suggestions",
            detail=f"{len(keys)} batches, {len(rows)} new",
            address=address,
        )
        uow.commit()
    return len(rows)
