"""sync.zones.in_zone: instants told in the federation's zone, other text left alone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sync.zones import in_zone

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_instants_under_time_keys_move_to_the_zone_and_nothing_else_changes() -> None:
    given = {
        "received_at": "2026-12-05T02:00:00+00:00",
        "rows": [{"at": "2026-12-05T02:00:00Z", "deadline": "2026-12-05T12:00:00+08:00"}],
        "last_contact": None,
        "content": "2026-12-05T02:00:00+00:00",  # a customer's words stay as written
        "created_at": datetime(2026, 12, 5, 2, 0, tzinfo=UTC),
        "closed_at": datetime(2026, 12, 5, 2, 0),  # naive: UTC, as SQLite hands it back
        "count": 3,
    }
    shown = in_zone(given, SHANGHAI)
    assert shown == {
        "received_at": "2026-12-05T10:00:00+08:00",
        "rows": [{"at": "2026-12-05T10:00:00+08:00", "deadline": "2026-12-05T12:00:00+08:00"}],
        "last_contact": None,
        "content": "2026-12-05T02:00:00+00:00",
        "created_at": datetime(2026, 12, 5, 10, 0, tzinfo=SHANGHAI),
        "closed_at": datetime(2026, 12, 5, 10, 0, tzinfo=SHANGHAI),
        "count": 3,
    }
    assert shown["created_at"].utcoffset() == SHANGHAI.utcoffset(datetime(2026, 12, 5))
    assert given["received_at"] == "2026-12-05T02:00:00+00:00"  # a copy: the input is kept
