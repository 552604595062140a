"""Month statistics report over a large city store: seed N tickets, time ``build_statistics``.

    python -m benchmarks.city_reports --engine sqlite|postgresql [--tickets N] [--runs 3]
                                      [--reuse] [--json]

What it does:

1. **Seed (not measured).** A city store (``city_node.store.create_schema``, Alembic, and
   ``city_node.services.open_store`` for city 620100) is filled with N tickets (default
   2,000,000) spread over the 24 complete months before the current one (Asia/Shanghai):
   weekdays busier than weekends, office hours busier than nights, a slow growth; about 60 %
   complaints, 15 % suggestions, 25 % enquiries and others; categories from the packaged
   tree's leaves; ~200 operators; ~95 % closed (most within their time limit, computed with
   the city's working-day calendar), ~30 % surveyed (a dissatisfied survey reopens the
   ticket 60 % of the time: worked, closed and surveyed again), repeat complaints flagged as
   registration would, a few escalated to the province (with their ``escalations`` row);
   and 2-7 ``ticket_history`` rows per ticket with the roles that acted. Rows are written
   straight into the tables (executemany on SQLite, COPY on PostgreSQL) with the secondary
   indexes dropped and re-created from their own DDL afterwards, then ``ANALYZE`` (and
   ``VACUUM`` on PostgreSQL, as autovacuum would have done on a live store). Going through
   the services would take hours for 2M tickets; the point here is the report's queries.
2. **Measure.** ``city_node.reports.build_statistics(ctx, "month", start)`` through an
   engine from ``sync.db.make_engine`` (the product's settings), for the last complete
   month and for a month in the middle of the history: one warm-up call, then the median
   of ``--runs`` calls. With ``--draft``, ``reports.draft(...)`` is timed as well (it writes
   one report row per call).
3. **Output.** One human line per month and, with ``--json``, one JSON object.

``--reuse`` keeps the seeded store between runs (a SQLite file under ``--cache-dir`` or a
PostgreSQL database named ``fedsync_bench_city_<N>_<end month>_v<version>``) and uses it
again when it was completely seeded for the same N, months and generator version. Without
it the store is seeded in a temporary place and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_TICKETS = 2_000_000
DEFAULT_MONTHS = 24
DEFAULT_PG_URL = os.environ.get(
    "FEDSYNC_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DB_PREFIX = "fedsync_bench_city_"
CITY_CODE = "620100"
TZ = "Asia/Shanghai"
#: Bump when the generated data changes: cached stores of another version are re-seeded.
SEED_VERSION = 3
#: The node_settings key marking a completely seeded store (written last).
SEED_KEY = "bench.seed"
#: Target from the issue: a month's report in at most this many seconds, on both engines.
TARGET_SECONDS = 1.0
#: Tickets generated (and written) per chunk; bounds the seeder's memory.
CHUNK = 25_000
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "fedsync_bench_cache"


class BenchError(RuntimeError):
    """The benchmark could not complete; the message says what was seen."""


def log(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"bench: {message}", file=sys.stderr, flush=True)


# --- months --------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def history_window(months: int, today: date | None = None) -> tuple[date, date]:
    """(first day, exclusive end) of the ``months`` complete months before this one (local)."""
    from sync.periods import today_in

    end = (today or today_in(TZ)).replace(day=1)
    return add_months(end, -months), end


# --- the generator -------------------------------------------------------------------------------

TICKET_COLUMNS = (
    "id",
    "kind",
    "category",
    "channel",
    "customer_phone",
    "customer_name",
    "tier",
    "content",
    "registered_at",
    "registered_by",
    "deadline",
    "status",
    "operator",
    "branch",
    "closed_at",
    "closed_by",
    "satisfaction",
    "surveyed_at",
    "surveyed_by",
    "reopen_count",
    "chase_count",
    "is_repeat",
    "escalated_at",
    "compensation_fen",
    "row_version",
    "state_since",
)
HISTORY_COLUMNS = (
    "id",
    "ticket_id",
    "at",
    "actor",
    "role",
    "action",
    "note",
    "from_status",
    "to_status",
    "deadline",
    "state_since",
    "outcome",
)
ESCALATION_COLUMNS = ("ticket_id", "escalated_at", "escalated_by", "reason", "outbox_seq")

# Weights are rough shares of a telecom city center's intake.
KINDS = (
    ("complaint", 60),
    ("suggestion", 15),
    ("enquiry", 18),
    ("help_request", 5),
    ("praise", 2),
)
CHANNELS = (("phone", 70), ("web", 15), ("walk_in", 8), ("letter", 2), ("other", 5))
TIERS = (("ordinary", 92), ("vip", 4), ("important", 3), ("leased_line", 1))
#: Leaf categories people complain about most get the larger weights; others get 3.
CATEGORY_WEIGHTS = {
    "NET.BROADBAND": 20,
    "BILL.DISPUTE": 16,
    "NET.SIGNAL": 12,
    "BILL.VAS": 10,
    "MKT.CALLS": 8,
    "SVC.ATTITUDE": 6,
    "SVC.INSTALL": 6,
    "BILL.PLAN": 5,
    "NET.FIXED": 5,
    "SVC.TIMELIMIT": 4,
    "MKT.PORT": 3,
}
#: Share answered on the spot (closed at once, status answered) instead of dispatched.
ANSWERED_SHARE = {
    "complaint": 0.15,
    "suggestion": 0.6,
    "enquiry": 0.85,
    "help_request": 0.5,
    "praise": 0.95,
}
SATISFACTION = (
    ("very_satisfied", 45),
    ("satisfied", 35),
    ("neutral", 8),
    ("dissatisfied", 5),
    ("unreachable", 7),
)
#: Local hour-of-day weights (0..23): office hours and evenings; little at night.
HOURS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 12, 14, 17, 17, 16, 14, 12, 11, 9, 7, 4, 2)
JUNIORS = tuple(f"op-{i:03d}" for i in range(1, 151))
SENIORS = tuple(f"sr-{i:03d}" for i in range(1, 41))
MANAGERS = tuple(f"mg-{i:02d}" for i in range(1, 6))
SURVEYORS = tuple(f"sv-{i:02d}" for i in range(1, 9))
BRANCHES = tuple(
    f"{district}{kind}"
    for district in ("城关", "七里河", "西固", "安宁", "红古", "永登")
    for kind in ("营业部", "装维中心", "网络维护班", "客户经理室", "政企部")
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红"
CONTENTS = {
    "complaint": (
        "宽带频繁掉线，已经报修两次仍未解决，要求尽快上门处理",
        "本月话费比上月多出六十元，未办理任何新业务，要求核查退费",
        "家中手机信号很弱，室内基本无法通话，希望优化基站覆盖",
        "莫名被订购了视频会员增值业务，要求退订并退还费用",
        "每天接到多次营销电话，已经说明不需要仍然继续拨打",
        "营业厅工作人员态度恶劣，办理业务时不耐烦",
        "预约的装机时间已过三天，一直无人联系上门",
        "固定电话无拨号音，影响老人日常联系",
        "套餐变更后资费与宣传不符，要求按原承诺执行",
        "携号转网申请被无故拒绝，要求说明原因",
    ),
    "suggestion": (
        "建议营业厅周末延长营业时间",
        "宽带报修希望提供上门时间段预约",
        "话费账单建议增加明细说明",
        "希望手机营业厅增加老年人大字版",
    ),
    "enquiry": (
        "咨询当前有哪些宽带套餐及资费",
        "咨询如何办理副卡",
        "咨询国际漫游的开通方式和资费",
        "咨询积分兑换规则",
        "咨询携号转网需要准备哪些材料",
    ),
    "help_request": (
        "手机丢失需要紧急停机",
        "老人手机欠费停机，请求临时恢复通话",
        "光猫指示灯异常，请求远程协助排查",
    ),
    "praise": ("装维师傅上门及时，服务热情，特此表扬", "客服耐心解答问题，非常满意"),
}


def _cumulative(weights: Sequence[tuple[Any, int]] | Sequence[int]) -> list[int]:
    total, out = 0, []
    for item in weights:
        total += item[1] if isinstance(item, tuple) else item
        out.append(total)
    return out


@dataclass
class Chunk:
    tickets: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    escalations: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class SeedPlan:
    tickets: int
    first_day: date
    end_day: date
    rng_seed: int = 20261125

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days


def _day_counts(plan: SeedPlan) -> list[int]:
    """Tickets per local day, summing exactly to ``plan.tickets``: weekends at 60 % of a
    weekday, a 30 % growth over the window, a winter bump (broadband and heating season)."""
    weights = []
    for i in range(plan.days):
        day = plan.first_day + timedelta(days=i)
        w = 0.6 if day.weekday() >= 5 else 1.0
        w *= 1.0 + 0.3 * i / max(1, plan.days)
        w *= 1.1 if day.month in (12, 1, 2) else 1.0
        weights.append(w)
    total = sum(weights)
    counts = [int(plan.tickets * w / total) for w in weights]
    for i in range(plan.tickets - sum(counts)):  # spread the rounding remainder
        counts[i * 7 % plan.days] += 1
    return counts


#: Share of dissatisfied surveys that reopen the ticket.
REOPEN_SHARE = 0.6
#: The note (and outcome, before ";") of a survey that reopened the ticket.
REOPENED = "dissatisfied; reopened"
_OPEN_STATUSES = frozenset(
    {
        "registered",
        "dispatched",
        "with_senior",
        "in_progress",
        "returned",
        "escalated_manager",
        "escalated_province",
    }
)
#: One planned step: (at, actor, role, action, note, status after it).
Step = tuple[int, str, str, str, str, str]
#: Steps a ticket left open never reached.
_CLOSING = frozenset({"answer", "branch_return", "province_resolved", "close", "survey"})


class Generator:
    """Tickets in registration order (ids follow time, as registration assigns them), with
    their history rows; timestamps are handed out already in the driver's text form."""

    def __init__(self, plan: SeedPlan, engine_name: str) -> None:
        from city_node.calendar import WorkCalendar
        from city_node.domain import DEFAULT_LIMITS, TicketKind
        from sync.categories import CategoryTree

        self.plan = plan
        self.rng = random.Random(plan.rng_seed)
        self.zone = ZoneInfo(TZ)
        # What make_context gives the benchmark's context: the packaged tree, no holidays.
        tree = CategoryTree.load()
        calendar = WorkCalendar(tz_name=TZ)
        leaves = [c.code for c in tree if c.parent is not None]
        self.categories = leaves
        self.category_cum = _cumulative([CATEGORY_WEIGHTS.get(c, 3) for c in leaves])
        self.limits: dict[tuple[str, str, bool], int] = {}
        for kind, _ in KINDS:
            for code in leaves:
                base = (
                    tree.limit_for(code)
                    if kind == "complaint"
                    else DEFAULT_LIMITS[TicketKind(kind)]
                )
                self.limits[(kind, code, False)] = base
                self.limits[(kind, code, True)] = max(1, (base + 1) // 2)
        # Deadlines: the city's own working-day calendar, computed once per local day and
        # limit (add_workdays per ticket would cost more than everything else here).
        first_local = datetime.combine(plan.first_day, datetime.min.time(), tzinfo=self.zone)
        self.first_utc = int(first_local.timestamp())
        span = plan.days + 40
        limit_values = sorted(set(self.limits.values()))
        self.workday = [
            calendar.is_workday(plan.first_day + timedelta(days=d)) for d in range(span)
        ]
        self.deadline_midnight: dict[int, list[int]] = {}
        for limit in limit_values:
            row = []
            for d in range(span):
                midnight = first_local + timedelta(days=d)
                row.append(int(calendar.add_workdays(midnight, limit).timestamp()))
            self.deadline_midnight[limit] = row
        # Timestamp text: a table of UTC dates and of seconds of the day (formatting each
        # datetime with strftime would dominate the seeding).
        base_day = self.first_utc // 86400
        self.base_day = base_day
        suffix = ".000000" if engine_name == "sqlite" else "+00"
        self.date_text = [
            (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=base_day + d)).strftime("%Y-%m-%d ")
            for d in range(span + 60)
        ]
        self.tod_text = [
            f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{suffix}" for s in range(86400)
        ]
        self.hour_cum = _cumulative(list(HOURS))
        self.kind_cum = _cumulative(KINDS)
        self.channel_cum = _cumulative(CHANNELS)
        self.tier_cum = _cumulative(TIERS)
        self.sat_cum = _cumulative(SATISFACTION)
        self.outcomes = [o for o, _ in SATISFACTION]
        # About one customer per three tickets, a few of them calling very often: enough
        # same-phone-same-category complaints within 30 days for a few % of repeats.
        self.customers = max(1_000, plan.tickets // 3)
        self.end_utc = int(
            datetime.combine(plan.end_day, datetime.min.time(), tzinfo=self.zone).timestamp()
        )

    def ts(self, sec: int) -> str:
        return self.date_text[sec // 86400 - self.base_day] + self.tod_text[sec % 86400]

    def _life(
        self,
        reg: int,
        deadline: int,
        kind: str,
        priority: bool,
        junior: bool,
        registrar: str,
        reg_role: str,
    ) -> list[Step]:
        """Every step the ticket will take, in time order, as if nothing stopped it; the
        caller keeps those before the window's end. Roles and transitions are the domain's
        (a junior hands a priority customer to a senior, who then works it)."""
        rng = self.rng
        rand = rng.random
        life: list[Step] = [(reg, registrar, reg_role, "register", "", "registered")]
        holder, role = registrar, reg_role
        t = reg
        if priority and junior:
            life.append((t, holder, role, "hand_to_senior", "", "with_senior"))
            holder, role = rng.choice(SENIORS), "operator_senior"
            t += int(60 + rand() * 1800)
        if rand() < ANSWERED_SHARE[kind]:
            life.append((t + int(60 + rand() * 1200), holder, role, "answer", "", "answered"))
        else:
            branch = rng.choice(BRANCHES)
            life.append((t, holder, role, "dispatch", "to " + branch, "dispatched"))
            span = max(3 * 3600, deadline - t)
            if rand() < 0.9:  # most are worked within the limit
                done = t + int(span * (0.15 + 0.8 * rand()))
            else:
                done = deadline + int(3600 + rand() * 5 * 86400)
            # Branch work takes a few hours at least (room for start, escalation, return).
            done = max(done, t + 4 * 3600)
            status = "dispatched"
            if rand() < 0.6:
                life.append((t + 1800, holder, role, "start", "", "in_progress"))
                status = "in_progress"
            if kind == "complaint" and rand() < 0.02:
                # The customer insists: the manager hotline, and for a third the province.
                esc = t + 1800 + int((done - t - 1800) * 0.3 * rand())
                manager = rng.choice(MANAGERS)
                escalate = ("escalate_manager", "customer insists", "escalated_manager")
                life.append((esc, holder, role, *escalate))
                holder, role = manager, "manager_hotline"
                if rand() < 0.35:
                    escalate = ("escalate_province", "needs the province", "escalated_province")
                    life.append((esc + 600, holder, role, *escalate))
                    life.append((done - 600, holder, role, "province_resolved", "", "returned"))
                    status = "returned"
                else:
                    life.append((esc + 600, holder, role, "dispatch", "to " + branch, "dispatched"))
                    status = "dispatched"
            if status != "returned" and rand() < 0.06 and done - 3600 > life[-1][0]:
                life.append((done - 3600, holder, role, "chase", "", status))
            if status != "returned":
                life.append((done - 300, holder, role, "branch_return", "", "returned"))
            if rand() < 0.8:  # usually whoever registered it closes the loop
                closer, closer_role = (
                    (holder, role) if priority and junior else (registrar, reg_role)
                )
            else:
                closer, closer_role = rng.choice(SENIORS), "operator_senior"
            life.append((done, closer, closer_role, "close", "", "closed"))
        if rand() < 0.3:
            when = life[-1][0] + int(3600 + rand() * 3 * 86400)
            outcome = rng.choices(self.outcomes, cum_weights=self.sat_cum)[0]
            if outcome == "dissatisfied" and rand() < REOPEN_SHARE:
                # The customer's problem is not solved: reopened, worked, closed and surveyed
                # again (the case a report counting current columns loses).
                surveyor = rng.choice(SURVEYORS)
                life.append((when, surveyor, "surveyor", "survey", REOPENED, "in_progress"))
                t = when + int(4 * 3600 + rand() * 26 * 3600)
                life.append((t, holder, role, "branch_return", "", "returned"))
                t += int(600 + rand() * 6600)
                life.append((t, holder, role, "close", "", "closed"))
                when = t + int(3600 + rand() * 86400)
                outcome = rng.choices(self.outcomes, cum_weights=self.sat_cum)[0]
            life.append((when, rng.choice(SURVEYORS), "surveyor", "survey", outcome, "surveyed"))
        return life

    def chunks(self, size: int = CHUNK) -> Iterator[Chunk]:
        rng = self.rng
        rand = rng.random
        choices = rng.choices
        ts = self.ts
        counts = _day_counts(self.plan)
        last_complaint: dict[tuple[int, str], int] = {}
        window = 30 * 86400
        ticket_id = 0
        history_id = 0
        outbox_seq = 0
        chunk = Chunk()
        kinds = [k for k, _ in KINDS]
        channels = [c for c, _ in CHANNELS]
        tiers = [t for t, _ in TIERS]
        end = self.end_utc
        for day_index, count in enumerate(counts):
            if not count:
                continue
            midnight = self.first_utc + day_index * 86400
            # Seconds since local midnight: an hour by weight, then uniform within it.
            hours = choices(range(24), cum_weights=self.hour_cum, k=count)
            seconds = sorted(h * 3600 + int(rand() * 3600) for h in hours)
            day_kinds = choices(kinds, cum_weights=self.kind_cum, k=count)
            day_channels = choices(channels, cum_weights=self.channel_cum, k=count)
            day_tiers = choices(tiers, cum_weights=self.tier_cum, k=count)
            day_cats = choices(self.categories, cum_weights=self.category_cum, k=count)
            workday = self.workday[day_index]
            for clock, kind, channel, tier, category in zip(
                seconds, day_kinds, day_channels, day_tiers, day_cats, strict=True
            ):
                ticket_id += 1
                reg = midnight + clock
                priority = tier != "ordinary"
                limit = self.limits[(kind, category, priority)]
                deadline = self.deadline_midnight[limit][day_index] + (clock if workday else 0)
                customer = int(self.customers * rand() ** 3)
                phone = f"139{customer:08d}"
                name = SURNAMES[customer % len(SURNAMES)] + GIVEN[customer % 29 % len(GIVEN)]
                content = rng.choice(CONTENTS[kind])
                junior = rand() < 0.8
                registrar = rng.choice(JUNIORS) if junior else rng.choice(SENIORS)
                reg_role = "operator_junior" if junior else "operator_senior"
                is_repeat = 0
                if kind == "complaint":
                    key = (customer, category)
                    previous = last_complaint.get(key)
                    if previous is not None and reg - previous <= window:
                        is_repeat = 1
                    last_complaint[key] = reg
                first_history = history_id + 1
                life = self._life(reg, deadline, kind, priority, junior, registrar, reg_role)
                # The ticket as it stands at the window's end: its steps until then (or until
                # it stalls, for the few left open), and the row derived from exactly those.
                stays_open = rand() < (
                    0.5 if end - reg < 2 * 86400 else 0.15 if end - reg < 10 * 86400 else 0.035
                )
                status = "registered"
                operator = registrar
                branch = closed_at = closer = escalated_at = None
                satisfaction = surveyed_at = surveyor = None
                chase = reopens = 0
                deadline_text = ts(deadline)
                since = reg  # since when open (or closed): registration, closure, reopening
                for at, actor, role, action, note, to_status in life:
                    if at >= end or (stays_open and action in _CLOSING):
                        break
                    history_id += 1
                    before = None if action == "register" else status
                    chunk.history.append(
                        (
                            history_id,
                            ticket_id,
                            ts(at),
                            actor,
                            role,
                            action,
                            note,
                            before,
                            to_status,
                            deadline_text,
                            ts(since),
                            note.split(";")[0] if action == "survey" else None,
                        )
                    )
                    if (before in _OPEN_STATUSES) != (to_status in _OPEN_STATUSES):
                        since = at
                    status = to_status
                    if role != "surveyor":
                        operator = actor
                    if action == "dispatch":
                        branch = note[3:]
                    elif action in ("answer", "close"):
                        closed_at, closer = ts(at), actor
                    elif action == "escalate_province":
                        escalated_at = ts(at)
                        outbox_seq += 1
                        chunk.escalations.append((ticket_id, escalated_at, actor, note, outbox_seq))
                    elif action == "chase":
                        chase += 1
                    elif action == "survey":
                        satisfaction, surveyed_at, surveyor = note.split(";")[0], ts(at), actor
                        if to_status == "in_progress":
                            closed_at = closer = None
                            reopens += 1
                chunk.tickets.append(
                    (
                        ticket_id,
                        kind,
                        category,
                        channel,
                        phone,
                        name,
                        tier,
                        content,
                        ts(reg),
                        registrar,
                        ts(deadline),
                        status,
                        operator,
                        branch,
                        closed_at,
                        closer,
                        satisfaction,
                        surveyed_at,
                        surveyor,
                        reopens,
                        chase,
                        is_repeat,
                        escalated_at,
                        0,
                        history_id - first_history + 1,
                        ts(since),
                    )
                )
                if len(chunk.tickets) >= size:
                    yield chunk
                    chunk = Chunk()
        if chunk.tickets:
            yield chunk


# --- stores --------------------------------------------------------------------------------------


def _admin_dsn(server_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_url(server_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


def pg_create(server_url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def pg_drop(server_url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def pg_exists(server_url: str, database: str) -> bool:
    import psycopg

    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    return row is not None


def seed_marker(plan: SeedPlan) -> str:
    """What a reusable store must have been seeded with: the plan, the generator's version
    and the schema's migration head (a new migration, e.g. an index, means a new seed)."""
    from city_node.store import MIGRATIONS
    from sync.migrate import head_revision

    return json.dumps(
        {
            "tickets": plan.tickets,
            "first_day": plan.first_day.isoformat(),
            "end_day": plan.end_day.isoformat(),
            "version": SEED_VERSION,
            "schema": head_revision(MIGRATIONS),
        },
        sort_keys=True,
    )


def read_marker(url: str) -> str | None:
    """The seed marker of the store at ``url``, or None when absent or unreadable."""
    from sqlalchemy import text

    from sync.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                text("SELECT value FROM node_settings WHERE key = :k"), {"k": SEED_KEY}
            ).scalar()
    except Exception:
        return None
    finally:
        engine.dispose()
    return None if value is None else str(value)


@dataclass
class SeedStats:
    tickets: int = 0
    history: int = 0
    escalations: int = 0
    generate_seconds: float = 0.0
    write_seconds: float = 0.0
    index_seconds: float = 0.0
    analyze_seconds: float = 0.0
    seconds: float = 0.0


SEEDED_TABLES = ("tickets", "ticket_history", "escalations")


def _sqlite_path(url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(url).database)


def seed(url: str, plan: SeedPlan, *, analyze: bool = True, quiet: bool = False) -> SeedStats:
    """Create the schema at ``url`` (an empty database) and fill it as described above."""
    from city_node import services
    from city_node.store import create_schema
    from sync.db import make_engine

    started = time.perf_counter()
    engine = make_engine(url)
    try:
        create_schema(engine)
        services.open_store(engine, CITY_CODE)
        engine_name = engine.dialect.name
    finally:
        engine.dispose()
    stats = SeedStats()
    generator = Generator(plan, engine_name)
    if engine_name == "sqlite":
        _seed_sqlite(_sqlite_path(url), generator, stats, analyze=analyze, quiet=quiet)
    else:
        _seed_postgresql(url, generator, stats, analyze=analyze, quiet=quiet)
    stats.seconds = time.perf_counter() - started
    return stats


def _progress(stats: SeedStats, plan: SeedPlan, quiet: bool, last: list[float]) -> None:
    now = time.perf_counter()
    if now - last[0] >= 10:
        last[0] = now
        log(
            quiet, f"  {stats.tickets:,} / {plan.tickets:,} tickets, {stats.history:,} history rows"
        )


def _seed_sqlite(
    path: str, generator: Generator, stats: SeedStats, *, analyze: bool, quiet: bool
) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # A cache only: no journal, no fsync while loading (the marker, written last, tells
        # a complete store from an interrupted one). WAL is restored at the end.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        conn.execute("PRAGMA temp_store=MEMORY")
        placeholders = ", ".join("?" * len(SEEDED_TABLES))
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({placeholders})",
            SEEDED_TABLES,
        ).fetchall()
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        inserts = {
            table: f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for table, cols in (
                ("tickets", TICKET_COLUMNS),
                ("ticket_history", HISTORY_COLUMNS),
                ("escalations", ESCALATION_COLUMNS),
            )
        }
        last = [time.perf_counter()]
        conn.execute("BEGIN")
        chunks = generator.chunks()
        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            t1 = time.perf_counter()
            stats.generate_seconds += t1 - t0
            if chunk is None:
                break
            conn.executemany(inserts["tickets"], chunk.tickets)
            conn.executemany(inserts["ticket_history"], chunk.history)
            conn.executemany(inserts["escalations"], chunk.escalations)
            stats.write_seconds += time.perf_counter() - t1
            stats.tickets += len(chunk.tickets)
            stats.history += len(chunk.history)
            stats.escalations += len(chunk.escalations)
            _progress(stats, generator.plan, quiet, last)
        conn.execute("COMMIT")
        log(quiet, f"  rows written; re-creating {len(indexes)} indexes")
        t0 = time.perf_counter()
        for _name, sql in indexes:
            conn.execute(sql)
        stats.index_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        if analyze:
            conn.execute("ANALYZE")
        stats.analyze_seconds = time.perf_counter() - t0
        conn.execute(
            "INSERT OR REPLACE INTO node_settings (key, value) VALUES (?, ?)",
            (SEED_KEY, seed_marker(generator.plan)),
        )
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _copy_text(rows: list[tuple[Any, ...]]) -> bytes:
    # COPY's text format; no generated value holds a tab, newline or backslash.
    return "".join(
        "\t".join("\\N" if v is None else str(v) for v in row) + "\n" for row in rows
    ).encode()


def _seed_postgresql(
    url: str, generator: Generator, stats: SeedStats, *, analyze: bool, quiet: bool
) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        # Foreign keys are checked per row by triggers; the rows are consistent by
        # construction, so the load skips them (the constraints themselves stay).
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            (list(SEEDED_TABLES),),
        ).fetchall()
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        last = [time.perf_counter()]
        targets = (
            ("tickets", TICKET_COLUMNS),
            ("ticket_history", HISTORY_COLUMNS),
            ("escalations", ESCALATION_COLUMNS),
        )
        with conn.transaction():
            chunks = generator.chunks()
            while True:
                t0 = time.perf_counter()
                chunk = next(chunks, None)
                t1 = time.perf_counter()
                stats.generate_seconds += t1 - t0
                if chunk is None:
                    break
                for (table, columns), rows in zip(
                    targets, (chunk.tickets, chunk.history, chunk.escalations), strict=True
                ):
                    if not rows:
                        continue
                    with conn.cursor().copy(
                        f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                    ) as copy:
                        copy.write(_copy_text(rows))
                stats.write_seconds += time.perf_counter() - t1
                stats.tickets += len(chunk.tickets)
                stats.history += len(chunk.history)
                stats.escalations += len(chunk.escalations)
                _progress(stats, generator.plan, quiet, last)
        # Explicit ids were written: move the id sequences past them.
        for table in ("tickets", "ticket_history"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        log(quiet, f"  rows written; re-creating {len(indexes)} indexes")
        t0 = time.perf_counter()
        for _name, sql in indexes:
            conn.execute(sql)
        stats.index_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        # VACUUM sets the visibility map (index-only scans need it), as autovacuum does on a
        # live store; ANALYZE gives the planner its statistics.
        conn.execute("VACUUM (ANALYZE)" if analyze else "VACUUM")
        stats.analyze_seconds = time.perf_counter() - t0
        conn.execute(
            "INSERT INTO node_settings (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (SEED_KEY, seed_marker(generator.plan)),
        )


# --- the measurement ------------------------------------------------------------------------------


@dataclass
class MonthResult:
    label: str
    start: str
    median_seconds: float | None
    runs_seconds: list[float]
    first_seconds: float | None
    registered: int
    closed: int
    history_rows: int
    draft_seconds: float | None = None
    error: str | None = None
    #: This process's CPU (user+system) per call, median: on SQLite, where the database
    #: runs in the process, what a quiet machine's wall time would be; on PostgreSQL only
    #: the client's share (the server's CPU is another process's).
    cpu_seconds: float | None = None


def month_rows(engine: Any, start: date, end: date) -> tuple[int, int, int]:
    """(registered, closure steps, history rows) in the local month [start, end)."""
    from sqlalchemy import text

    from sync.db import UtcDateTime

    zone = ZoneInfo(TZ)
    lo = datetime.combine(start, datetime.min.time(), tzinfo=zone)
    hi = datetime.combine(end, datetime.min.time(), tzinfo=zone)
    params = {"lo": lo, "hi": hi}
    types = {"lo": UtcDateTime(), "hi": UtcDateTime()}
    counts = []
    with engine.connect() as conn:
        for sql in (
            "SELECT count(*) FROM tickets WHERE registered_at >= :lo AND registered_at < :hi",
            "SELECT count(*) FROM ticket_history WHERE action IN ('answer', 'close') "
            "AND at >= :lo AND at < :hi",
            "SELECT count(*) FROM ticket_history WHERE at >= :lo AND at < :hi",
        ):
            stmt = text(sql).bindparams(*(_typed(k, t) for k, t in types.items()))
            counts.append(int(conn.execute(stmt, params).scalar() or 0))
    return counts[0], counts[1], counts[2]


def _typed(name: str, type_: Any) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, type_=type_)


def time_month(ctx: Any, label: str, start: date, runs: int, *, draft: bool) -> MonthResult:
    try:
        from city_node import reports
    except ImportError as exc:
        raise BenchError(f"city_node.reports is not importable yet: {exc}") from exc

    end = add_months(start, 1)
    registered, closed, history_rows = month_rows(ctx.engine, start, end)

    cpu: list[float] = []

    def once() -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        reports.build_statistics(ctx, "month", start)
        cpu.append(time.process_time() - c0)
        return time.perf_counter() - t0

    first = once()  # warm-up: caches, statement compilation, the pool's first connection
    samples = [once() for _ in range(runs)]
    draft_seconds = None
    if draft and hasattr(reports, "draft"):
        t0 = time.perf_counter()
        reports.draft(ctx, "statistics", "month", start, by="bench")
        draft_seconds = time.perf_counter() - t0
    return MonthResult(
        label=label,
        start=start.isoformat(),
        median_seconds=statistics.median(samples),
        runs_seconds=samples,
        first_seconds=first,
        registered=registered,
        closed=closed,
        history_rows=history_rows,
        draft_seconds=draft_seconds,
        cpu_seconds=statistics.median(cpu[1:]),
    )


@dataclass
class Result:
    engine: str
    tickets: int
    history: int
    months: list[MonthResult]
    seed: SeedStats | None
    reused: bool
    load: str

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "engine": self.engine,
            "tickets": self.tickets,
            "history_rows": self.history,
            "target_seconds": TARGET_SECONDS,
        }
        for month in self.months:
            prefix = month.label
            out[f"{prefix}_month"] = month.start
            out[f"{prefix}_seconds"] = (
                None if month.median_seconds is None else round(month.median_seconds, 4)
            )
            out[f"{prefix}_runs"] = [round(s, 4) for s in month.runs_seconds]
            out[f"{prefix}_first_seconds"] = (
                None if month.first_seconds is None else round(month.first_seconds, 4)
            )
            out[f"{prefix}_registered"] = month.registered
            out[f"{prefix}_closed"] = month.closed
            out[f"{prefix}_history_rows"] = month.history_rows
            if month.cpu_seconds is not None:
                out[f"{prefix}_cpu_seconds"] = round(month.cpu_seconds, 4)
            if month.draft_seconds is not None:
                out[f"{prefix}_draft_seconds"] = round(month.draft_seconds, 4)
        out["reused"] = self.reused
        if self.seed is not None:
            out["seed_seconds"] = round(self.seed.seconds, 1)
            out["seed_generate_seconds"] = round(self.seed.generate_seconds, 1)
            out["seed_write_seconds"] = round(self.seed.write_seconds, 1)
            out["seed_index_seconds"] = round(self.seed.index_seconds, 1)
            out["seed_analyze_seconds"] = round(self.seed.analyze_seconds, 1)
        out["load"] = self.load
        return out

    def human(self) -> list[str]:
        lines = []
        for m in self.months:
            if m.median_seconds is None:
                lines.append(f"{self.engine}: {m.label} month {m.start}: {m.error}")
                continue
            verdict = "met" if m.median_seconds <= TARGET_SECONDS else "MISSED"
            runs = " · ".join(f"{s:.3f}" for s in m.runs_seconds)
            draft = "" if m.draft_seconds is None else f"; draft {m.draft_seconds:.3f}s"
            cpu = "" if m.cpu_seconds is None else f"; CPU {m.cpu_seconds:.3f}s median"
            lines.append(
                f"{self.engine}: {self.tickets:,} tickets, {m.label} month {m.start}: "
                f"build_statistics {m.median_seconds:.3f}s median ({runs}; first "
                f"{m.first_seconds:.3f}s){cpu}{draft}; month has {m.registered:,} registered, "
                f"{m.closed:,} closed, {m.history_rows:,} history rows; "
                f"target <= {TARGET_SECONDS:g}s {verdict}"
            )
        if self.seed is not None:
            s = self.seed
            lines.append(
                f"{self.engine}: seeded {s.tickets:,} tickets + {s.history:,} history rows in "
                f"{s.seconds:.0f}s (generate {s.generate_seconds:.0f}s, write "
                f"{s.write_seconds:.0f}s, indexes {s.index_seconds:.0f}s, analyze "
                f"{s.analyze_seconds:.0f}s)"
            )
        lines.append(f"load: {self.load}")
        return lines


def load_average() -> str:
    with suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3]) + f" ({os.cpu_count()} cpus)"
    return "unknown"


