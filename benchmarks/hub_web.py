"""Supervisor web latency over five years of a province's statistics reports.

    python -m benchmarks.hub_web --engine sqlite|postgresql [--cities 14] [--years 5]
                                 [--requests 200] [--reuse] [--json]

1. fills a hub store through the hub's own ingest service (``ingest_batch``, as a city's
   Push lands): for every city, every day, week, month, quarter and year of the last
   ``--years`` years that has ended, one approved statistics report with realistic
   category, channel and operator slices (the ingest benchmark's drawn bodies, scaled to the
   period's length) — 14 cities × 5 years ≈ 30,400 reports;
2. serves the supervisor web (``province_hub.web.app.create_app``) with a real uvicorn on
   loopback, in its own process, and signs in once through the login form (a session
   cookie: HTTP Basic would time scrypt, not the figures);
3. times ``--requests`` sequential GETs of each: ``/api/v1/figures`` for the last month, the
   city comparison for that month, the 12-month trend of a KPI with two cities; prints
   p50/p95/max in milliseconds (and, with ``--json``, one JSON object), beside the targets
   (figures and comparison p95 <= 50 ms, trend p95 <= 100 ms).

``--reuse`` keeps the filled store (SQLite file under ``--cache-dir``, the city report
benchmark's, or the PostgreSQL
database ``fedsync_bench_hubweb``) for the next run; otherwise it is created and dropped.
Tests never assert these times; this harness only prints them.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.city_reports import DEFAULT_CACHE_DIR
from benchmarks.ingest import DEFAULT_PG_URL, TZ, _draw_statistics
from benchmarks.stats import latency_summary

TARGETS_MS = {"figures": 50.0, "comparison": 50.0, "trend": 100.0}
PG_DB = "fedsync_bench_hubweb"
PASSWORD = "bench-password-1"
_KINDS = ("day", "week", "month", "quarter", "year")


def _scaled(template: Any, factor: int) -> Any:
    """A copy of a daily report with every count multiplied (the rules still hold)."""
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    r = pb.StatisticsReport()
    r.CopyFrom(template)
    if factor == 1:
        return r
    for name in (
        "complaints_received",
        "suggestions_received",
        "enquiries_received",
        "handled",
        "closed",
        "closed_in_time",
        "overtime_open",
        "repeat_complaints",
        "escalations_raised",
        "complaints_closed",
    ):
        setattr(r, name, getattr(r, name) * factor)
    for name in (
        "very_satisfied",
        "satisfied",
        "neutral",
        "dissatisfied",
        "surveyed",
        "complaints_surveyed",
    ):
        setattr(r.satisfaction, name, getattr(r.satisfaction, name) * factor)
    r.satisfaction.unreachable *= factor
    for s in (*r.by_category, *r.by_channel):
        for name in (
            "complaints",
            "enquiries",
            "suggestions",
            "closed",
            "closed_in_time",
            "repeat_complaints",
        ):
            setattr(s, name, getattr(s, name) * factor)
    for op in r.operators:
        op.registered *= factor
        op.closed *= factor
    return r


def periods(today: date, years: int) -> list[tuple[str, date, int]]:
    """Every (kind, start, length in days) of the last ``years`` years that has ended."""
    from sync.pb.fedsync.v1 import federation_pb2 as pb
    from sync.periods import period_end, period_start_for

    codes = {
        "day": pb.DAY,
        "week": pb.WEEK,
        "month": pb.MONTH,
        "quarter": pb.QUARTER,
        "year": pb.YEAR,
    }
    first = date(today.year - years, today.month, 1)
    out = []
    for kind in _KINDS:
        code = codes[kind]
        start = period_start_for(code, first)
        while True:
            end = period_end(code, start)
            if end > today:
                break
            if start >= first:
                out.append((kind, start, (end - start).days))
            start = end
    return out


def fill(url: str, *, cities: int, years: int, quiet: bool) -> dict[str, Any]:
    """Ingest the reports; return how many and how long it took."""
    from province_hub import staff
    from province_hub.services import ingest_batch
    from province_hub.store import create_schema
    from sync.db import make_engine
    from sync.envelopes import build_envelope
    from sync.pb.fedsync.v1 import federation_pb2 as pb
    from sync.roster import load_roster

    engine = make_engine(url)
    create_schema(engine)
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(TZ)).date()
    plan = periods(today, years)
    kind_codes = {
        "day": pb.DAY,
        "week": pb.WEEK,
        "month": pb.MONTH,
        "quarter": pb.QUARTER,
        "year": pb.YEAR,
    }
    started = time.perf_counter()
    total = 0
    for city in load_roster()[:cities]:
        envelopes = []
        for seq, (kind, start, days) in enumerate(plan, start=1):
            body = _scaled(_draw_statistics(city.code, seq % 97), days)
            body.period.kind = kind_codes[kind]
            body.period.start = start.isoformat()
            envelopes.append(
                build_envelope(
                    city_code=city.code, epoch="b" * 32, seq=seq, body=body, created_at=now
                )
            )
        for i in range(0, len(envelopes), 1000):
            result = ingest_batch(
                engine,
                city_code=city.code,
                envelopes=envelopes[i : i + 1000],
                tz_name=TZ,
                max_batch=1000,
                now=now,
            )
            if result.quarantined:
                raise RuntimeError(f"{city.code}: {result.quarantined} reports quarantined")
        total += len(envelopes)
        if not quiet:
            print(f"  {city.code}: {len(envelopes)} reports", file=sys.stderr, flush=True)
    staff.add_staff(
        engine, staff_id="bench", name="bench", role="statistics_manager", password=PASSWORD
    )
    engine.dispose()
    return {"reports": total, "seconds": round(time.perf_counter() - started, 1)}


@contextmanager
def serving(url: str, cities: int, *, cache: bool = True) -> Iterator[str]:
    """The supervisor web over ``url`` in its own process (as ``fedsync hub`` serves it):
    a server thread beside the measuring client would share its GIL and time thread
    hand-offs, not the web."""
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.hub_web",
            "--serve",
            url,
            "--port",
            str(port),
            "--cities",
            str(cities),
            "--engine",
            "sqlite",
            *([] if cache else ["--no-cache"]),
        ],
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the web exited with code {proc.returncode}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the web did not listen within 60 s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve(url: str, port: int, cities: int, *, cache: bool = True) -> None:
    """Run the supervisor web over ``url`` until terminated (the child of :func:`serving`);
    a store filled by an older version is migrated first, as ``fedsync hub`` would."""
    import uvicorn

    from province_hub.consolidation import core
    from province_hub.settings import HubSettings
    from province_hub.store import create_schema
    from province_hub.web.app import create_app
    from province_hub.web.context import HubWeb
    from sync.db import make_engine
    from sync.roster import load_roster

    if not cache:
        core.CACHE_SIZE = 0  # every read goes to the store (decoded slices stay kept)
    engine = make_engine(url, pool_size=8)
    create_schema(engine)
    hub = HubWeb(
        engine=engine,
        roster=load_roster()[:cities],
        zone=ZoneInfo(TZ),
        deadlines=HubSettings().deadlines(),
    )
    app = create_app(hub, secret_key=b"bench-" * 6)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def measure(url: str, requests: int) -> dict[str, dict[str, float]]:
    import re

    import httpx

    from province_hub.supervision import last_complete_start
    from sync.roster import load_roster

    today = datetime.now(ZoneInfo(TZ)).date()
    month = last_complete_start("month", today).isoformat()
    two = [c.code for c in load_roster()[:2]]
    calls: dict[str, tuple[str, dict[str, str | list[str]]]] = {
        "figures": ("/api/v1/figures", {"period": "month", "start": month}),
        "comparison": ("/api/v1/comparison", {"period": "month", "start": month}),
        "trend": (
            "/api/v1/trend",
            {"kpi": "satisfaction_rate", "period": "month", "last": month, "cities": two},
        ),
    }
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        login = client.post(
            "/login", data={"csrf_token": token.group(1), "staff_id": "bench", "password": PASSWORD}
        )
        if login.status_code != 303:
            raise RuntimeError(f"login refused: {login.status_code}")
        for name, (path, params) in calls.items():
            for _ in range(10):  # warm caches and connections
                client.get(path, params=params).raise_for_status()
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                r = client.get(path, params=params)
                times.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            out[name] = {**latency_summary(times, 1), "target_p95_ms": TARGETS_MS[name]}
        # What was measured was real data: the month holds every city's report.
        data = client.get("/api/v1/figures", params={"period": "month", "start": month}).json()
        out["figures"]["cities_reporting"] = data["province"]["cities_reporting"]
    return out


def _pg_url(server: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(server).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def _pg(server: str, sql: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute(sql).fetchall() if sql.startswith("SELECT") else conn.execute(sql)


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory(prefix="fedsync-bench-web-")
    cleanup = tmp.cleanup
    if args.engine == "sqlite":
        base = args.cache_dir if args.reuse else Path(tmp.name)
        base.mkdir(parents=True, exist_ok=True)
        path = base / f"hubweb-{args.cities}x{args.years}.sqlite"
        url = f"sqlite:///{path}"
        exists = args.reuse and path.exists()
    else:
        name = PG_DB if args.reuse else f"{PG_DB}_{int(time.time())}"
        exists = args.reuse and bool(
            _pg(args.pg_url, f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        )
        if not exists:
            _pg(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _pg(args.pg_url, f'CREATE DATABASE "{name}"')
        url = _pg_url(args.pg_url, name)
        if not args.reuse:
            previous = cleanup

            def cleanup() -> None:
                previous()
                _pg(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        loaded = (
            {"reports": None, "seconds": 0, "reused": True}
            if exists
            else fill(url, cities=args.cities, years=args.years, quiet=args.json)
        )
        with serving(url, args.cities, cache=not args.no_cache) as web:
            results = measure(web, args.requests)
    finally:
        cleanup()
    return {
        "benchmark": "hub_web",
        "engine": args.engine,
        "cities": args.cities,
        "years": args.years,
        "load": loaded,
        "requests": args.requests,
        "cache": not args.no_cache,
        "results": results,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--engine", choices=("sqlite", "postgresql"), required=True)
    p.add_argument("--cities", type=int, default=14)
    p.add_argument("--years", type=int, default=5)
    p.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    p.add_argument("--reuse", action="store_true", help="keep the filled store for next time")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (admin) URL")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="serve without the figures read cache (every request reads the store)",
    )
    p.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)  # the server child
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.cities, cache=not args.no_cache)
        return 0
    out = run(args)
    if args.json:
        print(json.dumps(out))
        return 0
    load = out["load"]
    print(
        f"hub_web {args.engine}{' (no cache)' if args.no_cache else ''}: "
        f"{args.cities} cities x {args.years} years, "
        + (
            "store reused"
            if load.get("reused")
            else f"{load['reports']} reports ingested in {load['seconds']} s"
        )
    )
    for name, r in out["results"].items():
        ok = "ok" if r["p95_ms"] <= r["target_p95_ms"] else "OVER TARGET"
        print(
            f"  {name:<11} p50 {r['p50_ms']:>7.1f} ms  p95 {r['p95_ms']:>7.1f} ms  "
            f"max {r['max_ms']:>7.1f} ms  (target p95 <= {r['target_p95_ms']:.0f} ms: {ok})"
        )
    return 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        sys.exit(main())
