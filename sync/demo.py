"""``fedsync demo``: the whole federation on one machine, as separate processes.

A PKI in a temporary directory, the hub and N city nodes (``fedsync hub`` / ``fedsync city``
subprocesses) over loopback mutual TLS, one announcement to every city and their receipts
(each city answers notices itself: ``--demo-receipts``), and the hub's link table printed as
it fills. The hub serves the supervisor web too; its address and a demo supervisor login
are printed. Ctrl-C (or ``--duration``) stops every process cleanly.

Like all of ``sync``, the demo imports neither tier: it drives them as a person would, with
``fedsync`` commands, and reads the hub through them (``fedsync hub status|notices --json``).

Every city runs the traffic simulator (``--demo-traffic``, :mod:`city_node.simulator`): a
few days of population-scaled history written at start, then live tickets, escalations,
QA scores, suggestion batches and leader-approved reports every few seconds, all through
the city's own services and outbox.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sync.roster import City

#: The simulator's staff password (city_node.simulator.DEMO_PASSWORD; ``sync`` does not
#: import a tier, a test checks the two agree).
DEMO_PASSWORD = "fedsync-demo"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _fedsync(*args: str) -> list[str]:
    return [sys.executable, "-m", "sync.cli", *args]


def _wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with code {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the hub did not listen on port {port} within {timeout:.0f}s")


def run_demo(*, duration: float, cities: int, workdir: Path | None) -> int:
    from sync.roster import load_roster

    roster = load_roster()[: max(1, cities)]
    base = workdir or Path(tempfile.mkdtemp(prefix="fedsync-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    pki_dir = base / "pki"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not (pki_dir / "ca.key").exists():
        subprocess.run(_fedsync("pki", "init", "--dir", str(pki_dir)), check=True, env=env)
    port = _free_port()
    hub_db = f"sqlite:///{base / 'hub.sqlite'}"
    logs = base / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    hub_args = [
        "--listen",
        f"127.0.0.1:{port}",
        "--database-url",
        hub_db,
        "--pki-dir",
        str(pki_dir),
    ]
    web_port = _free_port()
    web_args = [
        "--http-port",
        str(web_port),
        "--secret-key-file",
        str(base / "hub.web-key"),
    ]
    try:
        _demo_supervisor(env, hub_db)
        with open(logs / "hub.log", "wb") as hub_log:
            hub = subprocess.Popen(
                _fedsync("hub", *hub_args, *web_args),
                stdout=hub_log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        procs.append(hub)
        _wait_for_port(port, 30, hub)
        _wait_for_port(web_port, 30, hub)
        print(f"hub on 127.0.0.1:{port}; PKI, stores and logs in {base}")
        # The first city also serves its staff console, to look at a living city.
        console_port = _free_port()
        for index, city in enumerate(roster):
            console = (
                [
                    "--http-port",
                    str(console_port),
                    "--secret-key-file",
                    str(base / f"city-{city.code}.console-key"),
                ]
                if index == 0
                else []
            )
            with open(logs / f"city-{city.code}.log", "wb") as city_log:
                procs.append(
                    subprocess.Popen(
                        _fedsync(
                            "city",
                            "--code",
                            city.code,
                            "--hub",
                            f"127.0.0.1:{port}",
                            "--pki-dir",
                            str(pki_dir),
                            "--database-url",
                            f"sqlite:///{base / f'city-{city.code}.sqlite'}",
                            "--demo-traffic",
                            "--demo-receipts",
                            "--heartbeat-seconds",
                            "2",
                            *console,
                        ),
                        stdout=city_log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
        names = ", ".join(f"{c.code} {c.name_en}" for c in roster)
        print(f"{len(roster)} city nodes started: {names}")
        print(
            "each city simulates its own traffic (staff op-junior-1, op-senior-1, manager-1, "
            f"surveyor-1, qa-1, clerk-1, stat-1, leader-1; password {DEMO_PASSWORD!r})"
        )
        print(
            f"{roster[0].name_en}'s staff console: http://127.0.0.1:{console_port}/ "
            f"(sign in as leader-1 or op-senior-1, password {DEMO_PASSWORD!r})"
        )
        # The demo's history is days old: the supervisor sees yesterday's daily figures.
        print(
            f"province supervisor web: http://127.0.0.1:{web_port}/overview?period=day "
            f"(sign in as {DEMO_SUPERVISOR}, password {DEMO_PASSWORD!r})",
            flush=True,
        )
        time.sleep(3)
        subprocess.run(
            _fedsync(
                "hub",
                "notice",
                *hub_args[2:],
                "--title",
                "Welcome to the federation",
                "--body",
                "Every city: please confirm you read this announcement.",
                "--kind",
                "announcement",
            ),
            check=True,
            env=env,
        )
        status_cmd = _fedsync("hub", "status", *hub_args[2:])
        print("watch it yourself with:", " ".join(status_cmd[2:]).replace("sync.cli", "fedsync"))
        started = time.monotonic()
        while duration <= 0 or time.monotonic() - started < duration:
            time.sleep(min(5.0, duration or 5.0))
            table = subprocess.run(status_cmd, capture_output=True, text=True, env=env)
            print(table.stdout, flush=True)
            notices = _hub_json(env, "notices", "--kind", "announcement", *hub_args[2:])
            if notices is not None:
                print(_receipt_summary(notices), flush=True)
            links = _hub_json(env, "status", *hub_args[2:])
            if links is not None:
                print(_records_summary(links, roster), flush=True)
    except KeyboardInterrupt:
        print("stopping…")
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if workdir is None and os.environ.get("FEDSYNC_DEMO_KEEP") != "1":
            shutil.rmtree(base, ignore_errors=True)
    return 0


#: The demo's hub account for the supervisor web.
DEMO_SUPERVISOR = "supervisor"


def _demo_supervisor(env: dict[str, str], hub_db: str) -> None:
    """A supervisor account on the demo hub (kept when the work directory is reused)."""
    done = subprocess.run(
        _fedsync(
            "hub",
            "staff",
            "add",
            "--id",
            DEMO_SUPERVISOR,
            "--name",
            "督查演示",
            "--role",
            "supervisor",
            "--password-stdin",
            "--database-url",
            hub_db,
        ),
        input=DEMO_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0 and "is taken" not in done.stderr:
        raise RuntimeError(f"cannot create the demo supervisor: {done.stderr.strip()}")


_SUMMARY_KINDS = (
    ("statistics_report", "stats"),
    ("qa_report", "qa"),
    ("overtime_report", "overtime"),
    ("escalation", "escal."),
    ("suggestion_batch", "sugg."),
    ("ticket_trace", "traces"),
    ("notice_receipt", "receipts"),
)


def _hub_json(env: dict[str, str], *args: str) -> Any:
    """What ``fedsync hub ARGS --json`` prints, or None (said on stderr) when it fails: the
    picture is refreshed every few seconds, one miss does not stop the demo."""
    done = subprocess.run(_fedsync("hub", *args, "--json"), capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"(fedsync hub {args[0]} failed: {last})", file=sys.stderr, flush=True)
        return None
    return json.loads(done.stdout)


def _records_summary(links: list[dict[str, Any]], roster: Sequence[City]) -> str:
    """What the hub holds from each city, by kind: the cities are alive."""
    accepted = {link["city_code"]: link["accepted"] for link in links}
    header = f"{'city':<18}" + "".join(f"{label:>9}" for _, label in _SUMMARY_KINDS)
    lines = [header]
    for city in roster:
        held = accepted.get(city.code, {})
        cells = "".join(f"{held.get(kind, 0):>9}" for kind, _ in _SUMMARY_KINDS)
        lines.append(f"{city.code} {city.name_en:<11}{cells}")
    return "\n".join(lines)


def _receipt_summary(notices: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {
                "notice": n["seq"],
                "title": n["title"],
                "targets": n["targets"],
                "delivered": n["delivered"],
                "read": n["read"],
            }
            for n in notices
        ],
        ensure_ascii=False,
    )