def prepare_store(
    args: argparse.Namespace, plan: SeedPlan, quiet: bool
) -> tuple[str, Callable[[], None], SeedStats | None, bool]:
    """The store's URL, its clean-up, the seeding figures (None when reused), reused?"""
    key = f"{plan.tickets}_{plan.first_day.strftime('%Y%m')}_{plan.end_day.strftime('%Y%m')}"
    name = f"{DB_PREFIX}{key}_v{SEED_VERSION}"
    marker = seed_marker(plan)
    if args.engine == "sqlite":
        if args.reuse:
            directory = Path(args.cache_dir)
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{name}.sqlite"
            url = f"sqlite:///{path}"
            if path.exists() and read_marker(url) == marker:
                return url, lambda: None, None, True
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            log(quiet, f"seeding {path}")
            return (
                url,
                lambda: None,
                seed(url, plan, analyze=not args.no_analyze, quiet=quiet),
                False,
            )
        workdir = Path(tempfile.mkdtemp(prefix="fedsync_bench_city_"))
        url = f"sqlite:///{workdir / 'city.sqlite'}"
        log(quiet, f"seeding {workdir / 'city.sqlite'}")
        stats = seed(url, plan, analyze=not args.no_analyze, quiet=quiet)
        return url, lambda: shutil.rmtree(workdir, ignore_errors=True), stats, False
    if args.reuse:
        url = _pg_url(args.pg_url, name)
        if pg_exists(args.pg_url, name) and read_marker(url) == marker:
            return url, lambda: None, None, True
    else:
        name = f"{DB_PREFIX}run_{os.getpid()}"
        url = _pg_url(args.pg_url, name)
    pg_create(args.pg_url, name)
    log(quiet, f"seeding PostgreSQL database {name}")
    try:
        stats = seed(url, plan, analyze=not args.no_analyze, quiet=quiet)
    except BaseException:
        pg_drop(args.pg_url, name)
        raise
    cleanup = (lambda: None) if args.reuse else (lambda: pg_drop(args.pg_url, name))
    return url, cleanup, stats, False


