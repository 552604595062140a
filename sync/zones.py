"""How a person is told which clock a time is on: "北京时间 UTC+8" / "Beijing time (UTC+8)".

Every time a person reads (console, CLI, ``hub status``) is shown in the federation's zone
(mission.md), and says so, named in the reader's language.
"""

from __future__ import annotations

from datetime import UTC, datetime
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
