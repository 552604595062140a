"""Working-day arithmetic for ticket time limits (工作日时限) and report deadlines.

Complaint time limits are counted in *working days* of the federation's zone: Saturdays and
Sundays are off unless the State Council's schedule makes them adjusted working days (调休上班),
and public holidays are off even on a weekday. The holiday list is configuration — it changes
every year — so the calendar takes it as data rather than knowing it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sync.periods import iso_date

DEFAULT_TZ = "Asia/Shanghai"
_SATURDAY = 5  # date.weekday(): Monday is 0


def _require_aware(name: str, value: datetime) -> None:
    # A naive time would silently be read in the host's zone; deadlines must not depend on
    # where the node happens to run.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


class WorkCalendar:
    """Which local dates are working days, and deadlines counted in them.

    ``holidays`` are off even on a weekday; ``extra_workdays`` are weekend dates worked
    instead (China's adjusted working weekends). A date in both is treated as a holiday:
    being off is the safer reading for a customer-facing deadline.
    """

    def __init__(
        self,
        holidays: frozenset[date] = frozenset(),
        extra_workdays: frozenset[date] = frozenset(),
        tz_name: str = DEFAULT_TZ,
    ) -> None:
        self.holidays = frozenset(holidays)
        self.extra_workdays = frozenset(extra_workdays)
        self.tz_name = tz_name
        self.zone = ZoneInfo(tz_name)

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(holidays={len(self.holidays)} dates, "
            f"extra_workdays={len(self.extra_workdays)} dates, tz_name={self.tz_name!r})"
        )

    def is_workday(self, d: date) -> bool:
        """True when the local date ``d`` is a working day."""
        if isinstance(d, datetime):
            # A datetime is a date subclass; judge it by its local date, not its UTC one.
            _require_aware("d", d)
            d = d.astimezone(self.zone).date()
        if d in self.holidays:
            return False
        if d in self.extra_workdays:
            return True
        return d.weekday() < _SATURDAY

    def next_workday(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        d += timedelta(days=1)
        while not self.is_workday(d):
            d += timedelta(days=1)
        return d

    def add_workdays(self, start: datetime, days: int) -> datetime:
        """The deadline ``days`` working days after ``start``, as a local aware datetime.

        The result has ``start``'s local time of day on the ``days``-th working day after
        ``start``'s local date. A ticket registered on a non-working day is treated as
        registered at 00:00 local on the next working day (the clock only runs on working
        days), so a Saturday ticket with 1 day is due Tuesday 00:00 in a plain week.
        ``days=0`` returns that (possibly moved) start.
        """
        _require_aware("start", start)
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days}")
        local = start.astimezone(self.zone)
        day = local.date()
        clock = local.timetz().replace(tzinfo=None)
        if not self.is_workday(day):
            day = self.next_workday(day)
            clock = time(0, 0)
        for _ in range(days):
            day = self.next_workday(day)
        return datetime.combine(day, clock, tzinfo=self.zone)

    def workdays_between(self, a: datetime, b: datetime) -> int:
        """Working days in the local dates after ``a``'s and up to ``b``'s (negative if b < a).

        This is the inverse of :meth:`add_workdays` for a start on a working day:
        ``workdays_between(s, add_workdays(s, n)) == n``.
        """
        _require_aware("a", a)
        _require_aware("b", b)
        first = a.astimezone(self.zone).date()
        last = b.astimezone(self.zone).date()
        if last < first:
            return -self._count_after(last, first)
        return self._count_after(first, last)

    def _count_after(self, first: date, last: date) -> int:
        # Day-by-day is fine: ticket spans are days to weeks, and holidays make a closed
        # form error-prone.
        count = 0
        d = first
        while d < last:
            d += timedelta(days=1)
            if self.is_workday(d):
                count += 1
        return count


def load_holidays(path: Path) -> tuple[frozenset[date], frozenset[date]]:
    """Read a holiday file: ``YYYY-MM-DD`` per line is a holiday, ``work YYYY-MM-DD`` an
    adjusted working day; blank lines and ``#`` comments are ignored.

    Returns (holidays, extra working days); a bad line raises ValueError naming it.
    """
    holidays: set[date] = set()
    extra: set[date] = set()
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read holidays {path}: {exc.strerror}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        target = holidays
        if len(words) == 2 and words[0] == "work":
            target, words = extra, words[1:]
        try:
            if len(words) != 1:
                raise ValueError
            target.add(iso_date(words[0]))
        except ValueError:
            raise ValueError(
                f"{path} line {number}: {raw.strip()!r} is not 'YYYY-MM-DD' or 'work YYYY-MM-DD'"
            ) from None
    return frozenset(holidays), frozenset(extra)
