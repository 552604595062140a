"""Read latency of the province's consolidated figures over five years of reports.

    python -m benchmarks.province_figures --engine sqlite|postgresql [--years 5]
                                          [--cities 14] [--runs 200] [--json]

A fresh hub store (SQLite file in a temp dir, or a ``fedsync_bench_*`` PostgreSQL database
created and dropped here) gets, for every roster city, a statistics report for every day,
week, month, quarter and year of the last ``--years`` years (14 cities × 5 years ≈ 30,400
reports with realistic slices, ``benchmarks.ingest.statistics_body``), ingested through
``province_hub.services.ingest_batch`` so the figure tables are filled as in production (not
measured). Then, ``--runs`` times each, it times the service calls the supervisor web serves:

- ``figures`` for the last complete month (every city and the province, with KPIs);
- ``comparison`` for that month (rows, ranks, and the previous month);
- ``trend`` of the in-time closure rate over the last 12 months, province + 3 cities.

It prints p50 / p95 / max in milliseconds per call (targets of issue 9: figures and
comparison p95 ≤ 50 ms, the 12-month trend p95 ≤ 100 ms).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.ingest import DEFAULT_PG_URL, Databases, statistics_body
from benchmarks.stats import latency_summary

TARGETS_MS = {"figures": 50.0, "comparison": 50.0, "trend": 100.0}
TZ = "Asia/Shanghai"


def _bodies(city: str, years: int, today: date) -> list[Any]:
    """Every period's statistics report of ``years`` years before ``today`` (all ended)."""
    from sync.pb.fedsync.v1 import federation_pb2 as pb
    from sync.periods import period_end, period_start_for

    first = date(today.year - years, today.month, 1)
    out = []
    for code in (pb.DAY, pb.WEEK, pb.MONTH, pb.QUARTER, pb.YEAR):
        start = period_start_for(code, first)
        number = 0
        while period_end(code, start) <= today:
            number += 1
            body = statistics_body(city, number, "2026-01-01")
            body.period.kind = code
            body.period.start = start.isoformat()
            out.append(body)
            start = period_end(code, start)
    return out


def seed(url: str, cities: list[str], years: int, today: date) -> int:
    from province_hub.services import ingest_batch
    from province_hub.store import create_schema
    from sync.db import make_engine
    from sync.envelopes import build_envelope

    engine = make_engine(url)
    create_schema(engine)
    moment = datetime.now(UTC)
    total = 0
    try:
        for city in cities:
            bodies = _bodies(city, years, today)
            envelopes = [
                build_envelope(city_code=city, epoch="e" * 32, seq=i + 1, body=b, created_at=moment)
                for i, b in enumerate(bodies)
            ]
            for i in range(0, len(envelopes), 2000):
                ingest_batch(
                    engine,
                    city_code=city,
                    envelopes=envelopes[i : i + 2000],
                    tz_name=TZ,
                    max_batch=5000,
                )
            total += len(bodies)
    finally:
        engine.dispose()
    return total


def _time(call: Callable[[], Any], runs: int, *, cache: bool = True) -> dict[str, float]:
    from province_hub.consolidation import clear_cache

    call()  # warm the pool and the caches once, outside the figures
    samples = []
    for _ in range(runs):
        if not cache:
            clear_cache()
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return latency_summary(samples)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from province_hub import consolidation
    from sync.db import make_engine
    from sync.periods import today_in
    from sync.roster import load_roster

    roster = load_roster()[: args.cities]
    codes = [c.code for c in roster]
    today = today_in(TZ)
    month = date(today.year, today.month, 1) - timedelta(days=1)
    last_month = month.replace(day=1)
    workdir = Path(tempfile.mkdtemp(prefix="fedsync_bench_figures_"))
    databases = Databases(args.engine, workdir, args.pg_url)
    try:
        url = databases.create("figures")
        started = time.perf_counter()
        reports = seed(url, codes, args.years, today)
        seeded = time.perf_counter() - started
        engine = make_engine(url)
        try:
            calls: dict[str, Callable[[], Any]] = {
                "figures": lambda: consolidation.figures(
                    engine, period_kind="month", start=last_month, roster=roster
                ),
                "comparison": lambda: consolidation.comparison(
                    engine, period_kind="month", start=last_month, roster=roster
                ),
                "trend": lambda: consolidation.trend(
                    engine,
                    kpi_name="in_time_closure_rate",
                    period_kind="month",
                    last_start=last_month,
                    count=12,
                    roster=roster,
                    cities=codes[:3],
                ),
            }
            timings = {
                name: _time(call, args.runs, cache=not args.no_cache)
                for name, call in calls.items()
            }
        finally:
            engine.dispose()
    finally:
        databases.drop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "engine": args.engine,
        "cities": len(codes),
        "years": args.years,
        "reports": reports,
        "seed_seconds": round(seeded, 1),
        "runs": args.runs,
        **{name: value for name, value in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.province_figures")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--cities", type=int, default=14)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-cache", action="store_true", help="clear the figures read cache before each call"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.cities <= 14 or args.years < 1 or args.runs < 1:
        print("bench: --cities 1..14, --years >= 1, --runs >= 1", file=sys.stderr)
        return 2
    result = run(args)
    for name, target in TARGETS_MS.items():
        t = result[name]
        verdict = "met" if t["p95_ms"] <= target else "MISSED"
        print(
            f"{args.engine} {name}: p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms, max "
            f"{t['max_ms']} ms over {result['reports']:,} reports "
            f"(target p95 <= {target:.0f} ms: {verdict})"
        )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
