"""Late and missing reports: deadlines on the holiday calendar, on time / late / missing per
city and period, the timeliness KPI, and the REMINDER routine — once per report and period,
and once in all even when two hub replicas run it at the same moment on one database."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from province_hub import services
from province_hub.deadlines import (
    DeadlineRule,
    Deadlines,
    overdue_reports,
    period_timeliness,
    send_reminders,
)
from province_hub.settings import HubSettings
from province_hub.store import Notice, create_schema
from sync.calendar import WorkCalendar
from sync.config import ConfigError
from sync.db import make_engine
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.roster import load_roster
from tests.conftest import wait_until

ZONE = ZoneInfo("Asia/Shanghai")
ROSTER = load_roster()[:3]
A, B, C = (c.code for c in ROSTER)
# National Day 2026 as a holiday file states it: 1-8 October off, Saturday 10 October worked.
HOLIDAYS = frozenset(date(2026, 10, d) for d in range(1, 9))
WORKED = frozenset({date(2026, 10, 10)})
ONLY_STATISTICS = "statistics:day,week,month,quarter,year"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE)


def deadlines(due: str = ONLY_STATISTICS) -> Deadlines:
    return Deadlines.from_settings(
        rules={
            "day": "0d 10:00",
            "week": "0d 12:00",
            "month": "3wd",
            "quarter": "5wd",
            "year": "5wd",
        },
        due=due,
        calendar=WorkCalendar(HOLIDAYS, WORKED, tz_name="Asia/Shanghai"),
    )


def test_default_deadlines_fall_on_the_calendar() -> None:
    d = deadlines()
    assert d.deadline("day", date(2026, 11, 26)) == local(2026, 11, 27, 10, 0)
    assert d.deadline("week", date(2026, 11, 16)) == local(2026, 11, 23, 12, 0)  # Monday
    # November: 1, 2, 3 December are working days: due by the end of the 3rd.
    assert d.deadline("month", date(2026, 11, 1)) == local(2026, 12, 4, 0, 0)
    # September: the holiday week is skipped, the worked Saturday counts (9, 10, 12 Oct).
    assert d.deadline("month", date(2026, 9, 1)) == local(2026, 10, 13, 0, 0)
    # Third quarter, 5th working day: 9, 10, 12, 13, 14 October.
    assert d.deadline("quarter", date(2026, 7, 1)) == local(2026, 10, 15, 0, 0)
    # The year 2026: 1 January 2027 is a Friday (not a holiday in this file): 1, 4, 5, 6, 7.
    assert d.deadline("year", date(2026, 1, 1)) == local(2027, 1, 8, 0, 0)
    # The same calendar class the cities count ticket limits on.
    assert d.calendar.is_workday(date(2026, 10, 10)) and not d.calendar.is_workday(
        date(2026, 10, 5)
    )
    timed = DeadlineRule.parse("2wd 18:00", name="report_due_month")
    assert timed.deadline(date(2026, 10, 1), d.calendar) == local(2026, 10, 10, 18, 0)


def test_bad_deadline_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="report_due_month"):
        HubSettings(report_due_month="3 days")
    with pytest.raises(ConfigError, match="due_reports"):
        HubSettings(due_reports="statistics:fortnight")
    with pytest.raises(ConfigError, match="report_due_day"):
        HubSettings(report_due_day="1d")  # a calendar-day rule needs its time


def test_holidays_file_setting_feeds_the_calendar(tmp_path: Path) -> None:
    path = tmp_path / "holidays.txt"
    path.write_text(
        "# National Day\n" + "".join(f"2026-10-0{d}\n" for d in range(1, 9)) + "work 2026-10-10\n"
    )
    d = HubSettings(holidays_file=path).deadlines()
    assert d.deadline("month", date(2026, 9, 1)) == local(2026, 10, 13, 0, 0)
    with pytest.raises(ConfigError, match="holidays_file"):
        HubSettings(holidays_file=tmp_path / "nope.txt").deadlines()


def stats(kind: pb.PeriodKind.ValueType, start: str, revision: int = 1) -> pb.StatisticsReport:
    return pb.StatisticsReport(
        period=pb.Period(kind=kind, start=start), revision=revision, approved_by="leader-1"
    )


class Hub:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seq: dict[str, int] = {}

    def push(self, city: str, body: Any, at: datetime) -> None:
        self.seq[city] = self.seq.get(city, 0) + 1
        envelope = build_envelope(
            city_code=city, epoch="e" * 32, seq=self.seq[city], body=body, created_at=at
        )
        services.ingest_batch(
            self.engine,
            city_code=city,
            envelopes=[envelope],
            tz_name="Asia/Shanghai",
            max_batch=10,
            now=at,
        )

    def reminders(self) -> list[tuple[str, str]]:
        out = []
        for city in (A, B, C):
            for blob in services.notices_after(self.engine, city_code=city, after_seq=0):
                notice = pb.Notice.FromString(blob)
                if notice.kind == pb.REMINDER:
                    out.append((city, notice.title))
        return sorted(out)


@pytest.fixture
def hub(databases: Any) -> Any:
    engine = make_engine(databases("deadlines"))
    create_schema(engine)
    yield Hub(engine)
    engine.dispose()


def test_on_time_late_missing_and_the_timeliness_kpi(hub: Hub) -> None:
    d = deadlines()
    week = date(2026, 11, 16)  # due Monday 23 November 12:00
    hub.push(A, stats(pb.WEEK, "2026-11-16"), local(2026, 11, 23, 11, 59))
    hub.push(B, stats(pb.WEEK, "2026-11-16"), local(2026, 11, 23, 12, 1))
    # A's correction after the deadline does not make its report late.
    hub.push(A, stats(pb.WEEK, "2026-11-16", revision=2), local(2026, 11, 24, 9, 0))
    before = period_timeliness(
        hub.engine,
        deadlines=d,
        period_kind="week",
        start=week,
        roster=ROSTER,
        now=local(2026, 11, 23, 11, 0),
    )
    assert [r["status"] for r in before["rows"]] == ["on_time", "late", "pending"]
    assert before["kpis"]["report_timeliness"] == {"numerator": 1, "denominator": 2, "rate": 0.5}
    after = period_timeliness(
        hub.engine,
        deadlines=d,
        period_kind="week",
        start=week,
        roster=ROSTER,
        now=local(2026, 11, 30, 0, 0),
    )
    rows = {r["city_code"]: r for r in after["rows"]}
    assert rows[A]["status"] == "on_time" and rows[A]["revision"] == 2
    assert rows[B]["status"] == "late"
    assert rows[C] == {**rows[C], "status": "missing", "received_at": None, "revision": None}
    assert after["totals"] == {
        "on_time": 1,
        "late": 1,
        "missing": 1,
        "pending": 0,
        "before_go_live": 0,
    }
    assert after["kpis"]["report_timeliness"]["rate"] == pytest.approx(1 / 3)
    assert after["kpis"]["by_city"][C] == {"numerator": 0, "denominator": 1, "rate": 0.0}
    # A quarantined report is not a report received.
    bad = stats(pb.WEEK, "2026-11-23")
    bad.closed_in_time = 1  # more closed in time than closed
    hub.push(C, bad, local(2026, 11, 30, 9, 0))
    later = period_timeliness(
        hub.engine,
        deadlines=d,
        period_kind="week",
        start=date(2026, 11, 23),
        roster=ROSTER,
        now=local(2026, 12, 1),
    )
    assert {r["city_code"]: r["status"] for r in later["rows"]}[C] == "missing"


def test_timeliness_is_a_trend_and_a_ranked_kpi(hub: Hub) -> None:
    """Report timeliness over periods (the trend) and across cities (the comparison's ranks):
    each period judged on its own deadline; a city that sent nothing is ranked on it (it owed
    the report), not on the KPIs its missing report would have carried."""
    from province_hub import consolidation

    d = deadlines(due="statistics:week")
    # Week of 9 Nov (due 16 Nov 12:00): A, B on time, C late. Week of 16 Nov (due 23 Nov
    # 12:00): A on time, B late, C missing. Week of 23 Nov: not due yet at ``now``; only A's
    # report, in already, is judged (on time).
    hub.push(A, stats(pb.WEEK, "2026-11-09"), local(2026, 11, 16, 9, 0))
    hub.push(B, stats(pb.WEEK, "2026-11-09"), local(2026, 11, 16, 11, 0))
    hub.push(C, stats(pb.WEEK, "2026-11-09"), local(2026, 11, 17, 9, 0))
    hub.push(A, stats(pb.WEEK, "2026-11-16"), local(2026, 11, 23, 9, 0))
    hub.push(B, stats(pb.WEEK, "2026-11-16"), local(2026, 11, 24, 9, 0))
    hub.push(A, stats(pb.WEEK, "2026-11-23"), local(2026, 11, 29, 9, 0))
    now = local(2026, 11, 29, 12, 0)
    trend = consolidation.trend(
        hub.engine,
        kpi_name="report_timeliness",
        period_kind="week",
        last_start="2026-11-23",
        count=3,
        roster=ROSTER,
        cities=[A, C],
        deadlines=d,
        now=now,
    )
    assert trend["periods"] == ["2026-11-09", "2026-11-16", "2026-11-23"]
    province = [
        (p["numerator"], p["denominator"], p["cities_reporting"]) for p in trend["province"]
    ]
    assert province == [(2, 3, 3), (1, 3, 3), (1, 1, 1)]
    assert [v and v["rate"] for v in trend["cities"][A]] == [1.0, 1.0, 1.0]
    assert [v and v["rate"] for v in trend["cities"][C]] == [0.0, 0.0, None]
    # Each point is the period's own judgement.
    for start, point in zip(trend["periods"], trend["province"], strict=True):
        one = period_timeliness(
            hub.engine,
            deadlines=d,
            period_kind="week",
            start=date.fromisoformat(start),
            roster=ROSTER,
            now=now,
        )
        assert one["kpis"]["report_timeliness"] == {
            k: point[k] for k in ("numerator", "denominator", "rate")
        }

    def ranked(start: str) -> dict[str, dict[str, int]]:
        """Each city's ranks on the comparison of that week, its figures judged on ``d``."""
        current = consolidation.figures(
            hub.engine,
            period_kind="week",
            start=start,
            roster=ROSTER,
            deadlines=d,
            now=now,
            slices=False,
        )
        compared = consolidation.comparison(
            hub.engine, period_kind="week", start=start, roster=ROSTER, current=current
        )
        return {r["city_code"]: r["ranks"] for r in compared["rows"]}

    ranks = ranked("2026-11-16")
    assert {code: r.get("report_timeliness") for code, r in ranks.items()} == {A: 1, B: 2, C: 2}
    assert "in_time_closure_rate" not in ranks[C]  # missing: ranked on timeliness alone
    # Not due yet: only the city whose report is in is ranked on it.
    pending = ranked("2026-11-23")
    assert {code: r.get("report_timeliness") for code, r in pending.items()} == {
        A: 1,
        B: None,
        C: None,
    }


def test_an_overdue_report_is_reminded_once(hub: Hub) -> None:
    d = deadlines(due="statistics:week;qa:month")
    hub.push(A, stats(pb.WEEK, "2026-11-16"), local(2026, 11, 23, 9, 0))
    lookback = timedelta(days=5)
    # Before Monday noon nothing is overdue.
    assert (
        send_reminders(
            hub.engine,
            deadlines=d,
            roster_codes=[A, B, C],
            now=local(2026, 11, 23, 11, 0),
            lookback=lookback,
        )
        == []
    )
    sent = send_reminders(
        hub.engine,
        deadlines=d,
        roster_codes=[A, B, C],
        now=local(2026, 11, 23, 12, 30),
        lookback=lookback,
    )
    assert sorted((s.city_code, s.report, s.period_start) for s in sent) == [
        (B, "statistics", date(2026, 11, 16)),
        (C, "statistics", date(2026, 11, 16)),
    ]
    assert hub.reminders() == [
        (B, "Overdue: weekly statistics report for week 2026-11-16"),
        (C, "Overdue: weekly statistics report for week 2026-11-16"),
    ]
    # What it is about travels as data as well (schema 1.5), for the city to name it.
    [about] = {
        pb.Notice.FromString(blob).report_reminder.SerializeToString(deterministic=True)
        for blob in services.notices_after(hub.engine, city_code=B, after_seq=0)
    }
    reminder = pb.ReportReminder.FromString(about)
    assert (reminder.report_kind, reminder.period.kind, reminder.period.start) == (
        "statistics_report",
        pb.WEEK,
        "2026-11-16",
    )
    assert reminder.due_by.ToDatetime(UTC) == local(2026, 11, 23, 12, 0).astimezone(UTC)
    # Later ticks: B sends late; nothing is reminded twice.
    hub.push(B, stats(pb.WEEK, "2026-11-16"), local(2026, 11, 24, 9, 0))
    for hours in (1, 5, 30):
        assert (
            send_reminders(
                hub.engine,
                deadlines=d,
                roster_codes=[A, B, C],
                now=local(2026, 11, 23, 12, 30) + timedelta(hours=hours),
                lookback=lookback,
            )
            == []
        )
    assert len(hub.reminders()) == 2
    # The next deadline: November's QA report (3rd working day of December) and the week of
    # 23 November; each city gets its own reminders.
    sent = send_reminders(
        hub.engine,
        deadlines=d,
        roster_codes=[A, B, C],
        now=local(2026, 12, 4, 8, 0),
        lookback=lookback,
    )
    assert sorted((s.city_code, s.report) for s in sent) == sorted(
        [(c, "statistics") for c in (A, B, C)] + [(c, "qa") for c in (A, B, C)]
    )
    assert len(hub.reminders()) == 8


def test_no_reminder_of_a_deadline_before_the_go_live_day(hub: Hub) -> None:
    """A new deployment (``--reminders-from``) does not remind the cities of every report
    owed in the look-back before the federation existed: only deadlines from that day on."""
    d = deadlines(due="statistics:day,week")
    now = local(2026, 11, 25, 12, 30)
    lookback = timedelta(days=35)
    owed = overdue_reports_of(hub, d, now, lookback)
    assert len(owed) > 3 * 2  # weeks and days of the look-back, for each of three cities
    live = Deadlines(d.rules, d.due, d.calendar, live_from=date(2026, 11, 24))
    sent = send_reminders(
        hub.engine, deadlines=live, roster_codes=[A, B, C], now=now, lookback=lookback
    )
    # Deadlines on or after 24 November 00:00: the days of the 23rd (due the 24th 10:00) and
    # the 24th (due the 25th 10:00); the week of 16 November was due the 23rd, before it.
    assert sorted({(s.period_kind, s.period_start) for s in sent}) == [
        ("day", date(2026, 11, 23)),
        ("day", date(2026, 11, 24)),
    ]
    assert {s.city_code for s in sent} == {A, B, C}
    assert len(sent) == len(hub.reminders()) == 6


def test_a_report_owed_before_the_go_live_day_is_not_counted_missing(hub: Hub) -> None:
    """Timeliness of a period whose deadline passed before the federation went live: a
    report that never came was not owed to it (neither missing nor in the KPI), while one a
    city sent (its history, uploaded later) still counts as it arrived."""
    d = deadlines()
    live = Deadlines(d.rules, d.due, d.calendar, live_from=date(2026, 11, 24))
    week = date(2026, 11, 16)  # due Monday 23 November 12:00: before the go-live day
    hub.push(B, stats(pb.WEEK, "2026-11-16"), local(2026, 11, 24, 9, 0))
    without, with_live = (
        period_timeliness(
            hub.engine,
            deadlines=setting,
            period_kind="week",
            start=week,
            roster=ROSTER,
            now=local(2026, 11, 30),
        )
        for setting in (d, live)
    )
    assert [r["status"] for r in without["rows"]] == ["missing", "late", "missing"]
    assert without["kpis"]["report_timeliness"] == {"numerator": 0, "denominator": 3, "rate": 0.0}
    assert [r["status"] for r in with_live["rows"]] == ["before_go_live", "late", "before_go_live"]
    assert with_live["kpis"]["report_timeliness"] == {
        "numerator": 0,
        "denominator": 1,
        "rate": 0.0,
    }
    assert with_live["kpis"]["by_city"][A] == {"numerator": 0, "denominator": 0, "rate": None}
    # The week after: due 30 November 12:00, after the go-live day: missing as ever.
    next_week = period_timeliness(
        hub.engine,
        deadlines=live,
        period_kind="week",
        start=date(2026, 11, 23),
        roster=ROSTER,
        now=local(2026, 12, 1),
    )
    assert [r["status"] for r in next_week["rows"]] == ["missing"] * 3
    # The setting feeds it: the hub's deadlines carry the go-live day.
    assert HubSettings(reminders_from="2026-11-24").deadlines().live_from == date(2026, 11, 24)
    assert HubSettings().deadlines().live_from is None


def overdue_reports_of(hub: Hub, d: Deadlines, now: datetime, lookback: timedelta) -> list[Any]:
    with hub.engine.connect() as conn:
        return overdue_reports(
            conn, deadlines=d, roster_codes=[A, B, C], now=now, lookback=lookback
        )


def test_the_go_live_day_must_be_a_day() -> None:
    for bad in ("2026-13-01", "20261101", "tomorrow", "2026-11-01T00:00"):
        with pytest.raises(ConfigError, match="reminders_from"):
            HubSettings(reminders_from=bad)
    assert HubSettings(reminders_from="2026-11-24").reminders_since == date(2026, 11, 24)
    assert HubSettings().reminders_since is None


def test_two_replicas_send_each_reminder_once(databases: Any) -> None:
    url = databases("replicas")
    replicas = [make_engine(url), make_engine(url)]
    create_schema(replicas[0])
    d = deadlines(due="statistics:day,week;qa:month;overtime:month")
    codes = [c.code for c in load_roster()]
    start = local(2026, 11, 2, 12, 0)
    totals: list[int] = []
    try:
        for tick in range(6):  # six ticks, both replicas at the same moment each time
            moment = start + timedelta(days=tick * 4)
            barrier = threading.Barrier(2)
            results: list[Any] = [None, None]

            def run(
                i: int, moment: datetime = moment, barrier: Any = barrier, results: Any = results
            ) -> None:
                barrier.wait()
                try:
                    results[i] = len(
                        send_reminders(
                            replicas[i],
                            deadlines=d,
                            roster_codes=codes,
                            now=moment,
                            lookback=timedelta(days=5),
                        )
                    )
                except Exception as exc:  # shown below
                    results[i] = exc

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert all(isinstance(r, int) for r in results), results
            totals.append(sum(results))
        with replicas[0].connect() as conn:
            notices = conn.execute(select(func.count()).select_from(Notice)).scalar_one()
            titles = conn.execute(select(Notice.title, Notice.targets)).all()
        assert notices == sum(totals) > 14 * 8  # a day and more per city and tick
        assert len(set(titles)) == len(titles)  # no reminder twice for one city and period
    finally:
        for engine in replicas:
            engine.dispose()


async def test_the_hub_process_runs_the_reminder_routine(
    databases: Any, hub_settings_factory: Any, start_hub: Any
) -> None:
    url = databases("routine")
    hub = await start_hub(hub_settings_factory(url, reminder_minutes=0.005))
    assert hub.scheduler is not None and hub.scheduler.running

    def reminders() -> int:
        with hub.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(Notice).where(Notice.kind == "REMINDER")
                ).scalar_one()
            )

    # Nothing was ever sent to this hub: every city owes yesterday's daily report at least.
    count = await wait_until(reminders, timeout=30, what="the routine's reminders")
    assert count >= len(hub.roster_codes)
    await hub.stop(grace=0.5)
    assert not hub.scheduler.running


