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
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sync.calendar import DEFAULT_TZ
from sync.roster import City
from sync.zones import zone_label

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


def fedsync_command() -> str:
    """How a person runs ``fedsync`` from this shell: the name when it is on PATH, else the
    script next to this Python (a virtualenv not activated), else ``python -m sync.cli``."""
    if shutil.which("fedsync"):
        return "fedsync"
    beside = Path(sys.executable).parent / "fedsync"
    if beside.exists():
        return str(beside)
    return f"{sys.executable} -m sync.cli"


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the demo's process dies, however it dies
    (Linux prctl; elsewhere the demo's own signal handlers are all there is)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class _Stop(Exception):
    """SIGTERM or SIGHUP reached the demo: stop every child as Ctrl-C does."""


def _raise_stop(signum: int, _frame: Any) -> None:
    raise _Stop(signal.Signals(signum).name)


class _ChildDied(RuntimeError):
    """A process the demo started ended by itself: the demo stops, saying which."""


#: Every process the demo started, with its log (what a death names).
_LOGS: dict[int, Path] = {}


def _check_children(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Raise :class:`_ChildDied` naming the first process that has ended (a killed hub
    left the demo printing addresses that answered nothing)."""
    for proc in procs:
        if proc.poll() is not None:
            log = _LOGS.get(proc.pid)
            name = log.stem if log is not None else f"process {proc.pid}"
            raise _ChildDied(f"{name} ended (exit status {proc.returncode}; its log: {log})")


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
        )
    _LOGS[proc.pid] = log
    return proc


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


#: glibc's allocator, for the demo's processes only (a variable already set wins): one
#: arena, and blocks of 64 KiB and more mapped on their own so that freeing them returns them
#: to the system. With glibc's defaults a city keeps ~15 MB of freed heap after its history
#: backfill (a worker thread's arena, and big blocks the dynamic mmap threshold moved into
#: the heap) that ``malloc_trim`` cannot hand back (README "Demo footprint"). Deployments
#: keep glibc's defaults; the same variables work there too.
_ALLOCATOR = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}


def run_demo(
    *,
    duration: float,
    cities: int,
    workdir: Path | None,
    lang: str = "zh",
    keep: bool = False,
    process_per_city: bool = False,
) -> int:
    from sync.roster import load_roster

    roster = load_roster()[: max(1, cities)]
    base = workdir or Path(tempfile.mkdtemp(prefix="fedsync-demo-"))
    keep = keep or workdir is not None or os.environ.get("FEDSYNC_DEMO_KEEP") == "1"
    # Private, like the folder a node makes for a new store: it holds the stores, the CA's
    # key and the console keys (an existing folder keeps its mode: it is the caller's).
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    pki_dir = base / "pki"
    env = {**_ALLOCATOR, **os.environ, "PYTHONUNBUFFERED": "1"}
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    procs: list[subprocess.Popen[bytes]] = []
    status = 0
    try:
        if not (pki_dir / "ca.key").exists():
            subprocess.run(
                _fedsync("pki", "init", "--dir", str(pki_dir)),
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        port = _free_port()
        hub_db = f"sqlite:///{base / 'hub.sqlite'}"
        logs = base / "logs"
        logs.mkdir(exist_ok=True)
        hub_args = ["--listen", f"127.0.0.1:{port}", "--database-url", hub_db]
        hub_args += ["--pki-dir", str(pki_dir)]
        web_port = _free_port()
        web_args = ["--http-port", str(web_port), "--secret-key-file", str(base / "hub.web-key")]
        _demo_supervisor(env, hub_db, lang)
        hub = _spawn(_fedsync("hub", *hub_args, *web_args), logs / "hub.log", env)
        procs.append(hub)
        _wait_for_port(port, 30, hub)
        _wait_for_port(web_port, 30, hub)
        print(f"hub on 127.0.0.1:{port}; PKI, stores and logs in {base}")
        _migrate_city_stores(roster, base, env)
        # The first city also serves its staff console, to look at a living city; the
        # others run without the web stack, all in one process unless each is asked for its
        # own (see city_node/demo_cities.py and benchmarks/demo_footprint.py).
        console_port = _free_port()
        common = ["--hub", f"127.0.0.1:{port}", "--pki-dir", str(pki_dir)]
        common += ["--demo-traffic", "--demo-receipts", "--demo-lang", lang]
        common += ["--heartbeat-seconds", "2"]
        first, rest = roster[0], roster[1:]
        console = ["--http-port", str(console_port), "--secret-key-file"]
        console.append(str(base / f"city-{first.code}.console-key"))
        alone = [first, *rest] if process_per_city else [first]
        for city in alone:
            args = _fedsync(
                "city",
                "--code",
                city.code,
                "--database-url",
                city_store_url(base, city.code),
                *common,
            )
            if city is first:
                args += console
            procs.append(_spawn(args, logs / f"city-{city.code}.log", env))
        if rest and not process_per_city:
            codes = ",".join(c.code for c in rest)
            args = [sys.executable, "-m", "city_node.demo_cities", "--codes", codes]
            args += ["--store-dir", str(base), *common]
            procs.append(_spawn(args, logs / "cities.log", env))
        status_file = base / "demo-status.json"
        desk_args = [sys.executable, "-m", "province_hub.demo_desk", "--database-url", hub_db]
        desk_args += ["--cities", ",".join(c.code for c in roster), "--lang", lang]
        desk_args += ["--status-file", str(status_file)]
        procs.append(_spawn(desk_args, logs / "province-desk.log", env))
        names = ", ".join(f"{c.code} {c.name_en}" for c in roster)
        print(f"{len(roster)} city node{'' if len(roster) == 1 else 's'} started: {names}")
        head = [
            f"{roster[0].name_en}'s staff console: http://127.0.0.1:{console_port}/ "
            f"(sign in as leader-1 or op-senior-1, password {DEMO_PASSWORD!r})",
            # The demo's history is days old: the supervisor sees yesterday's daily figures.
            f"province supervisor web: http://127.0.0.1:{web_port}/overview?period=day "
            f"(sign in as {DEMO_SUPERVISOR}, password {DEMO_PASSWORD!r})",
            # Monthly trends fill only once months end; the days' trend has data at once.
            f"the last 30 days' trends: http://127.0.0.1:{web_port}/trends?period=day",
            f"watch it yourself with: {fedsync_command()} hub status --database-url {hub_db}",
            f"times in {zone_label(DEFAULT_TZ)}; Ctrl-C to stop (or kill {os.getpid()})",
        ]
        if not sys.stdout.isatty():  # on a terminal the status block starts with them
            for line in head:
                print(line, flush=True)
        _watch(roster, status_file, head, duration, procs)
    except (KeyboardInterrupt, _Stop):
        print("stopping…", flush=True)
    except _ChildDied as exc:
        print(f"fedsync demo: {exc}; stopping the demo", file=sys.stderr, flush=True)
        status = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all(procs)
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}", flush=True)
    return status


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    # Ignore a second SIGTERM/SIGINT while stopping: the children are being stopped.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _watch(
    roster: Sequence[City],
    status_file: Path,
    head: list[str],
    duration: float,
    procs: Sequence[subprocess.Popen[bytes]],
) -> None:
    """The compact status: redrawn in place on a terminal (the addresses and logins stay at
    the top), a plain table every 30 s otherwise. It reads the file the province desk
    writes: no command is started to poll."""
    tty = sys.stdout.isatty()
    started = time.monotonic()
    drawn = 0
    if tty:
        print("\n".join(head), flush=True)
        drawn = _rows(head)
    last_plain = time.monotonic()  # the first table after 30 s, when there is something
    last_body: list[str] = []
    while duration <= 0 or time.monotonic() - started < duration:
        time.sleep(min(2.0, duration or 2.0) if tty else 1.0)
        _check_children(procs)
        try:
            status = json.loads(status_file.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        body = _status_lines(status, roster)
        if tty:
            block = [*head, *body]
            sys.stdout.write((f"\x1b[{drawn}F\x1b[J" if drawn else "") + "\n".join(block) + "\n")
            sys.stdout.flush()
            drawn = _rows(block)
        elif time.monotonic() - last_plain >= 30:
            last_plain = time.monotonic()
            print("\n".join(body), flush=True)
        last_body = body
    if not tty:
        # The last picture, read once more (or an empty one: the desk never wrote).
        try:
            last_body = _status_lines(json.loads(status_file.read_text("utf-8")), roster)
        except (OSError, ValueError):
            last_body = last_body or _status_lines({}, roster)
        print("\n".join(last_body), flush=True)


def _rows(lines: Sequence[str]) -> int:
    """Terminal rows ``lines`` take (long lines wrap; CJK characters are two columns), so
    the redraw moves the cursor back exactly to the block's start."""
    columns = max(20, shutil.get_terminal_size().columns)
    rows = 0
    for line in lines:
        width = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
        rows += max(1, -(-width // columns))
    return rows


def _status_lines(status: dict[str, Any], roster: Sequence[City]) -> list[str]:
    links = {link["city_code"]: link for link in status.get("links", [])}
    states = [links.get(c.code, {}).get("state", "never") for c in roster]
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    lines = ["links: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    lines.append(
        f"province: {status.get('resolved', 0)} escalations resolved, "
        f"{status.get('traces_requested', 0)} traces requested, "
        f"{status.get('standard_answers', 0)} standard answers"
    )
    sent = status.get("notices", [])
    if len(sent) > 3:
        lines.append(f"notices: {len(sent)} sent, the latest 3:")
    for n in sent[-3:]:
        lines.append(
            f"notice {n['kind'].lower()} '{str(n['title'])[:40]}': {n['targets']} cities, "
            f"{n['delivered']} delivered, {n['read']} read, {n['done']} done"
        )
    lines.append(_records_summary(list(links.values()), roster, states))
    return lines


#: The demo's hub account for the supervisor web.
DEMO_SUPERVISOR = "supervisor"


def city_store_url(base: Path, code: str) -> str:
    """The SQLite store of city ``code`` in the demo's work directory (also what
    ``city_node.demo_cities`` opens for each of its cities)."""
    return f"sqlite:///{base / f'city-{code}.sqlite'}"


def _migrate_city_stores(roster: Sequence[City], base: Path, env: dict[str, str]) -> None:
    """Every city's store brought to the latest schema by a short ``fedsync city migrate``
    (all at once) before its node starts: a node that finds its store at head never imports
    Alembic, ~11 MB less in each of the long-lived processes (the hub's store is made by
    :func:`_demo_supervisor`)."""
    running = [
        subprocess.Popen(
            _fedsync(
                "city",
                "migrate",
                "--code",
                city.code,
                "--database-url",
                city_store_url(base, city.code),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=_die_with_parent,
        )
        for city in roster
    ]
    for city, proc in zip(roster, running, strict=True):
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"cannot prepare the store of city {city.code}: {err.strip()}")


#: The demo supervisor's display name, in the demo's language.
DEMO_SUPERVISOR_NAMES = {"zh": "督查演示", "en": "Demo supervisor"}

#: The hub accounts the demo's province desk acts as (``province_hub.demo_desk``: notices,
#: standard answers, resolutions), so that every name on its pages and in its audit log is
#: an account of the hub, with the demo's password: id, role, zh and en names.
DEMO_DESK_ACCOUNTS = (
    ("announcer", "announcer", "公告演示", "Demo announcer"),
    ("materials", "materials_manager", "资料演示", "Demo materials manager"),
    ("gm-hotline", "gm_hotline", "总经理热线演示", "Demo GM hotline"),
)


def _demo_supervisor(env: dict[str, str], hub_db: str, lang: str) -> None:
    """A supervisor account on the demo hub, and those its desk acts as (kept when the work
    directory is reused)."""
    accounts = [
        (
            DEMO_SUPERVISOR,
            "supervisor",
            DEMO_SUPERVISOR_NAMES.get(lang, DEMO_SUPERVISOR_NAMES["zh"]),
        )
    ]
    accounts += [(i, role, zh if lang == "zh" else en) for i, role, zh, en in DEMO_DESK_ACCOUNTS]
    for staff_id, role, name in accounts:
        done = subprocess.run(
            _fedsync(
                "hub",
                "staff",
                "add",
                "--id",
                staff_id,
                "--name",
                name,
                "--role",
                role,
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
            raise RuntimeError(f"cannot create the demo account {staff_id}: {done.stderr.strip()}")


_SUMMARY_KINDS = (
    ("statistics_report", "stats"),
    ("qa_report", "qa"),
    ("overtime_report", "overtime"),
    ("escalation", "escal."),
    ("suggestion_batch", "sugg."),
    ("ticket_trace", "traces"),
    ("notice_receipt", "receipts"),
)


def _records_summary(
    links: list[dict[str, Any]], roster: Sequence[City], states: Sequence[str] = ()
) -> str:
    """What the hub holds from each city, by kind: the cities are alive."""
    accepted = {link["city_code"]: link.get("accepted", {}) for link in links}
    header = f"{'city':<18}{'link':<10}" + "".join(f"{label:>9}" for _, label in _SUMMARY_KINDS)
    lines = [header]
    for index, city in enumerate(roster):
        held = accepted.get(city.code, {})
        cells = "".join(f"{held.get(kind, 0):>9}" for kind, _ in _SUMMARY_KINDS)
        state = states[index] if index < len(states) else ""
        lines.append(f"{city.code} {city.name_en:<11}{state:<10}{cells}")
    return "\n".join(lines)
