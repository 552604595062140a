"""Working-day calendar: weekends, holidays, adjusted working weekends, zone handling."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_node.calendar import WorkCalendar

SH = ZoneInfo("Asia/Shanghai")

# Labour Day 2024 as the State Council scheduled it: 1–5 May off, Sunday 28 April and
# Saturday 11 May worked instead.
LABOUR_DAY = frozenset(date(2024, 5, d) for d in range(1, 6))
ADJUSTED = frozenset({date(2024, 4, 28), date(2024, 5, 11)})
CAL = WorkCalendar(holidays=LABOUR_DAY, extra_workdays=ADJUSTED)

# No on-disk example database: tests must not leave files in the checkout.
PROPERTY = settings(database=None, max_examples=300, deadline=None)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def test_plain_week() -> None:
    plain = WorkCalendar()
    assert plain.is_workday(date(2024, 6, 7))  # Friday
    assert not plain.is_workday(date(2024, 6, 8))  # Saturday
    assert not plain.is_workday(date(2024, 6, 9))  # Sunday
    assert plain.is_workday(date(2024, 6, 10))  # Monday


def test_holiday_and_adjusted_weekend() -> None:
    assert not CAL.is_workday(date(2024, 5, 1))  # Wednesday, but a holiday
    assert CAL.is_workday(date(2024, 4, 28))  # Sunday, worked
    assert CAL.is_workday(date(2024, 5, 11))  # Saturday, worked
    assert not CAL.is_workday(date(2024, 5, 4))  # Saturday inside the holiday


def test_deadline_skips_the_holiday() -> None:
    # Tuesday 30 April 10:00 + 1 workday: 1–5 May are off, so Monday 6 May 10:00.
    assert CAL.add_workdays(at(2024, 4, 30, 10), 1) == at(2024, 5, 6, 10)


def test_deadline_lands_on_the_adjusted_saturday() -> None:
    # 6,7,8,9,10 May then the worked Saturday 11 May.
    assert CAL.add_workdays(at(2024, 4, 30, 10), 6) == at(2024, 5, 11, 10)


def test_deadline_across_a_plain_weekend() -> None:
    plain = WorkCalendar()
    # Friday 7 June 2024 16:30 + 1 workday = Monday 10 June 16:30; + 5 = Friday 14 June.
    assert plain.add_workdays(at(2024, 6, 7, 16, 30), 1) == at(2024, 6, 10, 16, 30)
    assert plain.add_workdays(at(2024, 6, 7, 16, 30), 5) == at(2024, 6, 14, 16, 30)


def test_registered_on_a_weekend_counts_from_next_workday_midnight() -> None:
    plain = WorkCalendar()
    # Saturday 8 June 15:00: the clock starts Monday 10 June 00:00, so +1 is Tuesday 00:00.
    assert plain.add_workdays(at(2024, 6, 8, 15), 1) == at(2024, 6, 11)
    assert plain.add_workdays(at(2024, 6, 8, 15), 0) == at(2024, 6, 10)


def test_local_date_not_utc_date_decides() -> None:
    # Friday 26 April 17:00 UTC is Saturday 27 April 01:00 in Shanghai (a day off); the next
    # workday is the adjusted Sunday 28 April, so +1 is Monday 29 April 00:00 local.
    start = datetime(2024, 4, 26, 17, 0, tzinfo=UTC)
    result = CAL.add_workdays(start, 1)
    assert result == at(2024, 4, 29)
    assert result.tzinfo == SH


def test_workdays_between_examples() -> None:
    assert CAL.workdays_between(at(2024, 4, 30, 10), at(2024, 5, 6, 9)) == 1
    assert CAL.workdays_between(at(2024, 4, 30), at(2024, 5, 11)) == 6
    assert CAL.workdays_between(at(2024, 5, 11), at(2024, 4, 30)) == -6
    assert CAL.workdays_between(at(2024, 5, 6, 1), at(2024, 5, 6, 23)) == 0


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^start must"):
        CAL.add_workdays(datetime(2024, 5, 6, 10), 1)


def test_naive_between_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^b must"):
        CAL.workdays_between(at(2024, 5, 6), datetime(2024, 5, 7))
    with pytest.raises(ValueError, match=r"^a must"):
        CAL.workdays_between(datetime(2024, 5, 6), at(2024, 5, 7))


def test_negative_days_rejected() -> None:
    with pytest.raises(ValueError, match="days"):
        CAL.add_workdays(at(2024, 5, 6), -1)


starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(SH)
)
utc_starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
)
days_st = st.integers(min_value=0, max_value=40)


@PROPERTY
@given(start=st.one_of(starts, utc_starts), n=days_st)
def test_deadline_is_always_a_workday(start: datetime, n: int) -> None:
    assert CAL.is_workday(CAL.add_workdays(start, n).date())


@PROPERTY
@given(start=st.one_of(starts, utc_starts), n=days_st)
def test_between_inverts_add_on_workdays(start: datetime, n: int) -> None:
    if not CAL.is_workday(start.astimezone(SH).date()):
        start = CAL.add_workdays(start, 0)  # the next workday's 00:00
    assert CAL.workdays_between(start, CAL.add_workdays(start, n)) == n


@PROPERTY
@given(start=starts, n=st.integers(min_value=1, max_value=40))
def test_deadline_keeps_time_of_day_on_workdays_and_moves_forward(start: datetime, n: int) -> None:
    deadline = CAL.add_workdays(start, n)
    assert deadline > start
    assert deadline - start >= timedelta(days=n)
    if CAL.is_workday(start.date()):
        assert deadline.timetz().replace(tzinfo=None) == start.timetz().replace(tzinfo=None)
    assert CAL.add_workdays(start, n + 1) > deadline


def test_a_holiday_file_takes_each_day_as_yyyy_mm_dd_only(tmp_path: Path) -> None:
    from sync.calendar import load_holidays

    good = tmp_path / "good.txt"
    good.write_text("2026-10-01  # 国庆\nwork 2026-10-10\n", encoding="utf-8")
    assert load_holidays(good) == (frozenset({date(2026, 10, 1)}), frozenset({date(2026, 10, 10)}))
    for line in ("20261001", "2026-W40-4", "work 20261010"):
        bad = tmp_path / "bad.txt"
        bad.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match=r"line 1: .* is not 'YYYY-MM-DD'"):
            load_holidays(bad)
