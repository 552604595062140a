"""Notice fan-out: a notice committed at the hub → persisted by every connected city.

```
python -m benchmarks.notice_fanout --engine sqlite      [--notices 200] [--cities 14] [--json]
python -m benchmarks.notice_fanout --engine postgresql  [--replicas 1|2] [--json]
```

One run, in a fresh temporary directory (see benchmarks/README.md for the reading):

1. **Set-up (not measured).** A PKI for the roster, a fresh hub database and one per city
   (SQLite files, or PostgreSQL databases ``fedsync_bench_<run>_*`` on ``--pg-url``).
   Replica A of the hub runs **in this process** (``province_hub.app.create_server``, as the
   hub process builds it), because a notice sent from the supervisor web is created inside
   the hub process: the service commits it and wakes the streams of this replica
   (``NoticeBroker.notify``). With ``--replicas 2`` (PostgreSQL) replica B is a
   ``fedsync hub`` process on the same database; every other city subscribes to B, which
   hears of A's notices only through LISTEN/NOTIFY. The cities are ``fedsync city``
   processes over loopback mutual TLS. Warm-up notices are sent until every city holds
   them (every stream is live).
2. **Measured.** ``--notices`` announcements to all cities, one every ``--interval``
   seconds, through ``province_hub.services.send_notice``. For each, the hub's commit time is
   read right after the commit returns (``time.time()``), and each city's ``received_at``
   from its own store at the end (``datetime.now(UTC)`` as its persisting transaction
   begins): same machine, same clock. The latency of a notice is the last city's
   ``received_at`` minus the hub's commit.
3. **City commit lag.** ``received_at`` is taken just before the city's transaction, so what
   the city's commit adds after it is measured apart: ``city_node.services.accept_notice`` on
   a fresh city store of the same engine, ``--notices`` times, from its ``received_at``
   moment to the commit's return. ``p99_upper_ms`` adds that lag's p99 to the p99 above: a
   bound of "commit to the last city's commit".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.flags import with_extra
from benchmarks.ingest import (
    DEFAULT_PG_URL,
    BenchError,
    Child,
    Databases,
    Fleet,
    _free_port,
    _tail,
)

TARGET_P99_MS = 50.0


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def summary(values_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p95_ms": round(percentile(values_ms, 95), 2),
        "p99_ms": round(percentile(values_ms, 99), 2),
        "max_ms": round(max(values_ms), 2),
    }


def received(urls: dict[str, str]) -> dict[str, dict[int, float]]:
    """Each city's inbox: notice seq → ``received_at`` (epoch seconds)."""
    from sqlalchemy import select

    from city_node.store import InboxNotice
    from sync.db import make_engine

    held: dict[str, dict[int, float]] = {}
    for code, url in urls.items():
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(InboxNotice.notice_seq, InboxNotice.received_at))
                held[code] = {int(seq): at.timestamp() for seq, at in rows}
        except Exception:
            held[code] = {}  # not created yet: the city is still starting
        finally:
            engine.dispose()
    return held


async def wait_held(
    urls: dict[str, str], seqs: set[int], *, within: float, fleet: Fleet
) -> dict[str, dict[int, float]]:
    """Until every city holds every seq in ``seqs``; their inboxes."""
    deadline = time.monotonic() + within
    while True:
        held = await asyncio.to_thread(received, urls)
        missing = {code: len(seqs - set(inbox)) for code, inbox in held.items()}
        if not any(missing.values()):
            return held
        dead = fleet.dead()
        if dead:
            raise BenchError("a process exited:\n" + "\n".join(child.describe() for child in dead))
        if time.monotonic() > deadline:
            short = {code: n for code, n in missing.items() if n}
            raise BenchError(f"after {within:.0f}s cities still miss notices: {short}")
        await asyncio.sleep(0.25)


