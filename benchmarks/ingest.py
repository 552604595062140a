"""End-to-end ingest benchmark: 14 city processes push pre-filled outboxes to one hub.

    python -m benchmarks.ingest --engine sqlite|postgresql [--cities 14] [--per-city N]
                                [--batch-size B] [--bodies suggestions|statistics|both] [--json]

What it does, all in a fresh temporary directory (and, for PostgreSQL, fresh databases named
``fedsync_bench_*`` that it creates and drops):

1. a PKI for the 14 roster cities (``sync.pki.init_pki``), a hub database and one database
   per city;
2. fills every city's outbox with N ``SuggestionBatch`` envelopes (``--bodies statistics``:
   daily ``StatisticsReport`` envelopes with realistic category, channel and operator
   slices, whose figures the hub lands in its figure tables; ``both``: one run of each,
   printed side by side) through
   ``sync.outbox.append`` in a few big transactions (not measured; for PostgreSQL through an
   in-memory SQLite copy of the city store whose rows are then copied over in bulk);
3. starts the hub (``python -m sync.cli hub``), then all city processes at once
   (``python -m sync.cli city``), and measures the wall time from the cities' start until
   ``SELECT count(*) FROM records`` on the hub database shows every envelope;
4. reads the rows the hub stored and inserts them again into a fresh copy of the hub schema
   with SQLAlchemy Core ``insert(Record)`` executemany, B rows per transaction (one
   transaction per batch, as the hub does): the raw insert rate of the same rows on the same
   kind of database, without validation, gRPC or the cities;
5. prints one human line and, with ``--json``, one JSON object.

Every wait is bounded (``--timeout``); on failure the hub's count and the tails of the
processes' logs are shown. Only processes this harness started are stopped, by their id.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.flags import with_extra

DEFAULT_TOTAL = 140_000
DEFAULT_BATCH = 5000
DEFAULT_PG_URL = os.environ.get(
    "FEDSYNC_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DB_PREFIX = "fedsync_bench_"
TZ = "Asia/Shanghai"
#: Targets on a 2-core machine (envelopes per second, end to end), for the one-suggestion
#: batches the harness was built around; the other bodies are compared with them instead.
TARGETS = {"sqlite": 50_000, "postgresql": 25_000}
#: Envelopes per fill transaction.
FILL_CHUNK = 5_000


class BenchError(RuntimeError):
    """The benchmark could not complete; the message says what was seen."""


# --- databases ---------------------------------------------------------------------------------


class Databases:
    """Fresh databases of one engine: SQLite files in the work dir, or PostgreSQL databases."""

    def __init__(self, engine_name: str, workdir: Path, server_url: str) -> None:
        self.engine_name = engine_name
        self._workdir = workdir
        self._server_url = server_url
        self._run_id = uuid.uuid4().hex[:8]
        self._created: list[str] = []

    def _admin_dsn(self) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self._server_url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def create(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL."""
        if self.engine_name == "sqlite":
            return f"sqlite:///{self._workdir / (name + '.sqlite')}"
        import psycopg
        from sqlalchemy.engine import make_url

        db_name = f"{DB_PREFIX}{self._run_id}_{name}".lower().replace("-", "_")
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{db_name}"')
        self._created.append(db_name)
        url = make_url(self._server_url).set(drivername="postgresql+psycopg", database=db_name)
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self._created:
            return
        import psycopg

        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            for db_name in self._created:
                with suppress(psycopg.Error):
                    conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        self._created.clear()


class RecordCounter:
    """``SELECT count(*) FROM records`` on the hub database, without taking its write lock.

    (An engine from ``sync.db.make_engine`` opens every SQLite transaction with
    ``BEGIN IMMEDIATE``, which would queue the poll behind the hub's writes and vice versa.)
    """

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        if parsed.get_backend_name() == "sqlite":
            self._sqlite = sqlite3.connect(
                f"file:{parsed.database}?mode=ro", uri=True, timeout=30, isolation_level=None
            )
        else:
            import psycopg

            dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self._pg = psycopg.connect(dsn, autocommit=True)

    def _scalar(self, sql: str) -> int:
        if self._sqlite is not None:
            return int(self._sqlite.execute(sql).fetchone()[0] or 0)
        return int(self._pg.execute(sql).fetchone()[0] or 0)

    def count(self) -> int:
        return self._scalar("SELECT count(*) FROM records")

    def contacted(self) -> int:
        """Cities whose Hello the hub has recorded."""
        return self._scalar("SELECT count(*) FROM city_links WHERE first_contact_at IS NOT NULL")

    def figure_rows(self) -> int:
        """Statistics report headers landed in the hub's figure tables (each with its
        slices in its ``body``)."""
        return self._scalar("SELECT count(*) FROM fig_statistics")

    def not_accepted(self) -> int:
        return self._scalar("SELECT count(*) FROM records WHERE status <> 'accepted'")

    def link_errors(self) -> list[tuple[str, str]]:
        sql = "SELECT city_code, last_error FROM city_links WHERE last_error <> ''"
        rows = self._sqlite.execute(sql) if self._sqlite is not None else self._pg.execute(sql)
        return [(str(code), str(error)) for code, error in rows.fetchall()]

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


