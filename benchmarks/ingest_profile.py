"""Where the time of one push goes, without processes or gRPC: hub side and city side.

    python -m benchmarks.ingest_profile --side hub  --engine sqlite|postgresql [--batch-size B]
    python -m benchmarks.ingest_profile --side city --engine sqlite|postgresql [--batch-size B]
    ... [--batches N] [--cprofile] [--top 25]

``--side hub`` calls ``province_hub.services.ingest_batch`` directly, batch after batch, with
what a city really sends: one heartbeat and B-1 ``SuggestionBatch`` envelopes, serialized
with ``sync.link.encode_push_request`` and parsed back as a ``PushRequest`` (as the gRPC
layer does). It prints envelopes/s of ``ingest_batch`` alone (the hub's single-thread
ceiling) and, with ``--cprofile``, the hot spots and a per-phase table.

``--side city`` fills one city's outbox and runs the delivery loop's database and encoding
steps (``Outbox.pending``, ``encode_push_request``, ``Outbox.mark_delivered``) without the
network, printing each step's share.

Databases are fresh (SQLite in a temp dir, or ``fedsync_bench_*`` PostgreSQL databases that
are dropped at the end).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.ingest import BODIES, DEFAULT_PG_URL, TZ, Databases, fill_city

#: (label, function name as cProfile records it, file fragment) for the phase table.
HUB_PHASES = (
    ("PushRequest.FromString (gRPC layer)", "FromString", ""),
    ("ingest_batch total", "ingest_batch", "province_hub/ingest.py"),
    ("  check_identity", "check_identity", "sync/envelopes.py"),
    ("  check_structure", "check_structure", "sync/envelopes.py"),
    ("    digest()", "digest", "sync/envelopes.py"),
    ("    body SerializeToString", "SerializeToString", ""),
    ("  lock_link", "lock_link", "province_hub/links.py"),
    ("  _apply", "_apply", "province_hub/ingest.py"),
    ("    broken_rule", "broken_rule", "sync/validation.py"),
    ("      today_in", "today_in", "sync/periods.py"),
    ("    _subject", "_subject", "province_hub/ingest.py"),
    ("    Timestamp.ToDatetime", "ToDatetime", "well_known_types.py"),
    ("    sync.db.bulk_insert", "bulk_insert", "sync/db.py"),
    ("    Connection.exec_driver_sql", "exec_driver_sql", "sqlalchemy/engine/base.py"),
    ("    Connection.execute (Core statements)", "execute", "sqlalchemy/engine/base.py"),
    ("      DefaultExecutionContext._init_compiled", "_init_compiled", "engine/default.py"),
    ("      do_executemany (driver)", "do_executemany", "engine/default.py"),
    ("      do_execute (driver)", "do_execute", "engine/default.py"),
    ("  UnitOfWork.commit", "commit", "sync/db.py"),
)


def build_batches(
    city_code: str, batches: int, batch_size: int, bodies: str = "suggestions"
) -> list[bytes]:
    """Serialized PushRequests: a heartbeat, then ``batch_size - 1`` consecutive envelopes
    (suggestion batches, or statistics reports with ``bodies="statistics"``)."""
    from sync.envelopes import build_envelope
    from sync.link import encode_push_request
    from sync.pb.fedsync.v1 import federation_pb2 as pb
    from sync.periods import today_in

    day = (today_in(TZ) - timedelta(days=1)).isoformat()
    epoch = uuid.uuid4().hex
    moment = datetime.now(UTC)
    make = BODIES[bodies]
    per_batch = max(1, batch_size - 1)
    requests: list[bytes] = []
    seq = 0
    for _ in range(batches):
        heartbeat = build_envelope(
            city_code=city_code, epoch=epoch, seq=0, body=pb.Heartbeat(backlog=1)
        ).SerializeToString()
        envelopes = [heartbeat]
        for _ in range(per_batch):
            seq += 1
            envelopes.append(
                build_envelope(
                    city_code=city_code,
                    epoch=epoch,
                    seq=seq,
                    body=make(city_code, seq, day),
                    created_at=moment,
                ).SerializeToString()
            )
        requests.append(encode_push_request(envelopes))
    return requests


def _phase_table(stats: pstats.Stats, phases: Sequence[tuple[str, str, str]], total: float) -> str:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    lines = [f"{'phase':<46} {'cum s':>8} {'% of wall':>9}"]
    for label, name, fragment in phases:
        cumulative = sum(
            value[3]
            for (filename, _line, function), value in raw.items()
            if fragment in filename
            and (
                function == name
                or function == f"<built-in method {name}>"
                or function.startswith(f"<method '{name}' ")
            )
        )
        lines.append(f"{label:<46} {cumulative:8.3f} {100 * cumulative / total:8.1f}%")
    return "\n".join(lines)


def _top(stats: pstats.Stats, top: int) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def profile_hub(url: str, args: argparse.Namespace) -> None:
    from province_hub import services
    from province_hub.store import create_schema
    from sync.db import make_engine
    from sync.pb.fedsync.v1 import federation_pb2 as pb
    from sync.roster import load_roster

    code = load_roster()[0].code
    engine = make_engine(url)
    try:
        create_schema(engine)
        requests = build_batches(code, args.warmup + args.batches, args.batch_size, args.bodies)
        for data in requests[: args.warmup]:  # compile caches, first-contact path
            services.ingest_batch(
                engine,
                city_code=code,
                envelopes=pb.PushRequest.FromString(data).envelopes,
                tz_name=TZ,
                max_batch=5000,
            )
        profiler = cProfile.Profile() if args.cprofile else None
        envelopes = 0
        cpu_started = time.process_time()
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for data in requests[args.warmup :]:
            request = pb.PushRequest.FromString(data)
            result = services.ingest_batch(
                engine, city_code=code, envelopes=request.envelopes, tz_name=TZ, max_batch=5000
            )
            envelopes += result.accepted
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    finally:
        engine.dispose()
    print(
        f"hub/{args.engine}/{args.bodies}: ingest_batch alone, "
        f"{args.batches} batches of {args.batch_size}"
        f"{''.join(f', without {part}' for part in args.without)}: "
        f"{envelopes / wall:,.0f} envelopes/s ({1e6 * wall / envelopes:.1f} µs/envelope wall, "
        f"{1e6 * cpu / envelopes:.1f} µs CPU{', under cProfile' if profiler else ''})"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        print(_phase_table(stats, HUB_PHASES, wall))
        print(_top(stats, args.top))


def profile_city(url: str, args: argparse.Namespace) -> None:
    from sync.db import make_engine
    from sync.link import encode_push_request
    from sync.outbox import Outbox
    from sync.periods import today_in
    from sync.roster import load_roster

    code = load_roster()[0].code
    per_batch = max(1, args.batch_size - 1)
    count = per_batch * args.batches
    day = (today_in(TZ) - timedelta(days=1)).isoformat()
    fill_city(url, code, count, day)
    engine = make_engine(url)
    outbox = Outbox(engine)
    spent = {"pending": 0.0, "encode": 0.0, "mark_delivered": 0.0, "snapshot (heartbeat)": 0.0}
    profiler = cProfile.Profile() if args.cprofile else None
    try:
        delivered = 0
        outbox.snapshot()  # open the pooled connection
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        while True:
            t0 = time.perf_counter()
            rows = outbox.pending(after_seq=delivered, limit=per_batch)
            t1 = time.perf_counter()
            if not rows:
                break
            encode_push_request([row.envelope for row in rows])
            t2 = time.perf_counter()
            outbox.mark_delivered(rows[-1][0])
            t3 = time.perf_counter()
            outbox.snapshot()
            t4 = time.perf_counter()
            delivered = rows[-1][0]
            spent["pending"] += t1 - t0
            spent["encode"] += t2 - t1
            spent["mark_delivered"] += t3 - t2
            spent["snapshot (heartbeat)"] += t4 - t3
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - started
    finally:
        engine.dispose()
    print(
        f"city/{args.engine}: delivery steps without the network, {args.batches} batches of "
        f"{per_batch}: {count / wall:,.0f} envelopes/s ({1e6 * wall / count:.1f} µs/envelope)"
    )
    for step, seconds in spent.items():
        print(
            f"  {step:<22} {seconds:7.3f}s {100 * seconds / wall:5.1f}%  "
            f"{1e3 * seconds / args.batches:7.2f} ms/batch"
        )
    print("  (the link takes a heartbeat snapshot once per --heartbeat-seconds, not per batch)")
    if profiler:
        print(_top(pstats.Stats(profiler), args.top))


def skip_for_attribution(parts: Sequence[str]) -> None:
    """Replace the hub's rule check or figure landing by a no-op (``--without``): what the
    ingest then costs less is what that part costs. Never a product path."""
    import province_hub.ingest as ingest

    names = vars(ingest)  # the module's globals, as its functions look them up
    if "rules" in parts:
        names["broken_rule"] = lambda *args, **kwargs: None
    if "figures" in parts:
        names["land_figures"] = lambda *args, **kwargs: None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest_profile",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--side", choices=("hub", "city"), required=True)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--bodies",
        choices=tuple(BODIES),
        default="suggestions",
        help="what the hub side ingests (statistics: reports with their slices; "
        "daily-suggestions: a day's batch of about 20 suggestions)",
    )
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--cprofile", action="store_true", help="profile and print hot spots")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument(
        "--without",
        choices=("rules", "figures"),
        action="append",
        default=[],
        help="for attribution only (hub side): skip the business rules (every body accepted) "
        "or the landing of report figures, to see what they cost; repeatable",
    )
    args = parser.parse_args(argv)
    skip_for_attribution(args.without)
    workdir = Path(tempfile.mkdtemp(prefix="fedsync_bench_"))
    databases = Databases(args.engine, workdir, args.pg_url)
    try:
        url = databases.create(f"profile_{args.side}")
        (profile_hub if args.side == "hub" else profile_city)(url, args)
    finally:
        databases.drop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