def city_commit_lag(engine_name: str, databases: Databases, count: int) -> list[float]:
    """ms from ``received_at`` to the return of ``accept_notice``'s commit, ``count`` times."""
    from city_node import services as city_services
    from city_node.store import create_schema as create_city_schema
    from sync.db import make_engine
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    engine = make_engine(databases.create("city_lag"))
    try:
        create_city_schema(engine)
        city_services.open_store(engine, "620100")
        lags: list[float] = []
        for number in range(1, count + 1):
            notice = pb.Notice(
                seq=number, kind=pb.ANNOUNCEMENT, priority=pb.NORMAL, title=f"lag {number}"
            )
            notice.created_at.FromDatetime(datetime.now(UTC))
            moment = datetime.now(UTC)
            city_services.accept_notice(engine, notice, now=moment)
            lags.append((time.time() - moment.timestamp()) * 1000)
        return lags
    finally:
        engine.dispose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from province_hub import services as hub_services
    from province_hub.app import create_server
    from province_hub.settings import HubSettings
    from province_hub.store import create_schema as create_hub_schema
    from sync.db import make_engine
    from sync.pb.fedsync.v1 import federation_pb2 as pb
    from sync.pki import init_pki
    from sync.roster import load_roster

    roster = [city.code for city in load_roster()]
    if not 1 <= args.cities <= len(roster):
        raise BenchError(f"--cities must be 1..{len(roster)}")
    if args.replicas not in (1, 2):
        raise BenchError("--replicas must be 1 or 2")
    if args.replicas == 2 and args.engine != "postgresql":
        raise BenchError("--replicas 2 needs --engine postgresql (replicas share one database)")
    codes = roster[: args.cities]
    workdir = Path(tempfile.mkdtemp(prefix="fedsync_bench_fanout_"))
    databases = Databases(args.engine, workdir, args.pg_url)
    fleet = Fleet()
    hub_a: Any = None
    keep = args.keep
    try:
        pki_dir = workdir / "pki"
        init_pki(pki_dir, city_codes=roster, hub_hosts=("localhost", "127.0.0.1"))
        hub_url = databases.create("hub")
        city_urls = {code: databases.create(f"city_{code}") for code in codes}
        engine = make_engine(hub_url)
        create_hub_schema(engine)
        engine.dispose()

        hub_a = await create_server(
            HubSettings(
                listen="127.0.0.1:0",
                database_url=hub_url,
                pki_dir=pki_dir,
                reminder_minutes=0,
                secret_key_file=workdir / "hub.web-key",
            )
        )
        ports = {"A": hub_a.port}
        if args.replicas == 2:
            ports["B"] = _free_port()
            hub_b = fleet.spawn(
                "hub-B",
                [
                    "-m",
                    "sync.cli",
                    "hub",
                    *with_extra(
                        [
                            "--listen",
                            f"127.0.0.1:{ports['B']}",
                            "--database-url",
                            hub_url,
                            "--pki-dir",
                            str(pki_dir),
                            "--reminder-minutes",
                            "0",
                        ],
                        args.hub_arg,
                    ),
                ],
                workdir,
            )
            await _wait_output(hub_b, "listening on port", fleet, within=60)
        replica_of = {code: "AB"[i % args.replicas] for i, code in enumerate(codes)}
        for code in codes:
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
                            f"127.0.0.1:{ports[replica_of[code]]}",
                            "--database-url",
                            city_urls[code],
                            "--pki-dir",
                            str(pki_dir),
                            "--no-schedule",
                            "--heartbeat-seconds",
                            "5",
                            "--backoff-initial",
                            "0.05",
                            "--backoff-max",
                            "0.5",
                        ],
                        args.city_arg,
                    ),
                ],
                workdir,
            )

        async def send(title: str) -> tuple[int, float]:
            def create() -> tuple[int, float]:
                notice = hub_services.send_notice(
                    hub_a.engine,
                    notice=pb.Notice(kind=pb.ANNOUNCEMENT, title=title, body="fan-out bench"),
                    roster_codes=codes,
                )
                return notice.seq, time.time()  # right after the commit returned

            seq, committed = await asyncio.to_thread(create)
            # What the supervisor web does after the service returns: wake this replica's
            # streams (replica B hears of it through NOTIFY at the commit).
            hub_a.broker.notify(codes)
            return seq, committed

        log(args, f"work dir {workdir}; waiting for {len(codes)} cities to connect")
        # Starting 14 Python processes takes a while on a busy 2-core machine; not measured.
        await _wait_connected(city_urls, fleet, within=args.start_timeout)
        log(args, "connected; warming up until every city streams")
        warm = {(await send(f"warm-up {n}"))[0] for n in range(args.warmup)}
        await wait_held(city_urls, warm, within=args.timeout, fleet=fleet)

        log(args, f"sending {args.notices} notices, one every {args.interval}s")
        load_before = os.getloadavg()
        commits: dict[int, float] = {}
        next_at = time.monotonic()
        for number in range(args.notices):
            seq, committed = await send(f"notice {number + 1}")
            commits[seq] = committed
            next_at += args.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        held = await wait_held(city_urls, set(commits), within=args.timeout, fleet=fleet)
        load_after = os.getloadavg()

        latencies: list[float] = []
        #: To the first city: how much of a notice's latency is the spread across cities.
        firsts: list[float] = []
        by_replica: dict[str, list[float]] = {replica: [] for replica in ports}
        for seq, committed in commits.items():
            latencies.append((max(held[code][seq] for code in codes) - committed) * 1000)
            firsts.append((min(held[code][seq] for code in codes) - committed) * 1000)
            for replica in ports:
                group = [code for code in codes if replica_of[code] == replica]
                if group:
                    last = max(held[code][seq] for code in group)
                    by_replica[replica].append((last - committed) * 1000)
        lags = await asyncio.to_thread(city_commit_lag, args.engine, databases, args.notices)
        result: dict[str, Any] = {
            "engine": args.engine,
            "replicas": args.replicas,
            "cities": len(codes),
            "notices": len(commits),
            "interval_s": args.interval,
            **summary(latencies),
            "target_p99_ms": TARGET_P99_MS,
            "first_city_p50_ms": round(percentile(firsts, 50), 2),
            "first_city_p99_ms": round(percentile(firsts, 99), 2),
            "city_commit_lag_p50_ms": round(percentile(lags, 50), 2),
            "city_commit_lag_p99_ms": round(percentile(lags, 99), 2),
        }
        result["p99_upper_ms"] = round(result["p99_ms"] + result["city_commit_lag_p99_ms"], 2)
        result["met"] = result["p99_upper_ms"] <= TARGET_P99_MS
        if args.replicas == 2:
            result["by_replica"] = {
                f"{replica} ({'creating' if replica == 'A' else 'other'} replica)": summary(v)
                for replica, v in by_replica.items()
            }
        result["load_average"] = {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        }
        return result
    except BaseException:
        if args.keep_on_failure:
            keep = True
        raise
    finally:
        # Replica A lives in this process's loop: it keeps serving while the cities stop.
        await asyncio.to_thread(fleet.stop, fleet.children)
        if hub_a is not None:
            await hub_a.stop(grace=1.0)
        if keep:
            print(f"bench: kept {workdir} (databases kept too)", file=sys.stderr)
        else:
            databases.drop_all()
            shutil.rmtree(workdir, ignore_errors=True)


