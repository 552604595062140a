"""Register + dispatch throughput through the city's service layer (``city_node.tickets``).

    python -m benchmarks.city_register --engine sqlite|postgresql [--tickets K] [--runs 3]
                                       [--preload N] [--threads 4] [--json] [--cprofile]

What one run does:

1. **Store (not measured).** A fresh city store: a SQLite file in a temp dir (opened by
   ``sync.db.make_engine``: WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``, as the product
   runs) or a fresh PostgreSQL database ``fedsync_bench_city_reg_*`` (dropped at the end),
   migrated by ``create_schema`` and opened for city 620100. With ``--preload N`` (default
   100,000) it first holds N tickets of the last 24 months, seeded as by
   ``benchmarks.city_reports``, so repeat detection searches a populated index.
2. **Workload (not measured).** K realistic operator forms: customers drawn from the same
   pool as the preloaded tickets (some are repeat complaints), kinds, categories, channels
   and tiers in the report benchmark's shares, content in Chinese, ~200 operators (juniors
   take ordinary customers, seniors the priority tiers, who are theirs to serve) and 30
   branches.
3. **Modes (measured, K tickets each, median of ``--runs``):**

   * ``form`` — ``register(..., then=Action.DISPATCH, branch=...)``: the operator's form,
     one transaction per ticket;
   * ``two_step`` — ``register(...)`` and then ``perform(..., Dispatch(branch=...))``: two
     transactions per ticket;
   * ``batch`` — ``register_many`` with ``--batch-size`` intakes (default 100) per
     transaction, each dispatched in its intake;
   * ``concurrent`` — ``--threads`` operators (default 4) doing ``form`` at the same time,
     each with its own connection from the engine's pool (PostgreSQL; with
     ``--concurrent-sqlite`` also on SQLite, where ``BEGIN IMMEDIATE`` serialises them).

   Every mode prints tickets/s (wall) and the process CPU µs per ticket: wall well above
   CPU means the time goes to waiting (fsync, the server, locks).
4. **Output.** One human line per mode and, with ``--json``, one JSON object.
   ``--cprofile`` profiles one extra ``form`` run and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.city_reports import (
    BRANCHES,
    CATEGORY_WEIGHTS,
    CHANNELS,
    CITY_CODE,
    CONTENTS,
    DEFAULT_PG_URL,
    GIVEN,
    JUNIORS,
    KINDS,
    SENIORS,
    SURNAMES,
    TIERS,
    BenchError,
    SeedPlan,
    _cumulative,
    _pg_url,
    history_window,
    load_average,
    log,
    pg_create,
    pg_drop,
    seed,
)

DEFAULT_TICKETS = 2_000
DEFAULT_PRELOAD = 100_000
DB_PREFIX = "fedsync_bench_city_reg_"
#: Target from the issue: register + dispatch through the services, tickets per second.
TARGET_PER_S = 2_000
MODES = ("form", "two_step", "batch", "concurrent")


# --- workload ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """One operator form: who types it, the ticket, the branch it is dispatched to."""

    actor: Any  # city_node.context.Actor
    new: Any  # city_node.tickets.NewTicket
    branch: str


def make_forms(count: int, customers: int, rng: random.Random) -> list[Form]:
    from city_node.context import Actor
    from city_node.domain import Role
    from city_node.tickets import NewTicket
    from sync.categories import CategoryTree

    leaves = [c.code for c in CategoryTree.load() if c.parent is not None]
    kinds = rng.choices([k for k, _ in KINDS], cum_weights=_cumulative(KINDS), k=count)
    channels = rng.choices([c for c, _ in CHANNELS], cum_weights=_cumulative(CHANNELS), k=count)
    tiers = rng.choices([t for t, _ in TIERS], cum_weights=_cumulative(TIERS), k=count)
    categories = rng.choices(
        leaves, cum_weights=_cumulative([CATEGORY_WEIGHTS.get(c, 3) for c in leaves]), k=count
    )
    juniors = [Actor(op, Role.OPERATOR_JUNIOR) for op in JUNIORS]
    seniors = [Actor(op, Role.OPERATOR_SENIOR) for op in SENIORS]
    forms = []
    for kind, channel, tier, category in zip(kinds, channels, tiers, categories, strict=True):
        # The same skewed customer pool as the seeded store: regulars call again.
        customer = int(customers * rng.random() ** 3)
        new = NewTicket(
            kind=kind,
            category=category,
            channel=channel,
            customer_phone=f"139{customer:08d}",
            customer_name=SURNAMES[customer % len(SURNAMES)] + GIVEN[customer % 29 % len(GIVEN)],
            tier=tier,
            content=rng.choice(CONTENTS[kind]),
        )
        # Priority tiers are seniors' customers (a junior could only hand them over).
        actor = rng.choice(juniors) if tier == "ordinary" else rng.choice(seniors)
        forms.append(Form(actor, new, rng.choice(BRANCHES)))
    return forms


# --- modes ---------------------------------------------------------------------------------------


def run_form(ctx: Any, forms: Sequence[Form]) -> None:
    from city_node import tickets
    from city_node.domain import Action

    for f in forms:
        tickets.register(ctx, f.actor, f.new, then=Action.DISPATCH, branch=f.branch)


def run_two_step(ctx: Any, forms: Sequence[Form]) -> None:
    from city_node import commands, tickets

    for f in forms:
        ticket = tickets.register(ctx, f.actor, f.new)
        tickets.perform(ctx, f.actor, ticket.id, commands.Dispatch(branch=f.branch))


def run_batch(ctx: Any, forms: Sequence[Form], batch_size: int) -> None:
    from city_node import tickets
    from city_node.context import Actor
    from city_node.domain import Action, Role
    from city_node.tickets import Intake

    # Bulk intake (web forms, letters): one operator keys in a pile per call. A senior, so
    # that every tier may be dispatched in the same intake (a junior could not for VIPs).
    for first in range(0, len(forms), batch_size):
        pile = forms[first : first + batch_size]
        clerk = Actor(SENIORS[first // batch_size % len(SENIORS)], Role.OPERATOR_SENIOR)
        intakes = [Intake(f.new, then=Action.DISPATCH, branch=f.branch) for f in pile]
        tickets.register_many(ctx, clerk, intakes)


def run_concurrent(ctx: Any, forms: Sequence[Form], threads: int) -> None:
    shares = [forms[i::threads] for i in range(threads)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def operator(share: Sequence[Form]) -> None:
        try:
            start.wait()
            run_form(ctx, share)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=operator, args=(s,)) for s in shares]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise BenchError(f"an operator thread failed: {errors[0]!r}")


@dataclass
class ModeResult:
    mode: str
    per_s: float
    runs_per_s: list[float]
    cpu_us_per_ticket: float
    detail: str = ""


def measure(
    name: str,
    action: Callable[[Sequence[Form]], None],
    workloads: Sequence[Sequence[Form]],
    detail: str = "",
) -> ModeResult:
    rates, cpus = [], []
    for forms in workloads:
        cpu0, t0 = time.process_time(), time.perf_counter()
        action(forms)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        rates.append(len(forms) / wall)
        cpus.append(cpu / len(forms) * 1e6)
    return ModeResult(name, statistics.median(rates), rates, statistics.median(cpus), detail)


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Result:
    engine: str
    tickets: int
    preload: int
    modes: list[ModeResult]
    load: str
    profile: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "engine": self.engine,
            "tickets_per_run": self.tickets,
            "preload": self.preload,
            "target_per_s": TARGET_PER_S,
        }
        for m in self.modes:
            out[f"{m.mode}_per_s"] = round(m.per_s, 1)
            out[f"{m.mode}_runs"] = [round(r, 1) for r in m.runs_per_s]
            out[f"{m.mode}_cpu_us_per_ticket"] = round(m.cpu_us_per_ticket, 1)
        out.update(self.extra)
        out["load"] = self.load
        return out

    def human(self) -> list[str]:
        lines = []
        for m in self.modes:
            runs = " · ".join(f"{r:,.0f}" for r in m.runs_per_s)
            verdict = ""
            if m.mode == "form":
                verdict = "met" if m.per_s >= TARGET_PER_S else "MISSED"
                verdict = f"; target >= {TARGET_PER_S:,}/s {verdict}"
            detail = f", {m.detail}" if m.detail else ""
            lines.append(
                f"{self.engine}: {m.mode:10s} {m.per_s:8,.0f} tickets/s ({runs}; "
                f"CPU {m.cpu_us_per_ticket:,.0f} µs/ticket{detail}){verdict}"
            )
        lines.append(
            f"{self.engine}: {self.tickets:,} tickets per run, store preloaded with "
            f"{self.preload:,} tickets; load: {self.load}"
        )
        return lines


def run(args: argparse.Namespace) -> Result:
    from city_node import services
    from city_node.context import make_context
    from city_node.store import create_schema
    from sync.db import make_engine

    quiet = args.json and not args.verbose
    workdir = Path(tempfile.mkdtemp(prefix="fedsync_bench_city_reg_"))
    pg_name = f"{DB_PREFIX}{os.getpid()}"
    if args.engine == "sqlite":
        url = f"sqlite:///{workdir / 'city.sqlite'}"
    else:
        url = _pg_url(args.pg_url, pg_name)
        pg_create(args.pg_url, pg_name)
    try:
        first_day, end_day = history_window(24)
        if args.preload:
            log(quiet, f"preloading {args.preload:,} tickets")
            seed(url, SeedPlan(args.preload, first_day, end_day), quiet=quiet)
        else:
            engine = make_engine(url)
            create_schema(engine)
            services.open_store(engine, CITY_CODE)
            engine.dispose()
        # Enough connections for the concurrent operators without waiting on the pool.
        engine = make_engine(url, pool_size=max(5, args.threads))
        try:
            ctx = make_context(engine, CITY_CODE)
            rng = random.Random(20261125)
            customers = max(1_000, args.preload // 3)

            def workloads() -> list[list[Form]]:
                return [make_forms(args.tickets, customers, rng) for _ in range(args.runs)]

            # Warm-up: statement caches, the pool's connections, the first pages of the store.
            run_form(ctx, make_forms(100, customers, rng))
            results = []
            wanted = [m for m in MODES if m in args.modes]
            for mode in wanted:
                if mode == "concurrent" and args.engine == "sqlite" and not args.concurrent_sqlite:
                    continue
                log(quiet, f"mode {mode}: {args.runs} runs of {args.tickets:,} tickets")
                forms = workloads()
                if mode == "form":
                    results.append(measure(mode, lambda f: run_form(ctx, f), forms))
                elif mode == "two_step":
                    results.append(measure(mode, lambda f: run_two_step(ctx, f), forms))
                elif mode == "batch":
                    results.append(
                        measure(
                            mode,
                            lambda f: run_batch(ctx, f, args.batch_size),
                            forms,
                            f"{args.batch_size} tickets per transaction",
                        )
                    )
                else:
                    results.append(
                        measure(
                            mode,
                            lambda f: run_concurrent(ctx, f, args.threads),
                            forms,
                            f"{args.threads} threads",
                        )
                    )
            profile = ""
            if args.cprofile:
                forms_p = make_forms(args.tickets, customers, rng)
                profiler = cProfile.Profile()
                profiler.enable()
                run_form(ctx, forms_p)
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(args.top)
                stats.sort_stats("cumulative").print_stats(args.top)
                profile = out.getvalue()
        finally:
            engine.dispose()
        return Result(args.engine, args.tickets, args.preload, results, load_average(), profile)
    finally:
        if args.engine == "postgresql":
            pg_drop(args.pg_url, pg_name)
        shutil.rmtree(workdir, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.city_register",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument(
        "--tickets", type=int, default=DEFAULT_TICKETS, help="tickets per measured run"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (median)")
    parser.add_argument(
        "--preload",
        type=int,
        default=DEFAULT_PRELOAD,
        help="tickets already in the store (seeded directly) before measuring",
    )
    parser.add_argument("--batch-size", type=int, default=100, help="forms per register_many")
    parser.add_argument("--threads", type=int, default=4, help="operators in 'concurrent'")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
        help=f"comma-separated subset of {', '.join(MODES)}",
    )
    parser.add_argument(
        "--concurrent-sqlite",
        action="store_true",
        help="also run 'concurrent' on SQLite (writers queue on BEGIN IMMEDIATE)",
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON object")
    parser.add_argument(
        "--cprofile", action="store_true", help="profile one extra 'form' run (top functions)"
    )
    parser.add_argument("--top", type=int, default=25, help="functions shown by --cprofile")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL server on which fedsync_bench_city_reg_* databases may be created "
        "(env FEDSYNC_BENCH_DATABASE_URL)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = [m for m in args.modes if m not in MODES]
    if unknown or args.tickets < 1 or args.runs < 1 or args.batch_size < 1 or args.threads < 1:
        print(
            f"bench: --modes from {', '.join(MODES)}; --tickets, --runs, --batch-size and "
            "--threads >= 1",
            file=sys.stderr,
        )
        return 2
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    for line in result.human():
        print(line, flush=True)
    if result.profile:
        print(result.profile, flush=True)
    if args.json:
        print(json.dumps(result.summary()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
