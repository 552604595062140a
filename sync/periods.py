"""Reporting periods (day, week Mon–Sun, month, quarter, year) cut in the federation's zone."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sync.pb.fedsync.v1 import federation_pb2 as pb

DEFAULT_TIMEZONE = "Asia/Shanghai"


class PeriodError(ValueError):
    """A period that does not exist or is not aligned to its kind."""


def period_start_for(kind: int, day: date) -> date:
    """The first day of the period of ``kind`` that contains ``day``."""
    if kind == pb.DAY:
        return day
    if kind == pb.WEEK:
        return day - timedelta(days=day.weekday())
    if kind == pb.MONTH:
        return day.replace(day=1)
    if kind == pb.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if kind == pb.YEAR:
        return date(day.year, 1, 1)
    raise PeriodError(f"unknown period kind {kind}")


def period_end(kind: int, start: date) -> date:
    """The first day after the period (exclusive end)."""
    if kind == pb.DAY:
        return start + timedelta(days=1)
    if kind == pb.WEEK:
        return start + timedelta(days=7)
    months = {int(pb.MONTH): 1, int(pb.QUARTER): 3, int(pb.YEAR): 12}.get(kind)
    if months is None:
        raise PeriodError(f"unknown period kind {kind}")
    month_index = start.month - 1 + months
    return date(start.year + month_index // 12, month_index % 12 + 1, 1)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def is_iso_date(text: str) -> bool:
    """Whether ``text`` is spelled ``YYYY-MM-DD`` (four, two and two digits)."""
    return _ISO_DATE.fullmatch(text) is not None


def iso_date(text: str) -> date:
    """``YYYY-MM-DD`` and nothing else, or ValueError. ``date.fromisoformat`` alone also
    takes ``20261101`` and ``2026-W44-7`` (Python 3.11), which would pass the wire's date
    fields in a second spelling of the same day."""
    if not is_iso_date(text):
        raise ValueError(f"{text!r} is not a YYYY-MM-DD date")
    return date.fromisoformat(text)


def parse_period(period: pb.Period) -> tuple[int, date]:
    """Check a wire period and return (kind, start); PeriodError says what is wrong."""
    if period.kind not in (pb.DAY, pb.WEEK, pb.MONTH, pb.QUARTER, pb.YEAR):
        raise PeriodError(f"period.kind {period.kind} is not a known period kind")
    try:
        start = iso_date(period.start)
    except ValueError as exc:
        raise PeriodError(f"period.start {period.start!r} is not a YYYY-MM-DD date") from exc
    if period_start_for(period.kind, start) != start:
        name = pb.PeriodKind.Name(period.kind)
        raise PeriodError(f"period.start {period.start} is not the first day of a {name} period")
    return period.kind, start


def today_in(tz_name: str, now: datetime | None = None) -> date:
    moment = now or datetime.now(tz=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(tz_name)).date()
