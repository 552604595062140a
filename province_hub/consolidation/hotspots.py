"""Enquiry hot-spots and early warning: categories against the last period, the province
and their own recent baseline."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine

from province_hub.consolidation.core import FiguresError, decoded_slices, headers, period_ref
from province_hub.figures import StatisticsFigures
from sync.roster import City

#: (city, start) → category → count
_Counts = dict[tuple[str, date], dict[str, int]]


def _category_counts(
    conn: Connection,
    kind: str,
    starts: Sequence[date],
    codes: Sequence[str],
    fields: Sequence[str],
) -> tuple[dict[str, _Counts], set[tuple[str, date]]]:
    """Per field: (city, start) → category → that count, from the latest revisions (each
    revision's slices read and decoded once for every field); and which (city, start)
    reported at all."""
    heads = headers(conn, StatisticsFigures, kind, starts, codes, body=True)
    out: dict[str, _Counts] = {field: defaultdict(dict) for field in fields}
    for key, head in heads.items():
        for row in decoded_slices(head.city_code, head.seq, head.body):
            if row.dimension == "category":
                for field in fields:
                    out[field][key][row.key] = getattr(row, field)
    return out, set(heads)


def enquiry_hotspots(
    engine: Engine,
    *,
    period_kind: str,
    start: date | str,
    roster: Sequence[City],
    min_enquiries: int = 1,
) -> dict[str, Any]:
    """Enquiry categories rising per city: this period vs the last, and the category's share
    of the city's enquiries vs its share in the province. Rows where the count rose, the
    biggest rise first; cities missing either period are not compared (and are listed)."""
    p = period_ref(period_kind, start)
    last = p.previous()
    codes = [c.code for c in roster]
    with engine.connect() as conn:
        by_field, reported = _category_counts(
            conn, p.kind, [p.start, last.start], codes, ["enquiries"]
        )
    counts = by_field["enquiries"]
    province_now: dict[str, int] = defaultdict(int)
    for code in codes:
        for key, n in counts.get((code, p.start), {}).items():
            province_now[key] += n
    province_total = sum(province_now.values())
    rows: list[dict[str, Any]] = []
    not_compared = []
    for code in codes:
        if (code, p.start) not in reported or (code, last.start) not in reported:
            not_compared.append(code)
            continue
        now_counts = counts.get((code, p.start), {})
        before = counts.get((code, last.start), {})
        city_total = sum(now_counts.values())
        for key, n in now_counts.items():
            previous = before.get(key, 0)
            if n < min_enquiries or n <= previous:
                continue
            share = n / city_total if city_total else None
            province_share = province_now[key] / province_total if province_total else None
            rows.append(
                {
                    "city_code": code,
                    "category": key,
                    "enquiries": n,
                    "previous": previous,
                    "change": n - previous,
                    "change_rate": (n - previous) / previous if previous else None,
                    "share": share,
                    "province_share": province_share,
                    "share_vs_province": (
                        share / province_share if share is not None and province_share else None
                    ),
                }
            )
    rows.sort(key=lambda r: (-r["change"], r["city_code"], r["category"]))
    return {
        "period": p.as_dict(),
        "previous_period": last.as_dict(),
        "rows": rows,
        "not_compared": not_compared,
    }


def early_warnings(
    engine: Engine,
    *,
    period_kind: str = "week",
    start: date | str,
    roster: Sequence[City],
    baseline_periods: int = 8,
    min_baseline_periods: int = 4,
    ratio: float = 2.0,
    min_excess: int = 5,
) -> dict[str, Any]:
    """City + category whose complaints or enquiries run well above their own baseline: the
    mean of the city's reported previous ``baseline_periods`` periods (missing periods are
    left out of the mean, not counted as zero). Flagged when the count is at least
    ``ratio`` × the mean and at least ``min_excess`` above it, with at least
    ``min_baseline_periods`` periods behind the mean. Every flag carries its numbers."""
    if baseline_periods < 1 or min_baseline_periods < 1 or ratio <= 0 or min_excess < 0:
        raise FiguresError("figures.thresholds", parameter="baseline")
    p = period_ref(period_kind, start)
    periods = p.back(baseline_periods + 1)
    base_starts = [x.start for x in periods[:-1]]
    codes = [c.code for c in roster]
    flags: list[dict[str, Any]] = []
    measures = ("complaints", "enquiries")
    with engine.connect() as conn:
        by_field, reported = _category_counts(
            conn, p.kind, [x.start for x in periods], codes, measures
        )
    for field in measures:
        counts = by_field[field]
        for code in codes:
            if (code, p.start) not in reported:
                continue
            history_starts = [s for s in base_starts if (code, s) in reported]
            if len(history_starts) < min_baseline_periods:
                continue
            for key, n in counts.get((code, p.start), {}).items():
                values = [counts.get((code, s), {}).get(key, 0) for s in history_starts]
                mean = sum(values) / len(values)
                threshold = max(ratio * mean, mean + min_excess)
                if n >= threshold and n > 0:
                    flags.append(
                        {
                            "city_code": code,
                            "category": key,
                            "measure": field,
                            "count": n,
                            "baseline_mean": mean,
                            "baseline": dict(
                                zip([s.isoformat() for s in history_starts], values, strict=True)
                            ),
                            "ratio": n / mean if mean else None,
                            "threshold": threshold,
                        }
                    )
    flags.sort(key=lambda f: (-(f["count"] - f["baseline_mean"]), f["city_code"], f["category"]))
    return {
        "period": p.as_dict(),
        "rule": {
            "baseline_periods": baseline_periods,
            "min_baseline_periods": min_baseline_periods,
            "ratio": ratio,
            "min_excess": min_excess,
        },
        "flags": flags,
    }
