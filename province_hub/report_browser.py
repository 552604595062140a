"""The report browser: every revision a city sent for a period, and what changed between
two of them. Reads the figure tables only (every revision is kept there, not just the
latest the consolidated figures count)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select

from province_hub.consolidation import FiguresError, period_ref
from province_hub.figures import (
    SATISFACTION_COUNTS,
    STAT_COUNTS,
    StatisticsFigures,
    StatisticsSlice,
)

#: The counts a revision shows and a diff compares, in the proto's order.
FIELDS = (*STAT_COUNTS, *SATISFACTION_COUNTS)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def report_revisions(
    engine: Engine,
    *,
    city_code: str,
    period_kind: str,
    start: date | str,
    roster_codes: tuple[str, ...],
) -> dict[str, Any]:
    """Every statistics revision of one city and period, oldest first, each with its counts
    and slices; ``latest`` marks the one the consolidated figures count."""
    if city_code not in roster_codes:
        raise FiguresError(f"city {city_code!r} is not on the roster", parameter="city")
    p = period_ref(period_kind, start)
    with engine.connect() as conn:
        heads = conn.execute(
            select(StatisticsFigures)
            .where(
                StatisticsFigures.city_code == city_code,
                StatisticsFigures.period_kind == p.kind,
                StatisticsFigures.period_start == p.start,
            )
            .order_by(StatisticsFigures.revision, StatisticsFigures.seq)
        ).all()
        seqs = [h.seq for h in heads]
        slices = (
            conn.execute(
                select(StatisticsSlice)
                .where(StatisticsSlice.city_code == city_code, StatisticsSlice.seq.in_(seqs))
                .order_by(StatisticsSlice.seq, StatisticsSlice.n)
            ).all()
            if seqs
            else []
        )
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for s in slices:
        by_seq.setdefault(s.seq, []).append(
            {
                "dimension": s.dimension,
                "key": s.key,
                "complaints": s.complaints,
                "enquiries": s.enquiries,
                "suggestions": s.suggestions,
            }
        )
    revisions = [
        {
            "revision": h.revision,
            "seq": h.seq,
            "received_at": _iso(h.received_at),
            "approved_by": h.approved_by,
            "counts": {f: getattr(h, f) for f in FIELDS},
            "slices": by_seq.get(h.seq, []),
            "latest": i == len(heads) - 1,
        }
        for i, h in enumerate(heads)
    ]
    return {"city_code": city_code, "period": p.as_dict(), "revisions": revisions}


def diff_revisions(older: dict[str, Any], newer: dict[str, Any]) -> list[dict[str, Any]]:
    """The counts that differ between two revisions (as :func:`report_revisions` gives
    them): field, old value, new value, change."""
    out = []
    for f in FIELDS:
        a, b = older["counts"][f], newer["counts"][f]
        if a != b:
            out.append({"field": f, "old": a, "new": b, "change": b - a})
    return out