# --- fill ----------------------------------------------------------------------------------------


def sample_body(city_code: str, number: int, day: str) -> Any:
    """A realistic small body: a SuggestionBatch with one suggestion (valid by the rules)."""
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    return pb.SuggestionBatch(
        batch_date=day,
        batch_number=number,
        suggestions=[
            pb.Suggestion(
                ticket_id=f"S-{city_code}-{number}",
                category="SVC.INSTALL",
                content="please offer weekend installation appointments",
            )
        ],
        classified_by="clerk-1",
    )


#: Slices of a realistic daily statistics report: categories of the packaged tree with
#: tickets that day, channels, operators on shift.
_CHANNELS = ("phone", "web", "walk_in", "letter", "other")


def statistics_body(city_code: str, number: int, day: str) -> Any:
    """A daily StatisticsReport, valid by the hub's rules, with realistic slices: 10-16
    categories (about 100 tickets a day in all), 3-5 channels, 10-30 operators (numbers
    drawn per city and report, so every run builds the same bodies). Report ``number`` is
    for the day ``(number - 1) % REPORT_DAYS`` days before ``day``, as revision
    ``(number - 1) // REPORT_DAYS + 1``: the hub refuses report dates before 2000, so a
    backlog longer than ten years of days re-sends corrected revisions of the same days
    (which a city does) instead of reaching back into the last century.

    Drawing ~150 random numbers per report made the fill the slowest part of a run, so the
    figures come from one of :data:`_TEMPLATES` drawn bodies per city, each copy getting
    its own day."""
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    key = (city_code, number % _TEMPLATES)
    template = _templates.get(key)
    if template is None:
        template = _templates[key] = _draw_statistics(city_code, number % _TEMPLATES)
    start = date.fromisoformat(day) - timedelta(days=(number - 1) % REPORT_DAYS)
    body = pb.StatisticsReport()
    body.CopyFrom(template)
    body.period.start = start.isoformat()
    body.revision = (number - 1) // REPORT_DAYS + 1
    return body


#: Days of daily reports before ``statistics_body`` starts a new revision of the same days.
REPORT_DAYS = 3650
_TEMPLATES = 97
_templates: dict[tuple[str, int], Any] = {}


