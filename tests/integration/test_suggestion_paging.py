"""Suggestion batches page by ``limit`` and ``offset`` in their order (newest batch date
first), with and without a category, on SQLite and PostgreSQL through the real ingest."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from province_hub import services
from province_hub.consolidation.records import suggestion_batches
from province_hub.store import create_schema
from sync.db import make_engine
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES

FIRST_DAY = date(2026, 10, 1)


def _fill(engine: Any) -> None:
    """Three cities, eight days each; every third batch also holds a NET suggestion."""
    for c, city in enumerate(ROSTER_CODES[:3]):
        envelopes = []
        for n in range(8):
            items = [pb.Suggestion(ticket_id=f"{city}-{n}", category="BILL", content="账单")]
            if (n + c) % 3 == 0:
                items.append(
                    pb.Suggestion(ticket_id=f"{city}-{n}n", category="NET.5G", content="信号")
                )
            batch = pb.SuggestionBatch(
                batch_date=(FIRST_DAY + timedelta(days=n)).isoformat(),
                batch_number=1,
                suggestions=items,
            )
            envelopes.append(build_envelope(city_code=city, epoch="e" * 32, seq=n + 1, body=batch))
        result = services.ingest_batch(
            engine, city_code=city, envelopes=envelopes, tz_name="Asia/Shanghai", max_batch=50
        )
        assert result.accepted == 8


def _keys(batches: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(b["city_code"], b["seq"]) for b in batches]


def test_pages_follow_each_other_without_gap_or_repeat(databases: Any) -> None:
    engine = make_engine(databases("hub"))
    try:
        create_schema(engine)
        _fill(engine)
        for category, total in ((None, 24), ("NET", 8)):
            everything = _keys(suggestion_batches(engine, category=category, limit=1000))
            assert len(everything) == total and len(set(everything)) == total
            pages = []
            for offset in range(0, total + 5, 5):
                page = suggestion_batches(engine, category=category, limit=5, offset=offset)
                pages += _keys(page)
                assert len(page) == min(5, max(0, total - offset))
            assert pages == everything, category
            # Newest batch date first.
            dates = [
                b["batch_date"] for b in suggestion_batches(engine, category=category, limit=1000)
            ]
            assert dates == sorted(dates, reverse=True)
    finally:
        engine.dispose()