def run(args: argparse.Namespace) -> Result:
    from city_node.context import make_context
    from sync.db import make_engine

    quiet = args.json and not args.verbose
    today = date.fromisoformat(args.today) if args.today else None
    first_day, end_day = history_window(args.months, today)
    plan = SeedPlan(args.tickets, first_day, end_day)
    url, cleanup, stats, reused = prepare_store(args, plan, quiet)
    try:
        if args.keep and not args.reuse:
            print(f"bench: kept {url}", file=sys.stderr)
        if args.seed_only:
            return Result(args.engine, plan.tickets, 0, [], stats, reused, load_average())
        engine = make_engine(url)
        try:
            ctx = make_context(engine, CITY_CODE)
            with engine.connect() as conn:
                from sqlalchemy import text

                history = int(
                    conn.execute(text("SELECT count(*) FROM ticket_history")).scalar() or 0
                )
            months = [
                ("last", add_months(end_day, -1)),
                ("middle", add_months(first_day, args.months // 2)),
            ]
            results = []
            for label, start in months:
                log(quiet, f"timing {label} month {start}")
                results.append(time_month(ctx, label, start, args.runs, draft=args.draft))
        finally:
            engine.dispose()
        return Result(args.engine, plan.tickets, history, results, stats, reused, load_average())
    finally:
        if not args.keep:
            cleanup()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.city_reports",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument(
        "--tickets", type=int, default=DEFAULT_TICKETS, help="tickets in the seeded store"
    )
    parser.add_argument(
        "--months", type=int, default=DEFAULT_MONTHS, help="complete months the tickets span"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed calls per month (median)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the seeded store and use it again next time (keyed by N and the months)",
    )
    parser.add_argument(
        "--cache-dir", default=str(DEFAULT_CACHE_DIR), help="where --reuse keeps SQLite stores"
    )
    parser.add_argument(
        "--seed-only", action="store_true", help="seed (or find) the store, measure nothing"
    )
    parser.add_argument("--keep", action="store_true", help="do not drop a non-reused store")
    parser.add_argument(
        "--no-analyze", action="store_true", help="seed without ANALYZE (planner without stats)"
    )
    parser.add_argument(
        "--draft", action="store_true", help="also time reports.draft once per month (writes)"
    )
    parser.add_argument(
        "--today", default="", help="pretend today is YYYY-MM-DD (the window ends at its month)"
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON object")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL server on which fedsync_bench_city_* databases may be created "
        "(env FEDSYNC_BENCH_DATABASE_URL)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tickets < 1 or args.months < 2 or args.runs < 1:
        print("bench: --tickets >= 1, --months >= 2 and --runs >= 1, please", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    for line in result.human():
        print(line, flush=True)
    if args.json:
        print(json.dumps(result.summary()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
