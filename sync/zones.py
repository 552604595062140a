"""How a person is told which clock a time is on: "北京时间 UTC+8" / "Beijing time (UTC+8)".

Every time a person reads (console, CLI, ``hub status``) is shown in the federation's zone
(docs/domain.md), and says so, named in the reader's language.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

#: Zones with a name people use for them: zone -> (Chinese, English).
_NAMES: dict[str, tuple[str, str]] = {
    "Asia/Shanghai": ("北京时间", "Beijing time"),
    "Asia/Chongqing": ("北京时间", "Beijing time"),
    "Asia/Urumqi": ("新疆时间", "Xinjiang time"),
    "Asia/Hong_Kong": ("香港时间", "Hong Kong time"),
    "UTC": ("协调世界时", "UTC"),
}


def utc_offset(tz_name: str, moment: datetime | None = None) -> str:
    """``UTC+8``, ``UTC-3:30``, ``UTC`` for the zone's offset at ``moment`` (default now)."""
    offset = (moment or datetime.now(UTC)).astimezone(ZoneInfo(tz_name)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_label(tz_name: str, lang: str = "en", moment: datetime | None = None) -> str:
    """The zone as a person reads it: ``北京时间 UTC+8`` (zh), ``Beijing time (UTC+8)`` (en);
    a zone without a common name shows its IANA name."""
    offset = utc_offset(tz_name, moment)
    zh, en = _NAMES.get(tz_name, (tz_name, tz_name))
    if tz_name == "UTC":
        return "UTC"
    return f"{zh} {offset}" if lang == "zh" else f"{en} ({offset})"


def local_time(moment: datetime | None, tz_name: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``moment`` on the zone's clock ('' for None; a naive value is taken as UTC)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(tz_name)).strftime(fmt)


_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


def _is_time_key(key: Any) -> bool:
    return isinstance(key, str) and (
        key in ("at", "deadline", "last_contact") or key.endswith("_at")
    )


def in_zone(value: Any, zone: tzinfo, *, time_key: bool = False) -> Any:
    """``value`` with every instant in it told in the federation's zone,
    ``2026-12-05T10:00:00+08:00``: an aware ``datetime`` (naive ones are UTC, as SQLite hands
    them back), or the ISO text of one, with its offset, under a time's key (``…_at``, ``at``,
    ``deadline``, ``last_contact``; text elsewhere may be what a customer wrote, and is left
    alone). The hub's web and CLI show times on one clock, whatever the store or a service
    returned (UTC, mostly). A copy: the services' answers may be cached and are never
    changed."""
    if isinstance(value, str):
        if time_key and _INSTANT.fullmatch(value):
            return datetime.fromisoformat(value).astimezone(zone).isoformat()
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(zone)
    if isinstance(value, dict):
        # Numbers, None and text under other keys (most of a figures answer: counts and
        # slices) are kept as they are without a call each: the walk runs on every request.
        return {
            k: v
            if type(v) in _AS_IS or (type(v) is str and not _is_time_key(k))
            else in_zone(v, zone, time_key=_is_time_key(k))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [v if type(v) in _AS_IS else in_zone(v, zone, time_key=time_key) for v in value]
    return value


#: Values no instant hides in (exact types: a bool is an int, a datetime is not a date here).
_AS_IS = frozenset({int, float, bool, type(None)})
