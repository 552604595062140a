from __future__ import annotations

from datetime import UTC, datetime

from sync.zones import local_time, utc_offset, zone_label


def test_zone_is_named_in_the_readers_language() -> None:
    assert zone_label("Asia/Shanghai", "zh") == "北京时间 UTC+8"
    assert zone_label("Asia/Shanghai", "en") == "Beijing time (UTC+8)"
    assert zone_label("America/St_Johns", "en", datetime(2026, 1, 5, tzinfo=UTC)) == (
        "America/St_Johns (UTC-3:30)"
    )
    assert utc_offset("UTC") == "UTC"


def test_local_time_takes_naive_values_as_utc() -> None:
    naive = datetime(2026, 11, 27, 16, 0)
    assert local_time(naive, "Asia/Shanghai") == "2026-11-28 00:00"
    assert local_time(None, "Asia/Shanghai") == ""
