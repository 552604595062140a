"""Report deadlines, timeliness and the REMINDER routine (docs/domain.md: the calendar).

A **deadline rule** is set per period kind in the hub's settings and applies to every report
kind due for that period (statistics, QA, overtime):

- ``"Nd HH:MM"`` — at HH:MM on the N-th calendar day after the period's last day
  (``0d 10:00``: 10:00 the day after a day; for a week, Monday 12:00 is ``0d 12:00``);
- ``"Nwd"`` — by the end of the N-th working day after the period (``3wd``: the 3rd working
  day of the next month, counted on the federation's holiday calendar —
  :class:`sync.calendar.WorkCalendar`, the same rules the cities use); ``"Nwd HH:MM"`` — at
  HH:MM on that day instead.

A city's report of a period is **on time** when its first accepted revision reached the hub
by the deadline, **late** when after it, **missing** when none has arrived and the deadline
has passed, **pending** before that; and, when the hub has a go-live day
(``reminders_from``), **before go-live** when none arrived and the deadline passed before
that day (owed before the federation existed: neither missing nor reminded). Corrections
(later revisions) do not change it; a quarantined record is not a report received. Report
timeliness = on time / (on time + late + missing).

The reminder routine sends one REMINDER notice per city, report and period that is overdue
(missing after its deadline), at most once: a claim row (``report_reminders``, primary key
city + report + period) is written in the transaction that creates the notice, and on
PostgreSQL the routine first takes a transaction-level advisory lock with *try* semantics,
so of several hub replicas ticking at once one does the work and the others skip the tick.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text

from province_hub.figures import (
    PERIOD_CODES,
    OvertimeFigures,
    QaFigures,
    ReportReminder,
    StatisticsFigures,
    kpi,
)
from province_hub.services import HUB_SENDER, create_notice
from sync.calendar import WorkCalendar
from sync.db import UnitOfWork
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import period_end, period_start_for
from sync.roster import City
from sync.vocabulary import ReportKind

REPORT_MODELS: dict[str, Any] = {
    ReportKind.STATISTICS: StatisticsFigures,
    ReportKind.QA: QaFigures,
    ReportKind.OVERTIME: OvertimeFigures,
}
#: Arbitrary constant naming "fedsync report reminders" for pg_try_advisory_xact_lock.
_PG_LOCK_KEY = 0x6665_6472_656D_6E64
_RULE = re.compile(r"^\s*(\d{1,3})\s*(d|wd)(?:\s+(\d{1,2}):(\d{2}))?\s*$")


class DeadlineRuleError(ValueError):
    """A deadline rule or due-reports setting that cannot be read; the message says which."""


@dataclass(frozen=True)
class DeadlineRule:
    count: int
    working_days: bool
    at: time | None  # None with working days: the end of that day

    @classmethod
    def parse(cls, value: str, *, name: str) -> DeadlineRule:
        match = _RULE.match(value)
        if match is None:
            raise DeadlineRuleError(
                f"{name} {value!r}: use 'Nd HH:MM' (calendar days after the period) or "
                "'Nwd' / 'Nwd HH:MM' (the N-th working day after it)"
            )
        count, unit, hour, minute = match.groups()
        at = None
        if hour is not None:
            if int(hour) > 23 or int(minute) > 59:
                raise DeadlineRuleError(f"{name} {value!r}: {hour}:{minute} is not a time of day")
            at = time(int(hour), int(minute))
        if unit == "d" and at is None:
            raise DeadlineRuleError(f"{name} {value!r}: a calendar-day rule needs HH:MM")
        if unit == "wd" and int(count) < 1:
            raise DeadlineRuleError(f"{name} {value!r}: working days count from 1")
        return cls(int(count), unit == "wd", at)

    def deadline(self, after: date, calendar: WorkCalendar) -> datetime:
        """The deadline of a period whose first day after is ``after`` (UTC, aware)."""
        zone = calendar.zone
        if not self.working_days:
            assert self.at is not None
            local = datetime.combine(after + timedelta(days=self.count), self.at, tzinfo=zone)
            return local.astimezone(UTC)
        day = after if calendar.is_workday(after) else calendar.next_workday(after)
        for _ in range(self.count - 1):
            day = calendar.next_workday(day)
        if self.at is None:  # by the end of that working day
            local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        else:
            local = datetime.combine(day, self.at, tzinfo=zone)
        return local.astimezone(UTC)


@dataclass(frozen=True)
class Deadlines:
    """The hub's deadline rules, what each city owes, and the calendar they count on."""

    rules: Mapping[str, DeadlineRule]
    due: Mapping[str, tuple[str, ...]]  # report kind → period kinds
    calendar: WorkCalendar
    #: The go-live day (``reminders_from``): a report whose deadline passed before it and
    #: that never arrived was owed before the federation existed — not missing, not counted.
    live_from: date | None = None

    @classmethod
    def from_settings(
        cls,
        *,
        rules: Mapping[str, str],
        due: str,
        calendar: WorkCalendar,
        live_from: date | None = None,
    ) -> Deadlines:
        parsed = {
            kind: DeadlineRule.parse(rules[kind], name=f"report_due_{kind}")
            for kind in PERIOD_CODES
        }
        return cls(parsed, parse_due(due), calendar, live_from)

    def before_live(self, deadline: datetime) -> bool:
        """Whether ``deadline`` passed before the go-live day began (in the hub's zone)."""
        if self.live_from is None:
            return False
        return deadline < datetime.combine(self.live_from, time(0), self.calendar.zone)

    def deadline(self, period_kind: str, start: date) -> datetime:
        end = period_end(PERIOD_CODES[period_kind], start)
        return self.rules[period_kind].deadline(end, self.calendar)