async def _wait_connected(urls: dict[str, str], fleet: Fleet, *, within: float) -> None:
    """Until every city's link state says connected (it has said Hello to its hub)."""
    from sqlalchemy import text

    from sync.db import make_engine

    def connected(url: str) -> bool:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                return conn.execute(text("SELECT state FROM link_state")).scalar() == "connected"
        except Exception:
            return False  # the store is not created yet
        finally:
            engine.dispose()

    deadline = time.monotonic() + within
    waiting = dict(urls)
    while waiting:
        waiting = {code: url for code, url in waiting.items() if not connected(url)}
        if not waiting:
            return
        if fleet.dead():
            raise BenchError("a process exited:\n" + "\n".join(c.describe() for c in fleet.dead()))
        if time.monotonic() > deadline:
            raise BenchError(f"cities not connected after {within:.0f}s: {sorted(waiting)}")
        await asyncio.sleep(0.25)


async def _wait_output(child: Child, text: str, fleet: Fleet, *, within: float) -> None:
    deadline = time.monotonic() + within
    while text not in _tail(child.out):
        if fleet.dead():
            raise BenchError("a process exited:\n" + "\n".join(c.describe() for c in fleet.dead()))
        if time.monotonic() > deadline:
            raise BenchError(f"{child.name}: {text!r} not seen after {within:.0f}s")
        await asyncio.sleep(0.05)


def log(args: argparse.Namespace, message: str) -> None:
    if args.verbose:
        print(f"bench: {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.notice_fanout",
        description="Notice fan-out latency: hub commit → the last of the cities persisted it.",
    )
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server where databases may be made"
    )
    parser.add_argument("--cities", type=int, default=14, help="connected cities (roster order)")
    parser.add_argument("--notices", type=int, default=200, help="notices measured")
    parser.add_argument("--warmup", type=int, default=3, help="notices sent before measuring")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.5,
        help="seconds between two notices sent (each notice's own fan-out is measured; sent "
        "faster than a busy machine fans them out, they queue behind each other)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="hub replicas (2: PostgreSQL, every other city on a second hub process)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="longest wait for the cities to hold notices"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=300, help="longest wait for the cities to start"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as well")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and databases")
    parser.add_argument("--keep-on-failure", action="store_true")
    parser.add_argument("--hub-arg", action="append", default=[], help="extra flag for hub B")
    parser.add_argument("--city-arg", action="append", default=[], help="extra city flag")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.notices < 1 or args.interval < 0:
        print("bench: --notices must be >= 1 and --interval >= 0", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(run(args))
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    load = result["load_average"]["after"]
    print(
        f"notice fan-out {result['engine']}, {result['replicas']} replica(s), "
        f"{result['cities']} cities, {result['notices']} notices every {result['interval_s']}s: "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms "
        f"(max {result['max_ms']}); city commit lag p99 {result['city_commit_lag_p99_ms']} ms; "
        f"p99 bound {result['p99_upper_ms']} ms, target <= {TARGET_P99_MS:.0f} ms: "
        f"{'met' if result['met'] else 'MISSED'}; load average {load[0]}"
    )
    for name, figures in result.get("by_replica", {}).items():
        print(f"  cities on replica {name}: {figures}")
    if args.json:
        print(json.dumps(result))
    return 1 if args.check and not result["met"] else 0


if __name__ == "__main__":
    sys.exit(main())