def test_the_figures_say_why_a_city_has_no_report(hub: Hub) -> None:
    """A city without a report of the period reads missing only when it owed one: not yet
    due, or owed before the go-live day, it says so (the table of figures said 缺报)."""
    from province_hub.consolidation.period_figures import figures
    from province_hub.web.tables import figures_table

    d = deadlines()
    live = Deadlines(d.rules, d.due, d.calendar, live_from=date(2026, 11, 24))
    hub.push(B, stats(pb.WEEK, "2026-11-16"), local(2026, 11, 22, 9, 0))
    shown: dict[Any, dict[str, Any]] = {}
    for week, now in (
        (date(2026, 11, 16), local(2026, 11, 30)),
        (date(2026, 11, 30), local(2026, 12, 1)),
    ):
        data = figures(
            hub.engine, period_kind="week", start=week, roster=ROSTER, deadlines=live, now=now
        )
        shown[week] = {c["city_code"]: c.get("report_status") for c in data["cities"]}
        table = figures_table(data, "zh")
        shown[week, "zh"] = {r["city_code"]: r["status"] for r in table.rows if r["city_code"]}
    assert shown[date(2026, 11, 16)] == {A: "before_go_live", B: "on_time", C: "before_go_live"}
    assert shown[date(2026, 11, 16), "zh"] == {A: "上线前（不计）", B: "已报", C: "上线前（不计）"}
    assert shown[date(2026, 11, 30)] == {A: "pending", B: "pending", C: "pending"}
    assert set(shown[date(2026, 11, 30), "zh"].values()) == {"未到期"}
    # Owed after the go-live day and not sent: missing.
    data = figures(
        hub.engine,
        period_kind="week",
        start=date(2026, 11, 23),
        roster=ROSTER,
        deadlines=live,
        now=local(2026, 12, 1),
    )
    assert {r["status"] for r in figures_table(data, "en").rows if r["city_code"]} == {"missing"}