def parse_due(value: str) -> dict[str, tuple[str, ...]]:
    """``"statistics:day,week;qa:month"`` → {"statistics": ("day", "week"), "qa": ("month",)}."""
    out: dict[str, tuple[str, ...]] = {}
    for part in filter(None, (p.strip() for p in value.split(";"))):
        report, sep, periods = part.partition(":")
        report = report.strip()
        if not sep or report not in REPORT_MODELS:
            raise DeadlineRuleError(
                f"due_reports {part!r}: use REPORT:PERIOD,... with REPORT one of "
                f"{', '.join(REPORT_MODELS)}"
            )
        kinds = tuple(p.strip() for p in periods.split(",") if p.strip())
        unknown = [k for k in kinds if k not in PERIOD_CODES]
        if unknown or not kinds:
            raise DeadlineRuleError(
                f"due_reports {part!r}: periods must be of {', '.join(PERIOD_CODES)}"
            )
        out[report] = kinds
    return out


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _first_received(
    conn: Connection, report: str, period_kind: str, starts: Sequence[date]
) -> dict[tuple[str, date], tuple[datetime, int]]:
    """(city, start) → when its first accepted revision arrived, and its latest revision."""
    model = REPORT_MODELS[report]
    rows = conn.execute(
        select(
            model.city_code,
            model.period_start,
            func.min(model.received_at),
            func.max(model.revision),
        )
        .where(model.period_kind == period_kind, model.period_start.in_(starts))
        .group_by(model.city_code, model.period_start)
    ).all()
    return {(r[0], r[1]): (_aware(r[2]), r[3]) for r in rows}


def _status(received: datetime | None, deadline: datetime, now: datetime, before_live: bool) -> str:
    if received is not None:
        return "on_time" if received <= deadline else "late"
    if before_live:
        return "before_go_live"
    return "missing" if now > deadline else "pending"


#: The statuses a report owed for a period may have; the KPI's denominator is the first
#: three (a report not yet due, or owed before the go-live day and never sent, is not
#: counted).
STATUSES = ("on_time", "late", "missing", "pending", "before_go_live")


def period_timeliness(
    engine: Engine,
    *,
    deadlines: Deadlines,
    period_kind: str,
    start: date,
    roster: Sequence[City],
    now: datetime,
) -> dict[str, Any]:
    """For one period: per roster city and report owed, on time / late / missing / pending,
    with the deadline and when it arrived; and the timeliness KPI per city and overall."""
    return timeliness_series(
        engine,
        deadlines=deadlines,
        period_kind=period_kind,
        starts=[start],
        roster=roster,
        now=now,
    )[0]


