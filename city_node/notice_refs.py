"""Short references people can say and write for province notices: ``N-20261127-3``, the
third notice this city got from the province that day (the day the province issued it, in
the federation's zone). The wire seq — a millisecond-clock number near 1.8e12 — stays the
key in the store and in receipts; a person never has to read it out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from city_node.store import InboxNotice


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def notice_refs(engine: Engine, notices: Sequence[Any], zone: ZoneInfo) -> dict[int, str]:
    """notice seq -> its short reference, for the notices listed (counted over every notice
    of their days in the inbox, not just those shown)."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for n in notices:
        created = n.created_at if n.created_at.tzinfo else n.created_at.replace(tzinfo=UTC)
        by_day[created.astimezone(zone).date()].append(int(n.notice_seq))
    refs: dict[int, str] = {}
    with engine.connect() as conn:
        for day, seqs in by_day.items():
            start, end = _day_bounds(day, zone)
            first = min(seqs)
            before = conn.execute(
                select(func.count()).where(
                    InboxNotice.created_at >= start,
                    InboxNotice.created_at < end,
                    InboxNotice.notice_seq < first,
                )
            ).scalar_one()
            for index, seq in enumerate(sorted(seqs), start=int(before) + 1):
                refs[seq] = f"N-{day:%Y%m%d}-{index}"
    return refs
