"""``fedsync demo`` at rest: memory of every process and who spends the CPU.

Starts ``fedsync demo --cities N`` in a temporary work directory, waits until it has
settled (``--warmup`` seconds: the cities' history backfill and first pushes are over),
then over ``--window`` seconds reads ``/proc`` for each process of the demo: resident
memory (VmRSS, and PSS, which counts shared pages once; sampled at the window's end) and
CPU time (user + system, the
difference across the window). Processes are grouped as

- *federation*: the hub and the city nodes (what a deployment runs);
- *demo driver*: the ``fedsync demo`` process itself and its province desk (the
  simulated province staff, which also writes the status the demo prints) — the cost of
  watching and driving the demo.

The demo runs the city with the console as its own process and the other cities together in
one (``city_node.demo_cities``); ``--process-per-city`` measures the demo with every city in
its own process, as a deployment runs them.

Prints a table and, last, one JSON line (``--json`` for the JSON only). Targets (issue
13): total RSS <= 1.2 GB with 14 cities; demo driver CPU <= 10 % of the federation's.

    python -m benchmarks.demo_footprint [--cities 14] [--warmup 90] [--window 60]
        [--process-per-city]

Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (the same libraries in 17 processes) counted
    once across them, so the processes' PSS adds up to what the machine gives them."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _role(pid: int, demo_pid: int) -> str:
    if pid == demo_pid:
        return "demo"
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    text = [a.decode() for a in args if a]
    if any("demo_desk" in a for a in text):
        return "province desk"
    if "city_node.demo_cities" in text:
        codes = text[text.index("--codes") + 1].split(",")
        return f"cities ×{len(codes)} (one process)"
    if "hub" in text:
        return "hub"
    if "city" in text:
        code = text[text.index("--code") + 1] if "--code" in text else "?"
        return f"city {code}" + (" (console)" if "--http-port" in text else "")
    return " ".join(text[:4])


def measure(
    cities: int, warmup: float, window: float, *, process_per_city: bool = False
) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="fedsync-footprint-"))
    command = [sys.executable, "-m", "sync.cli", "demo", "--cities", str(cities)]
    if process_per_city:
        command.append("--process-per-city")
    demo = subprocess.Popen(
        [*command, "--workdir", str(workdir / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    try:
        for line in demo.stdout:
            if "Ctrl-C to stop" in line:
                break
        # Keep the pipe drained in the background (the demo prints a table every 30 s).
        drain = subprocess.Popen(["cat"], stdin=demo.stdout, stdout=subprocess.DEVNULL)
        time.sleep(warmup)
        pids = [demo.pid, *_children(demo.pid)]
        roles = {pid: _role(pid, demo.pid) for pid in pids}
        before = {pid: _cpu_seconds(pid) for pid in pids}
        time.sleep(window)
        cpu = {pid: _cpu_seconds(pid) - before[pid] for pid in pids}
        rss = {pid: _rss_mb(pid) for pid in pids}
        pss = {pid: _pss_mb(pid) for pid in pids}
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
    drain.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)
    driver = {"demo", "province desk"}
    fed_cpu = sum(c for p, c in cpu.items() if roles[p] not in driver)
    drv_cpu = sum(c for p, c in cpu.items() if roles[p] in driver)
    processes = [
        {
            "role": roles[p],
            "rss_mb": round(rss[p], 1),
            "pss_mb": round(pss[p], 1),
            "cpu_s": round(cpu[p], 2),
        }
        for p in sorted(pids, key=lambda p: roles[p])
    ]
    return {
        "cities": cities,
        "process_per_city": process_per_city,
        "warmup_s": warmup,
        "window_s": window,
        "processes": processes,
        "rss_total_mb": round(sum(rss.values()), 1),
        "pss_total_mb": round(sum(pss.values()), 1),
        "rss_city_mean_mb": round(
            sum(r["rss_mb"] for r in processes if str(r["role"]).startswith("cit"))  # type: ignore[misc]
            / max(1, cities),
            1,
        ),
        "cpu_federation_s": round(fed_cpu, 2),
        "cpu_demo_driver_s": round(drv_cpu, 2),
        "driver_share_of_federation": round(drv_cpu / fed_cpu, 3) if fed_cpu else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cities", type=int, default=14)
    parser.add_argument("--warmup", type=float, default=90.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--json", action="store_true", help="the JSON line only")
    parser.add_argument(
        "--process-per-city",
        action="store_true",
        help="every city in its own process (the demo's --process-per-city)",
    )
    args = parser.parse_args()
    result = measure(args.cities, args.warmup, args.window, process_per_city=args.process_per_city)
    if not args.json:
        print(f"{'process':<24} {'RSS MB':>8} {'PSS MB':>8} {'CPU s':>8}")
        for p in result["processes"]:  # type: ignore[attr-defined]
            print(f"{p['role']:<24} {p['rss_mb']:>8} {p['pss_mb']:>8} {p['cpu_s']:>8}")
        share = result["driver_share_of_federation"]
        share_pct = share * 100 if isinstance(share, float) else 0.0
        print(
            f"total RSS {result['rss_total_mb']} MB (PSS {result['pss_total_mb']} MB); "
            f"CPU over {args.window:.0f} s: federation "
            f"{result['cpu_federation_s']} s, demo driver {result['cpu_demo_driver_s']} s "
            f"({share_pct:.1f} % of the federation's)"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