def _draw_statistics(city_code: str, number: int) -> Any:
    import random

    from sync.categories import CategoryTree
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    global _CATEGORY_CODES
    if not _CATEGORY_CODES:
        _CATEGORY_CODES = tuple(c.code for c in CategoryTree.load())
    rng = random.Random(f"{city_code}/{number}")
    r = pb.StatisticsReport(period=pb.Period(kind=pb.DAY), revision=1, approved_by="leader-1")
    categories = rng.sample(
        _CATEGORY_CODES, rng.randint(min(10, len(_CATEGORY_CODES)), len(_CATEGORY_CODES))
    )
    channels = _CHANNELS[: rng.randint(3, 5)]
    # Per category: the day's tickets of each kind, closures and repeats; the channel slices
    # split the same totals (the rules check that both add up to the complaints received).
    for key in sorted(categories):
        complaints, enquiries = rng.randint(0, 15), rng.randint(0, 12)
        suggestions = rng.randint(0, 3)
        closed = rng.randint(0, complaints + enquiries + suggestions)
        r.by_category.append(
            pb.SliceCounts(
                key=key,
                complaints=complaints,
                enquiries=enquiries,
                suggestions=suggestions,
                closed=closed,
                closed_in_time=rng.randint(closed * 8 // 10, closed),
                repeat_complaints=rng.randint(0, complaints // 8),
            )
        )
    totals = {
        name: sum(getattr(x, name) for x in r.by_category)
        for name in ("complaints", "enquiries", "suggestions", "closed", "repeat_complaints")
    }
    shares = {name: _split(rng, total, len(channels)) for name, total in totals.items()}
    for i, key in enumerate(channels):
        closed = shares["closed"][i]
        r.by_channel.append(
            pb.SliceCounts(
                key=key,
                complaints=shares["complaints"][i],
                enquiries=shares["enquiries"][i],
                suggestions=shares["suggestions"][i],
                closed=closed,
                closed_in_time=closed * 9 // 10,
                repeat_complaints=min(shares["repeat_complaints"][i], shares["complaints"][i]),
            )
        )
    r.complaints_received = sum(s.complaints for s in r.by_category)
    r.enquiries_received = sum(s.enquiries for s in r.by_category)
    r.suggestions_received = sum(s.suggestions for s in r.by_category)
    r.repeat_complaints = sum(s.repeat_complaints for s in r.by_category)
    r.closed = sum(s.closed for s in r.by_category)
    r.closed_in_time = sum(s.closed_in_time for s in r.by_category)
    r.complaints_closed = min(r.closed, r.complaints_received)
    r.handled = r.closed + rng.randint(0, 30)
    r.overtime_open = rng.randint(0, 20)
    r.escalations_raised = rng.randint(0, 3)
    sat = r.satisfaction
    sat.very_satisfied, sat.satisfied = rng.randint(0, 60), rng.randint(0, 60)
    sat.neutral, sat.dissatisfied = rng.randint(0, 20), rng.randint(0, 10)
    sat.surveyed = sat.very_satisfied + sat.satisfied + sat.neutral + sat.dissatisfied
    sat.complaints_surveyed = rng.randint(0, sat.surveyed)
    sat.unreachable = rng.randint(0, 10)
    for i in range(rng.randint(10, 30)):
        r.operators.append(
            pb.OperatorWorkload(
                operator_id=f"op-{i:03d}", registered=rng.randint(0, 40), closed=rng.randint(0, 40)
            )
        )
    return r


_CATEGORY_CODES: tuple[str, ...] = ()


def _split(rng: Any, total: int, parts: int) -> list[int]:
    """``total`` cut into ``parts`` random non-negative parts."""
    cuts = sorted(rng.randint(0, total) for _ in range(parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


#: What citizens suggest, as a materials clerk files it (a day's batch draws from these).
_SUGGESTIONS = (
    "建议营业厅周末增开宽带安装预约时段，方便上班族办理",
    "希望资费套餐变更后能短信告知生效时间和每月实际扣费明细",
    "建议在县城营业厅增加老年人办理业务的绿色通道和引导人员",
    "希望故障报修后能在网上查看维修人员到达时间和处理进度",
    "建议账单里把流量包和语音包的使用量分开列出，方便核对",
    "希望农村地区的信号覆盖能纳入明年的基站建设计划",
    "建议热线语音菜单增加直接转人工的选项，减少等待",
)


def daily_suggestions_body(city_code: str, number: int, day: str) -> Any:
    """The SuggestionBatch a city sends on the day of statistics report ``number``: one
    suggestion for every suggestion that report counts (its categories' ``suggestions``,
    about 20 a day), each filed under its category with a sentence of Chinese text — the
    batch the daily routine sends, where :func:`sample_body` carries one suggestion."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from sync.pb.fedsync.v1 import federation_pb2 as pb

    report = statistics_body(city_code, number, day)
    batch = pb.SuggestionBatch(
        batch_date=report.period.start,
        batch_number=report.revision,
        classified_by="clerk-1",
    )
    # Received through the day, one every 7 minutes from 08:00 Beijing time (00:00 UTC).
    start = datetime.combine(date.fromisoformat(report.period.start), datetime.min.time(), UTC)
    first_second = int(start.timestamp())
    n = 0
    for item in report.by_category:
        for _ in range(item.suggestions):
            n += 1
            batch.suggestions.append(
                pb.Suggestion(
                    ticket_id=f"{city_code}-{number:07d}-{n:03d}",
                    category=item.key,
                    content=_SUGGESTIONS[(number + n) % len(_SUGGESTIONS)],
                    received_at=Timestamp(seconds=first_second + 420 * n),
                )
            )
    return batch


BODIES = {
    "suggestions": sample_body,
    "statistics": statistics_body,
    "daily-suggestions": daily_suggestions_body,
}


def _append_all(
    engine: Any, city_code: str, count: int, day: str, bodies: str = "suggestions"
) -> None:
    from city_node import services as city_services
    from city_node.store import create_schema
    from sync import outbox
    from sync.db import UnitOfWork

    create_schema(engine)
    city_services.open_store(engine, city_code)
    moment = datetime.now(UTC)
    make = BODIES[bodies]
    for first in range(0, count, FILL_CHUNK):
        with UnitOfWork(engine) as uow:
            for number in range(first + 1, min(count, first + FILL_CHUNK) + 1):
                outbox.append(uow.conn, make(city_code, number, day), now=moment)
            uow.commit()


def _utc(value: Any) -> Any:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _copy_store(source: Any, target: Any) -> None:
    """Copy a city store's link state and outbox rows, as they are, into an empty store."""
    from sqlalchemy import insert, select

    from city_node.store import create_schema
    from sync.outbox import LinkState, OutboxRow

    create_schema(target)
    with source.connect() as src, target.begin() as dst:
        for model in (LinkState, OutboxRow):
            table: Any = model.__table__
            result = src.execute(select(table))
            while chunk := result.fetchmany(FILL_CHUNK):
                rows = [{k: _utc(v) for k, v in row._mapping.items()} for row in chunk]
                dst.execute(insert(table), rows)


def fill_city(
    url: str, city_code: str, count: int, day: str, bodies: str = "suggestions"
) -> tuple[str, float]:
    """Create a city store and put ``count`` envelopes into its outbox; (code, seconds).

    SQLite: ``sync.outbox.append`` straight into the store, a few big transactions.
    PostgreSQL: ``append`` pays two round trips per envelope there (~1 ms each, 100 s for
    140,000), so the envelopes are appended into an in-memory SQLite store of the same city
    (same code, its epoch) and its link-state and outbox rows are then copied over in bulk:
    the same state as appending directly, in a fraction of the time.
    """
    from sync.db import is_sqlite, make_engine

    started = time.perf_counter()
    engine = make_engine(url)
    try:
        if is_sqlite(engine):
            _append_all(engine, city_code, count, day, bodies)
        else:
            staging = make_engine("sqlite://")
            try:
                _append_all(staging, city_code, count, day, bodies)
                _copy_store(staging, engine)
            finally:
                staging.dispose()
    finally:
        engine.dispose()
    return city_code, time.perf_counter() - started


def fill_all(
    urls: dict[str, str], per_city: int, workers: int, bodies: str = "suggestions"
) -> float:
    """Fill every city's outbox (in parallel processes); wall seconds."""
    from sync.periods import today_in

    day = (today_in(TZ) - timedelta(days=1)).isoformat()
    started = time.perf_counter()
    if workers <= 1:
        for code, url in urls.items():
            fill_city(url, code, per_city, day, bodies)
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [
                pool.submit(fill_city, url, code, per_city, day, bodies)
                for code, url in urls.items()
            ]
            for future in concurrent.futures.as_completed(futures):
                future.result()
    return time.perf_counter() - started


# --- processes -----------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    # FEDSYNC_* settings of the caller's shell would silently change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSYNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    # The children run in the work dir; ``benchmarks.attributed_hub`` is found from here.
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def describe(self) -> str:
        code = self.proc.returncode
        status = "still running" if code is None else f"exit {code}"
        return (
            f"{self.name} (pid {self.proc.pid}, {status}):\n"
            f"  stdout: {_tail(self.out, 5)}\n  stderr: {_tail(self.err)}"
        )


@dataclass
class Fleet:
    """The processes this harness started; stopped by their ids only."""

    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, argv: Sequence[str], workdir: Path) -> Child:
        out, err = workdir / f"{name}.out", workdir / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                env=_child_env(),
            )
        child = Child(name, proc, out, err)
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None]

    def stop(self, children: Sequence[Child], grace: float = 15.0) -> None:
        for child in children:
            if child.proc.poll() is None:
                with suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(
                    f"bench: {child.name} ignored SIGTERM; killing pid {child.proc.pid}",
                    file=sys.stderr,
                )
                child.proc.kill()
                child.proc.wait(timeout=10)


def wait_for(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    fleet: Fleet,
    interval: float = 0.05,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        dead = fleet.dead()
        if dead:
            raise BenchError(
                f"while waiting for {what}, a process exited:\n"
                + "\n".join(c.describe() for c in dead)
            )
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not seen after {timeout:.0f}s")
        time.sleep(interval)


# --- raw insert ----------------------------------------------------------------------------------


def all_cities_waiting(city_urls: dict[str, str]) -> bool:
    """True when every city process has opened its store and tried the (absent) hub."""
    from sqlalchemy import text

    from sync.db import make_engine

    for url in city_urls.values():
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                state = conn.execute(text("SELECT state FROM link_state")).scalar()
        except Exception:
            return False
        finally:
            engine.dispose()
        if state != "backing-off":
            return False
    return True


def read_records(url: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from province_hub.services import RECORD_COLUMNS
    from province_hub.store import Record
    from sync.db import make_engine

    engine = make_engine(url)
    try:
        columns = [getattr(Record, name) for name in RECORD_COLUMNS]
        with engine.connect() as conn:
            rows = conn.execute(select(*columns).order_by(Record.city_code, Record.seq)).all()
    finally:
        engine.dispose()
    return [dict(row._mapping) for row in rows]


def raw_insert(url: str, rows: list[dict[str, Any]], batch_size: int) -> float:
    """Insert ``rows`` into a fresh hub schema, ``batch_size`` per transaction; seconds.

    Through the hub's own bulk path (``sync.db.bulk_insert``: COPY on PostgreSQL, the
    driver's executemany on SQLite), so the figure is what the database alone allows.
    """
    from province_hub.services import RECORD_COLUMNS
    from province_hub.store import Record, create_schema
    from sync.db import bulk_insert, datetime_param, make_engine

    engine = make_engine(url)
    try:
        create_schema(engine)
        with engine.connect() as conn:  # open the pooled connection outside the measurement
            tuples = [
                tuple(
                    datetime_param(conn, row[c]) if c.endswith("_at") else row[c]
                    for c in RECORD_COLUMNS
                )
                for row in rows
            ]
        started = time.perf_counter()
        for first in range(0, len(tuples), batch_size):
            with engine.begin() as conn:
                bulk_insert(
                    conn, Record.__tablename__, RECORD_COLUMNS, tuples[first : first + batch_size]
                )
        return time.perf_counter() - started
    finally:
        engine.dispose()


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Result:
    engine: str
    bodies: str
    cities: int
    envelopes: int
    batch_size: int
    start: str
    end_to_end_per_s: float
    raw_insert_per_s: float
    seconds: float
    first_record_seconds: float
    all_connected_seconds: float
    after_connect_per_s: float
    raw_insert_seconds: float
    fill_seconds: float
    hub_cpu_seconds: float | None
    cities_cpu_seconds: float | None
    workdir: str
    #: Rows the hub landed in its statistics figure tables (headers and slices).
    figure_rows: int = 0
    #: Parts of the hub's ingest skipped for attribution (``--without``).
    without: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "bodies": self.bodies,
            "cities": self.cities,
            "envelopes": self.envelopes,
            "batch_size": self.batch_size,
            "start": self.start,
            "end_to_end_per_s": round(self.end_to_end_per_s, 1),
            "raw_insert_per_s": round(self.raw_insert_per_s, 1),
            "seconds": round(self.seconds, 3),
            # Context for reading the figure above (not part of the target).
            "first_record_seconds": round(self.first_record_seconds, 3),
            "all_connected_seconds": round(self.all_connected_seconds, 3),
            "after_connect_per_s": round(self.after_connect_per_s, 1),
            "raw_insert_seconds": round(self.raw_insert_seconds, 3),
            "hub_cpu_seconds": self.hub_cpu_seconds,
            "cities_cpu_seconds": self.cities_cpu_seconds,
            "figure_rows": self.figure_rows,
            "without": list(self.without),
        }

    def human(self) -> str:
        target = TARGETS[self.engine]
        verdict = "met" if self.end_to_end_per_s >= target else "MISSED"
        cpu = ""
        if self.hub_cpu_seconds is not None and self.cities_cpu_seconds is not None:
            cpu = (
                f"; CPU during the run: hub {self.hub_cpu_seconds:.1f}s, "
                f"cities {self.cities_cpu_seconds:.1f}s"
            )
        what = _WHAT[self.bodies]
        figures = f", {self.figure_rows:,} figure rows landed" if self.figure_rows else ""
        if self.without:
            figures += f", hub without {' and '.join(self.without)}: attribution, not the product"
        return (
            f"{self.engine} ({what}{figures}): {self.envelopes} envelopes from "
            f"{self.cities} cities, batch {self.batch_size}, start {self.start}: end to end "
            f"{self.end_to_end_per_s:,.0f} envelopes/s "
            f"({self.seconds:.2f}s; first record after {self.first_record_seconds:.2f}s, all "
            f"cities connected after {self.all_connected_seconds:.2f}s, "
            f"{self.after_connect_per_s:,.0f}/s from then on); raw insert "
            f"{self.raw_insert_per_s:,.0f} rows/s "
            f"({self.raw_insert_seconds:.2f}s)"
            + (f"; target >= {target:,}/s {verdict}" if self.bodies == "suggestions" else "")
            + cpu
        )


#: How a run's bodies are named in its lines.
_WHAT = {
    "suggestions": "suggestion batches",
    "daily-suggestions": "daily suggestion batches",
    "statistics": "statistics reports",
}


def run(args: argparse.Namespace) -> Result:
    from province_hub.store import create_schema as create_hub_schema
    from sync.db import make_engine
    from sync.pki import init_pki
    from sync.roster import load_roster

    roster = [city.code for city in load_roster()]
    if not 1 <= args.cities <= len(roster):
        raise BenchError(f"--cities must be 1..{len(roster)}")
    codes = roster[: args.cities]
    per_city = args.per_city or max(1, DEFAULT_TOTAL // args.cities)
    expected = per_city * len(codes)

    workdir = Path(tempfile.mkdtemp(prefix="fedsync_bench_"))
    databases = Databases(args.engine, workdir, args.pg_url)
    fleet = Fleet()
    counter: RecordCounter | None = None
    keep = args.keep
    try:
        log(args, f"work dir {workdir}")
        pki_dir = workdir / "pki"
        init_pki(pki_dir, city_codes=roster, hub_hosts=("localhost", "127.0.0.1"))

        hub_url = databases.create("hub")
        city_urls = {code: databases.create(f"city_{code}") for code in codes}
        # The schema exists before anything polls it (the hub would create it as well).
        hub_engine = make_engine(hub_url)
        create_hub_schema(hub_engine)
        hub_engine.dispose()

        log(args, f"filling {len(codes)} outboxes with {per_city} envelopes each")
        fill_seconds = fill_all(city_urls, per_city, args.fill_workers, args.bodies)
        log(args, f"filled in {fill_seconds:.1f}s")

        port = _free_port()

        # --without: the statistics run's hub skips those parts (attribution, not the product).
        skipped = args.without if args.bodies == "statistics" else []
        hub_module = ["benchmarks.attributed_hub", ",".join(skipped)] if skipped else ["sync.cli"]

        def spawn_hub() -> Child:
            return fleet.spawn(
                "hub",
                [
                    "-m",
                    *hub_module,
                    "hub",
                    *with_extra(
                        [
                            "--listen",
                            f"127.0.0.1:{port}",
                            "--database-url",
                            hub_url,
                            "--pki-dir",
                            str(pki_dir),
                        ],
                        args.hub_arg,
                    ),
                ],
                workdir,
            )

        def spawn_cities() -> list[Child]:
            return [
                fleet.spawn(
                    f"city-{code}",
                    [
                        "-m",
                        "sync.cli",
                        "city",
                        *with_extra(
                            [
                                "--code",
                                code,
                                "--hub",
                                f"127.0.0.1:{port}",
                                "--database-url",
                                city_urls[code],
                                "--pki-dir",
                                str(pki_dir),
                                "--batch-size",
                                str(args.batch_size),
                                "--heartbeat-seconds",
                                "5",
                                # While the hub is away the cities retry often, so the drain
                                # starts as soon as it listens.
                                "--backoff-initial",
                                "0.05",
                                "--backoff-max",
                                "0.25",
                            ],
                            args.city_arg,
                        ),
                    ],
                    workdir,
                )
                for code in codes
            ]

        cities: list[Child] = []
        if args.start == "hub-last":
            # The city processes are up and waiting with their backlog (as after an outage).
            cities = spawn_cities()
            wait_for(
                lambda: all_cities_waiting(city_urls),
                timeout=120,
                what="every city to start and find the hub away",
                fleet=fleet,
            )
        spawned = time.perf_counter()
        hub = spawn_hub()
        # The clock starts when the hub listens (its own process start is not transport).
        wait_for(
            lambda: "listening on port" in _tail(hub.out),
            timeout=60,
            what="the hub to listen",
            fleet=fleet,
            interval=0.005,
        )
        log(args, f"hub listening {time.perf_counter() - spawned:.2f}s after its spawn")
        counter = RecordCounter(hub_url)
        hub_cpu_before = _cpu_seconds(hub.proc.pid)
        started = time.perf_counter()
        if args.start == "cold":
            # Cold: the clock also covers starting 14 Python processes (imports, stores, TLS).
            cities = spawn_cities()
        city_cpu_before = {c.name: _cpu_seconds(c.proc.pid) or 0.0 for c in cities}
        deadline = started + args.timeout
        held = 0
        first_at: float | None = None
        connected_at: float | None = None
        connected_held = 0
        samples: list[tuple[float, int]] = []
        while True:
            held = counter.count()
            now = time.perf_counter()
            samples.append((now - started, held))
            if first_at is None and held > 0:
                first_at = now
            if connected_at is None and counter.contacted() >= len(codes):
                connected_at, connected_held = now, held
            if held >= expected:
                break
            dead = fleet.dead()
            if dead:
                raise BenchError(
                    f"the hub holds {held} of {expected} envelopes, and a process "
                    "exited:\n" + "\n".join(c.describe() for c in dead)
                )
            if now > deadline:
                raise BenchError(
                    f"the hub holds only {held} of {expected} envelopes after {args.timeout:.0f}s"
                )
            time.sleep(args.poll)
        seconds = now - started
        hub_cpu_after = _cpu_seconds(hub.proc.pid)
        hub_cpu = (
            None
            if hub_cpu_before is None or hub_cpu_after is None
            else hub_cpu_after - hub_cpu_before
        )
        city_cpu_parts = [
            None if (cpu := _cpu_seconds(c.proc.pid)) is None else cpu - city_cpu_before[c.name]
            for c in cities
        ]
        cities_cpu = (
            None
            if any(p is None for p in city_cpu_parts)
            else round(sum(p or 0.0 for p in city_cpu_parts), 2)
        )
        fleet.stop(cities)
        fleet.stop([hub])
        if args.trace:
            print("bench: seconds  records  per-s since previous", file=sys.stderr)
            previous = (0.0, 0)
            for at, count in samples:
                rate = (count - previous[1]) / (at - previous[0]) if at > previous[0] else 0.0
                print(f"bench: {at:7.2f} {count:8d} {rate:10,.0f}", file=sys.stderr)
                previous = (at, count)

        if held != expected:
            raise BenchError(f"the hub holds {held} records, expected exactly {expected}")
        quarantined = counter.not_accepted()
        figure_rows = counter.figure_rows()
        landing = "figures" not in skipped
        if args.bodies == "statistics" and (quarantined or (landing and figure_rows < expected)):
            raise BenchError(
                f"{quarantined} reports were quarantined and {figure_rows} figure rows landed "
                f"for {expected} reports: the measured ingest did not do the figures' work"
            )
        if quarantined:
            print(f"bench: warning: {quarantined} records were quarantined", file=sys.stderr)
        for code, error in counter.link_errors():
            print(f"bench: warning: city {code} link error: {error}", file=sys.stderr)
        counter.close()
        counter = None

        rows = read_records(hub_url)
        raw_url = databases.create("raw")
        raw_seconds = raw_insert(raw_url, rows, args.batch_size)
        connected_at = connected_at or now
        after_connect = now - connected_at
        return Result(
            engine=args.engine,
            bodies=args.bodies,
            figure_rows=figure_rows,
            without=tuple(skipped),
            cities=len(codes),
            envelopes=expected,
            batch_size=args.batch_size,
            start=args.start,
            end_to_end_per_s=expected / seconds,
            raw_insert_per_s=len(rows) / raw_seconds,
            seconds=seconds,
            first_record_seconds=(first_at or now) - started,
            all_connected_seconds=connected_at - started,
            after_connect_per_s=(
                (expected - connected_held) / after_connect if after_connect > 0 else 0.0
            ),
            raw_insert_seconds=raw_seconds,
            fill_seconds=fill_seconds,
            hub_cpu_seconds=round(hub_cpu, 2) if hub_cpu is not None else None,
            cities_cpu_seconds=cities_cpu,
            workdir=str(workdir),
        )
    except BaseException:
        if counter is not None:
            with suppress(Exception):
                print(f"bench: the hub holds {counter.count()} records", file=sys.stderr)
        for child in fleet.children:
            if child.name == "hub" or child.proc.poll() is not None:
                print(f"bench: {child.describe()}", file=sys.stderr)
        keep = keep or args.keep_on_failure
        raise
    finally:
        if counter is not None:
            with suppress(Exception):
                counter.close()
        fleet.stop([c for c in fleet.children if c.name != "hub"])
        fleet.stop([c for c in fleet.children if c.name == "hub"])
        if not keep:
            databases.drop_all()
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(
                f"bench: kept {workdir}"
                + (" (and its PostgreSQL databases)" if args.engine == "postgresql" else ""),
                file=sys.stderr,
            )


def log(args: argparse.Namespace, message: str) -> None:
    if not args.json or args.verbose:
        print(f"bench: {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--cities", type=int, default=14, help="roster cities to run (1..14)")
    parser.add_argument(
        "--per-city",
        type=int,
        default=0,
        help=f"envelopes per city (default: {DEFAULT_TOTAL:,} in total)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help="the cities' --batch-size and the raw insert's rows per transaction",
    )
    parser.add_argument(
        "--start",
        choices=("hub-last", "cold"),
        default="hub-last",
        help="hub-last (default): the city processes are running with their backlog and the "
        "clock starts when the hub is spawned; cold: the clock also covers starting the 14 "
        "city processes",
    )
    parser.add_argument(
        "--bodies",
        choices=(*BODIES, "both", "all"),
        default="suggestions",
        help="what fills the outboxes: suggestion batches of one suggestion (default), "
        "daily-suggestions (a day's batch: about 20 suggestions, 2.4 kB), daily statistics "
        "reports with realistic slices (their figures land in the hub's figure tables); both: "
        "one run of suggestions and one of statistics, printed side by side with the report "
        "rate as a share of the batch rate; all: the three, both shares printed",
    )
    parser.add_argument(
        "--without",
        action="append",
        choices=("rules", "figures"),
        default=[],
        help="attribution only: the statistics-report run's hub skips the business rules "
        "(every body accepted) or the landing of report figures (repeatable); the "
        "suggestion-batch run is untouched",
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON object")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL server on which fedsync_bench_* databases may be created "
        "(env FEDSYNC_BENCH_DATABASE_URL)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="fail when the hub does not hold everything after this many seconds",
    )
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between counts")
    parser.add_argument(
        "--fill-workers",
        type=int,
        default=max(1, os.cpu_count() or 1),
        help="processes filling the outboxes",
    )
    parser.add_argument(
        "--hub-arg",
        action="append",
        default=[],
        help="extra flag for the hub, e.g. --hub-arg=--db-workers=2 (repeatable)",
    )
    parser.add_argument(
        "--city-arg", action="append", default=[], help="extra flag for every city (repeatable)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir and databases")
    parser.add_argument(
        "--keep-on-failure",
        action="store_true",
        help="keep the work dir and databases when the run fails",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the end-to-end target for the engine is missed",
    )
    parser.add_argument(
        "--trace", action="store_true", help="print the hub's count at every poll (stderr)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or args.per_city < 0:
        print("bench: --batch-size must be >= 1 and --per-city >= 0", file=sys.stderr)
        return 2
    kinds = {
        "both": ("suggestions", "statistics"),
        "all": ("suggestions", "daily-suggestions", "statistics"),
    }.get(args.bodies, (args.bodies,))
    results: list[Result] = []
    try:
        for kind in kinds:
            results.append(run(argparse.Namespace(**{**vars(args), "bodies": kind})))
            print(results[-1].human(), flush=True)
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    by_kind = {r.bodies: r for r in results}
    statistics = by_kind.get("statistics")
    shares: dict[str, float] = {}
    for kind in ("suggestions", "daily-suggestions"):
        batches = by_kind.get(kind)
        if statistics is None or batches is None:
            continue
        share = shares[kind] = statistics.end_to_end_per_s / batches.end_to_end_per_s
        print(
            f"{args.engine}: statistics reports {statistics.end_to_end_per_s:,.0f}/s = "
            f"{100 * share:.0f} % of {_WHAT[kind]} {batches.end_to_end_per_s:,.0f}/s "
            f"(raw insert {batches.raw_insert_per_s:,.0f} / {statistics.raw_insert_per_s:,.0f} "
            f"rows/s); target: within 25 % "
            + (
                f"(attribution run without {' and '.join(args.without)}: not the target)"
                if args.without
                else f"({'met' if share >= 0.75 else 'MISSED'})"
            ),
            flush=True,
        )
    if args.json:
        if len(results) > 1:
            summary: dict[str, Any] = {"engine": args.engine}
            # JSON keys in snake case: daily_suggestions, statistics_vs_daily_suggestions.
            summary.update({r.bodies.replace("-", "_"): r.summary() for r in results})
            summary.update(
                {
                    f"statistics_vs_{kind.replace('-', '_')}": round(share, 3)
                    for kind, share in shares.items()
                }
            )
            print(json.dumps(summary), flush=True)
        else:
            print(json.dumps(results[0].summary()), flush=True)
    if args.check and any(
        r.end_to_end_per_s < TARGETS[r.engine] for r in results if r.bodies == "suggestions"
    ):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