def timeliness_series(
    engine: Engine,
    *,
    deadlines: Deadlines,
    period_kind: str,
    starts: Sequence[date],
    roster: Sequence[City],
    now: datetime,
) -> list[dict[str, Any]]:
    """:func:`period_timeliness` of each period of ``starts``, in that order, from one read
    per report kind (a trend judges 12 months or 30 days at once)."""
    reports = [r for r, kinds in deadlines.due.items() if period_kind in kinds]
    with engine.connect() as conn:
        got = {r: _first_received(conn, r, period_kind, starts) for r in reports}
    judged = []
    for start in starts:
        deadline = deadlines.deadline(period_kind, start)
        live = deadlines.before_live(deadline)
        judged.append(_judged(got, reports, period_kind, start, deadline, live, roster, now))
    return judged


def _judged(
    got: Mapping[str, Mapping[tuple[str, date], tuple[datetime, int]]],
    reports: Sequence[str],
    period_kind: str,
    start: date,
    deadline: datetime,
    before_live: bool,
    roster: Sequence[City],
    now: datetime,
) -> dict[str, Any]:
    rows = []
    totals = dict.fromkeys(STATUSES, 0)
    per_city: dict[str, dict[str, int]] = {}
    for city in roster:
        counts = per_city.setdefault(city.code, {"on_time": 0, "due": 0})
        for report in reports:
            received = got[report].get((city.code, start))
            status = _status(received[0] if received else None, deadline, now, before_live)
            totals[status] += 1
            counts["on_time"] += status == "on_time"
            counts["due"] += status in ("on_time", "late", "missing")
            rows.append(
                {
                    "city_code": city.code,
                    "report": report,
                    "period_kind": period_kind,
                    "period_start": start.isoformat(),
                    "deadline": deadline.isoformat(),
                    "received_at": received[0].isoformat() if received else None,
                    "revision": received[1] if received else None,
                    "status": status,
                }
            )
    due = totals["on_time"] + totals["late"] + totals["missing"]
    return {
        "period": {"kind": period_kind, "start": start.isoformat()},
        "deadline": deadline.isoformat(),
        "rows": rows,
        "totals": totals,
        "kpis": {
            "report_timeliness": kpi(totals["on_time"], due),
            "by_city": {code: kpi(c["on_time"], c["due"]) for code, c in per_city.items()},
        },
    }


@dataclass(frozen=True)
class Overdue:
    city_code: str
    report: str
    period_kind: str
    period_start: date
    deadline: datetime


def _recent_periods(
    deadlines: Deadlines, period_kind: str, now: datetime, lookback: timedelta
) -> list[tuple[date, datetime]]:
    """Periods of ``period_kind`` whose deadline fell within (now - lookback, now], and not
    before the hub's go-live day (``Deadlines.live_from``) when it has one."""
    code = PERIOD_CODES[period_kind]
    today = now.astimezone(deadlines.calendar.zone).date()
    start = period_start_for(code, today)
    floor = now - lookback
    out = []
    # Walk back from the running period: deadlines of successive periods increase, so the
    # first one older than the look-back (or the go-live day) ends the walk.
    for _ in range(400):
        deadline = deadlines.deadline(period_kind, start)
        if deadline <= floor or deadlines.before_live(deadline):
            break
        if deadline <= now:
            out.append((start, deadline))
        start = period_start_for(code, start - timedelta(days=1))
    return out


def overdue_reports(
    conn: Connection,
    *,
    deadlines: Deadlines,
    roster_codes: Sequence[str],
    now: datetime,
    lookback: timedelta,
) -> list[Overdue]:
    """Reports owed whose deadline passed within the look-back (and not before the go-live
    day) and that have not arrived."""
    out: list[Overdue] = []
    for report, kinds in deadlines.due.items():
        for period_kind in kinds:
            periods = _recent_periods(deadlines, period_kind, now, lookback)
            if not periods:
                continue
            got = _first_received(conn, report, period_kind, [s for s, _ in periods])
            for start, deadline in periods:
                out.extend(
                    Overdue(code, report, period_kind, start, deadline)
                    for code in roster_codes
                    if (code, start) not in got
                )
    return out


