"""A city's working rules come from its settings: holidays, categories, repeat window,
auto-approval and the QA share; bad files are refused naming the line."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from city_node.app import context_for
from city_node.calendar import load_holidays
from city_node.settings import CitySettings
from sync.config import ConfigError
from sync.db import make_engine


def test_holiday_file_with_adjusted_working_days(tmp_path: Path) -> None:
    path = tmp_path / "holidays.txt"
    path.write_text("# National Day 2026\n2026-10-01\n2026-10-02  # Friday\nwork 2026-10-10\n\n")
    holidays, extra = load_holidays(path)
    assert holidays == {date(2026, 10, 1), date(2026, 10, 2)}
    assert extra == {date(2026, 10, 10)}


@pytest.mark.parametrize("line", ["2026-13-01", "work", "holiday 2026-10-01", "1 2"])
def test_a_bad_holiday_line_is_named(tmp_path: Path, line: str) -> None:
    path = tmp_path / "holidays.txt"
    path.write_text(f"2026-10-01\n{line}\n")
    with pytest.raises(ValueError, match="line 2"):
        load_holidays(path)


def test_the_context_follows_the_settings(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.txt"
    holidays.write_text("2026-10-01\nwork 2026-10-10\n")
    categories = tmp_path / "categories.csv"
    categories.write_text(
        "code,parent,name_zh,name_en,complaint_limit_workdays\nWATER,,水费,Water bill,4\n"
    )
    settings = CitySettings(
        code="620100",
        database_url=f"sqlite:///{tmp_path / 'c.sqlite'}",
        holidays_file=holidays,
        categories_file=categories,
        repeat_window_days=14,
        auto_approve=True,
        qa_sample_rate=0.2,
    )
    ctx = context_for(settings, make_engine(settings.database_url))
    assert not ctx.calendar.is_workday(date(2026, 10, 1))
    assert ctx.calendar.is_workday(date(2026, 10, 10))  # a Saturday worked
    assert [c.code for c in ctx.categories] == ["WATER"]
    assert (ctx.repeat_window_days, ctx.auto_approve, ctx.qa_sample_rate) == (14, True, 0.2)
    assert ctx.today(datetime(2026, 10, 1, 20, tzinfo=ZoneInfo("UTC"))) == date(2026, 10, 2)


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="qa_sample_rate"):
        CitySettings(code="620100", qa_sample_rate=0)
    with pytest.raises(ConfigError, match="repeat_window_days"):
        CitySettings(code="620100", repeat_window_days=0)
    # The link's and the console's seconds: a negative or NaN one would spin or crash a loop.
    for name in ("backoff_initial", "backoff_max", "heartbeat_seconds", "http_busy_timeout"):
        for bad in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ConfigError, match=f"^{name} .*above 0"):
                values: dict[str, Any] = {name: bad}
                CitySettings(code="620100", **values)
    with pytest.raises(ConfigError, match=r"backoff_max 0\.1 is below backoff_initial 0\.5"):
        CitySettings(code="620100", backoff_max=0.1)
    with pytest.raises(ConfigError, match="retention_days -1"):
        CitySettings(code="620100", retention_days=-1)
    missing = CitySettings(code="620100", holidays_file=tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match=r"nope\.txt"):
        context_for(missing, make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}"))


def test_a_code_off_the_roster_is_refused_before_a_store_is_made(tmp_path: Path) -> None:
    """No certificate is issued for a code the province lacks and the hub refuses it: a
    store made under it (``city migrate``, ``staff add``) could never be linked."""
    from sync.cli import main

    store = tmp_path / "city.sqlite"
    with pytest.raises(ConfigError, match="'999999' is not on the roster"):
        CitySettings(code="999999")
    assert (
        main(["city", "--code", "999999", "--database-url", f"sqlite:///{store}", "migrate"]) == 2
    )
    assert not store.exists()
    # Another province's roster names its own cities.
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "code,name_zh,name_en,kind,population_2020\n999999,测试市,Test City,city,1000\n", "utf-8"
    )
    assert CitySettings(code="999999", roster=roster).code == "999999"
    with pytest.raises(ConfigError, match="'620100' is not on the roster"):
        CitySettings(code="620100", roster=roster)