_PERIOD_WORDS = {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly"}


def send_reminders(
    engine: Engine,
    *,
    deadlines: Deadlines,
    roster_codes: Sequence[str],
    now: datetime | None = None,
    lookback: timedelta = timedelta(days=35),
) -> list[Overdue]:
    """Send a REMINDER to each city for each overdue report not reminded yet; what was sent.
    No deadline before the go-live day (``deadlines.live_from``) is reminded: a new
    deployment does not remind the cities of what they owed before the federation existed.

    One transaction: the notices, their deliveries and the claim rows commit together, so
    a crash never leaves a reminder unclaimed or a claim without its reminder.
    """
    moment = now or datetime.now(UTC)
    sent: list[Overdue] = []
    with UnitOfWork(engine) as uow:
        conn = uow.conn
        if conn.dialect.name == "postgresql":
            got_lock = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY}
            ).scalar_one()
            if not got_lock:
                return []  # another replica is running this tick
        overdue = overdue_reports(
            conn,
            deadlines=deadlines,
            roster_codes=roster_codes,
            now=moment,
            lookback=lookback,
        )
        claimed = _claimed(conn, overdue)
        for item in overdue:
            key = (item.city_code, item.report, item.period_kind, item.period_start)
            if key in claimed:
                continue
            notice = _reminder(item)
            seq = create_notice(conn, notice=notice, targets=[item.city_code], moment=moment)
            # A plain insert, not insert-or-ignore: should two runners ever overlap, the
            # second one's claim violates the primary key and its whole transaction (its
            # notices too) rolls back, instead of a reminder going out twice.
            conn.execute(
                insert(ReportReminder).values(
                    city_code=item.city_code,
                    report_kind=item.report,
                    period_kind=item.period_kind,
                    period_start=item.period_start,
                    notice_seq=seq,
                    sent_at=moment,
                )
            )
            sent.append(item)
        uow.commit()
    return sent


def _claimed(conn: Connection, overdue: Iterable[Overdue]) -> set[tuple[str, str, str, date]]:
    cities = sorted({o.city_code for o in overdue})
    if not cities:
        return set()
    rows = conn.execute(
        select(
            ReportReminder.city_code,
            ReportReminder.report_kind,
            ReportReminder.period_kind,
            ReportReminder.period_start,
        ).where(ReportReminder.city_code.in_(cities))
    ).all()
    return {(r[0], r[1], r[2], r[3]) for r in rows}


def _reminder(item: Overdue) -> pb.Notice:
    # What it is about travels as data too (schema 1.5): a city titles it in its language.
    about = pb.ReportReminder(
        report_kind=f"{item.report}_report",
        period=pb.Period(
            kind=pb.PeriodKind.Value(item.period_kind.upper()),
            start=item.period_start.isoformat(),
        ),
    )
    about.due_by.FromDatetime(item.deadline.astimezone(UTC))
    what = f"{_PERIOD_WORDS.get(item.period_kind, 'yearly')} {item.report} report"
    return pb.Notice(
        kind=pb.REMINDER,
        priority=pb.HIGH,
        title=f"Overdue: {what} for {item.period_kind} {item.period_start.isoformat()}",
        body=(
            f"The province has not received your {what} for the {item.period_kind} starting "
            f"{item.period_start.isoformat()}; it was due by {item.deadline.isoformat()}. "
            "Please approve and send it."
        ),
        sender=HUB_SENDER,
        targets=[item.city_code],
        report_reminder=about,
    )


def reminders_sent(engine: Engine) -> list[dict[str, Any]]:
    """Every reminder the hub has sent, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(ReportReminder).order_by(ReportReminder.sent_at.desc())
        ).scalars()
        return [
            {
                "city_code": r.city_code,
                "report": r.report_kind,
                "period_kind": r.period_kind,
                "period_start": r.period_start.isoformat(),
                "notice_seq": r.notice_seq,
                "sent_at": _aware(r.sent_at).isoformat(),
            }
            for r in rows
        ]
