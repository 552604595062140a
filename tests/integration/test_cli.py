"""The `fedsync` command as a person uses it: real processes, real certificates, real stores."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import ROSTER_CODES

CITY = ROSTER_CODES[0]
T = TypeVar("T")


def fedsync(
    *args: str, check: bool = True, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "sync.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"fedsync {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_pki_commands(tmp_path: Path):
    pki = tmp_path / "pki"
    out = fedsync("pki", "init", "--dir", str(pki), "--hub-host", "hub.example").stdout
    assert "14 city certificates" in out
    assert sorted(p.stem for p in (pki / "cities").glob("*.crt")) == sorted(ROSTER_CODES)
    again = fedsync("pki", "init", "--dir", str(pki), check=False)
    assert again.returncode == 2 and "already" in again.stderr.lower()
    assert "issued" in fedsync("pki", "issue", "--dir", str(pki), "--city", CITY).stdout
    assert "revoked serial" in fedsync("pki", "revoke", "--dir", str(pki), "--city", CITY).stdout
    bad = fedsync("pki", "issue", "--dir", str(pki), "--city", "62010", check=False)
    assert bad.returncode == 2 and "62010" in bad.stderr
    # Six digits are not enough: the city must be on the roster the hub serves.
    off = fedsync("pki", "issue", "--dir", str(pki), "--city", "999998", check=False)
    assert off.returncode == 2 and "--city '999998'" in off.stderr and "roster" in off.stderr
    assert not (pki / "cities" / "999998.crt").exists()
    roster = tmp_path / "roster.csv"
    packaged = Path(__file__).parents[2] / "sync" / "data" / "roster-gansu.csv"
    roster.write_text(
        packaged.read_text(encoding="utf-8") + "999998,试验市,Test City,city,100000\n",
        encoding="utf-8",
    )
    other = fedsync("pki", "issue", "--dir", str(pki), "--city", "999998", "--roster", str(roster))
    assert "issued" in other.stdout
    # An empty city is no hub: the hub's certificate stays as it was.
    hub_crt = (pki / "hub.crt").read_bytes()
    for flags, said in (
        (["--city", ""], "--city '' is not a city of the roster"),
        (["--city", CITY, "--hub-host", "evil.example"], "--hub-host names the hub"),
    ):
        refused = fedsync("pki", "issue", "--dir", str(pki), *flags, check=False)
        assert refused.returncode == 2 and said in refused.stderr, (flags, refused.stderr)
    assert (pki / "hub.crt").read_bytes() == hub_crt


def test_bad_settings_are_named(tmp_path: Path):
    result = fedsync("city", "status", "--code", "abc", check=False)
    assert result.returncode == 2 and "code 'abc'" in result.stderr
    result = fedsync("hub", "status", "--listen", "nowhere", check=False)
    assert result.returncode == 2 and "host:port" in result.stderr
    hub_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    fedsync("hub", "migrate", "--database-url", hub_url)
    result = fedsync(
        "hub", "notice", "--title", "x", "--to", "999999", "--database-url", hub_url, check=False
    )
    assert result.returncode == 2 and "999999" in result.stderr
    help_text = fedsync("city", "--help").stdout
    assert "FEDSYNC_BATCH_SIZE" in help_text and "--retention-days" in help_text
    for argv, said in (
        (["--cities", "0"], "--cities: 0: give 1 to 14"),
        (["--cities", "15"], "--cities: 15: give 1 to 14"),
        (["--duration", "-5"], "--duration: -5: give 0"),
    ):
        result = fedsync("demo", *argv, check=False)
        assert result.returncode == 2 and said in result.stderr, result.stderr


def test_a_time_zone_no_machine_knows_is_refused_naming_it(tmp_path: Path):
    city = ["--code", CITY, "--database-url", f"sqlite:///{tmp_path / 'city.sqlite'}"]
    fedsync("city", "migrate", *city)
    for argv, env in (
        (["city", "ticket", "list", *city, "--timezone", "Mars/Base"], {}),
        (["city", "ticket", "list", *city, "--timezone", ""], {}),
        (["city", "ticket", "list", *city], {"FEDSYNC_TIMEZONE": "../etc/passwd"}),
        (
            ["hub", "status", "--database-url", f"sqlite:///{tmp_path / 'hub.sqlite'}"],
            {"FEDSYNC_TIMEZONE": "Nowhere"},
        ),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "sync.cli", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert result.returncode == 2, (argv, env, result.stderr)
        assert "timezone" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_console_certificates_that_cannot_serve_are_refused_before_anything_starts(
    tmp_path: Path,
):
    pki = tmp_path / "pki"
    fedsync("pki", "init", "--dir", str(pki))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    other_key = pki / "cities" / f"{ROSTER_CODES[1]}.key"  # a key of another certificate
    cert = pki / "cities" / f"{CITY}.crt"
    for pair, reason in (
        ((tmp_path / "missing.crt", tmp_path / "missing.key"), "No such file"),
        ((garbage, garbage), "not a PEM"),
        ((cert, other_key), "not the certificate's"),
    ):
        tls = ["--http-tls-cert", str(pair[0]), "--http-tls-key", str(pair[1])]
        city = fedsync(
            "city", "run", "--code", CITY, "--pki-dir", str(pki), "--hub", "127.0.0.1:9",
            "--database-url", f"sqlite:///{tmp_path / 'city.sqlite'}",
            "--http-port", str(free_port()), *tls, check=False, timeout=30,
        )  # fmt: skip
        assert city.returncode == 2, city.stderr
        assert "http_tls_cert" in city.stderr and reason in city.stderr, city.stderr
        assert "Traceback" not in city.stderr and "console on" not in city.stdout
        hub = fedsync(
            "hub", "run", "--pki-dir", str(pki), "--listen", f"127.0.0.1:{free_port()}",
            "--database-url", f"sqlite:///{tmp_path / 'hub.sqlite'}",
            "--http-port", str(free_port()), *tls, check=False, timeout=30,
        )  # fmt: skip
        assert hub.returncode == 2 and reason in hub.stderr, hub.stderr
        assert "Traceback" not in hub.stderr and "supervisor web on" not in hub.stdout
    assert not (tmp_path / "city.sqlite").exists(), "refused before the store was opened"


@pytest.mark.slow
def test_hub_and_city_processes_work_and_stop_cleanly(tmp_path: Path):
    pki = tmp_path / "pki"
    fedsync("pki", "init", "--dir", str(pki))
    port = free_port()
    hub_db = tmp_path / "hub.sqlite"
    hub_args = ["--database-url", f"sqlite:///{hub_db}", "--pki-dir", str(pki)]
    city_args = [
        "--code",
        CITY,
        "--database-url",
        f"sqlite:///{tmp_path / 'city.sqlite'}",
        "--pki-dir",
        str(pki),
        "--hub",
        f"127.0.0.1:{port}",
        "--heartbeat-seconds",
        "0.5",
        "--backoff-max",
        "1",
    ]
    logs = {name: open(tmp_path / f"{name}.log", "w+") for name in ("hub", "city")}  # noqa: SIM115
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    hub = subprocess.Popen(
        [sys.executable, "-m", "sync.cli", "hub", "--listen", f"127.0.0.1:{port}", *hub_args],
        stdout=logs["hub"],
        stderr=subprocess.STDOUT,
        env=env,
    )
    city = subprocess.Popen(
        [sys.executable, "-m", "sync.cli", "city", *city_args],
        stdout=logs["city"],
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:

        def city_status() -> dict[str, Any]:
            got = fedsync("city", "status", "--json", *city_args, check=False)
            if got.returncode == 2 and "there is no store" in got.stderr:
                return {"state": None}  # the node has not made its store yet
            assert got.returncode == 0, got.stderr
            status: dict[str, Any] = json.loads(got.stdout)
            return status

        wait_for(lambda: city_status()["state"] == "connected", 30, "the city to connect")
        sent = fedsync(
            "hub",
            "notice",
            *hub_args,
            "--title",
            "盘点积压工单",
            "--kind",
            "task",
            "--deadline",
            "2030-01-01T18:00:00+08:00",
            "--to",
            f"{CITY},{CITY}",
        ).stdout
        assert "sent to 1 city" in sent
        notice_seq = sent.split()[1]
        wait_for(
            lambda: "盘点积压工单" in fedsync("city", "inbox", *city_args).stdout, 30, "the notice"
        )
        # A receipt names a real staff member of the city.
        fedsync(
            "city",
            "staff",
            "add",
            *city_args,
            "--id",
            "leader-1",
            "--name",
            "王主任",
            "--role",
            "leader",
            "--password-stdin",
            stdin="long-enough-1\n",
        )
        fedsync(
            "city",
            "receipt",
            *city_args,
            "--notice",
            notice_seq,
            "--action",
            "done",
            "--note",
            "done",
            "--actor",
            "leader-1",
        )

        def hub_row() -> dict[str, Any]:
            rows: list[dict[str, Any]] = json.loads(
                fedsync("hub", "status", "--json", *hub_args).stdout
            )
            return next(r for r in rows if r["city_code"] == CITY)

        row = wait_for(
            lambda: (r := hub_row())["records"].get("notice_receipt") and r, 30, "the receipt"
        )
        assert row["state"] == "connected" and row["acked_seq"] == 1 and row["epoch"]
        assert row["heartbeat_at"] is not None
        # On the federation's clock, as the table and the web show it.
        assert row["last_contact"].endswith("+08:00") and row["heartbeat_at"].endswith("+08:00")
        with sqlite3.connect(hub_db) as conn:
            done_note = conn.execute("SELECT done_note FROM notice_deliveries").fetchone()[0]
        assert done_note == "done"
        assert city_status()["backlog"] == 0
        for proc in (city, hub):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0, "a SIGTERM must stop the process cleanly"
    finally:
        for proc in (city, hub):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for handle in logs.values():
            handle.close()


@pytest.mark.slow
def test_demo_shows_the_whole_federation(tmp_path: Path):
    """`fedsync demo`: 14 city nodes (Lanzhou with its console alone, the others in one
    process), records pushed, one announcement read by all 14."""
    workdir = tmp_path / "demo"
    # 45 s: on a loaded 2-core runner Lanzhou (the console and the largest backfill, then
    # last week's drafts for the visitor) made its first contact after 25 s.
    demo = subprocess.Popen(
        [sys.executable, "-m", "sync.cli", "demo", "--duration", "45", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    lines = []
    for line in demo.stdout:
        lines.append(line)
        if "supervisor web: " in line:
            break
    web = re.search(r"(http://127\.0\.0\.1:\d+)/\S* \(sign in as (\S+), password '([^']+)'", line)
    assert web, lines
    # The supervisor web answers while the demo runs, with the printed login.
    links = httpx.get(f"{web.group(1)}/api/v1/links", auth=(web.group(2), web.group(3)), timeout=60)
    assert links.status_code == 200 and len(links.json()) == 14
    out, err = demo.communicate(timeout=180)
    assert demo.returncode == 0, err
    result = subprocess.CompletedProcess(demo.args, 0, "".join(lines) + out, err)
    assert "14 city nodes started" in result.stdout
    assert "staff console: http://127.0.0.1:" in result.stdout
    assert "620100 Lanzhou" in result.stdout  # the per-city table of what the hub holds
    with sqlite3.connect(workdir / "hub.sqlite") as conn:
        link_rows = conn.execute("SELECT city_code, state, acked_seq FROM city_links").fetchall()
        reads = conn.execute(
            "SELECT count(read_at), count(delivered_at) FROM notice_deliveries d "
            "JOIN notices n ON n.seq = d.notice_seq WHERE n.kind = 'ANNOUNCEMENT'"
        ).fetchone()
        kinds = {k for (k,) in conn.execute("SELECT DISTINCT kind FROM records")}
    assert sorted(code for code, _, _ in link_rows) == sorted(ROSTER_CODES)
    assert all(acked > 0 for _, _, acked in link_rows), link_rows
    assert reads == (14, 14)
    assert {"suggestion_batch", "notice_receipt", "statistics_report", "escalation"} <= kinds


@pytest.mark.parametrize(("lang", "name"), [("zh", "督查演示"), ("en", "Demo supervisor")])
def test_demo_supervisor_is_named_in_the_demos_language(
    tmp_path: Path, lang: str, name: str
) -> None:
    """The supervisor the demo prints a login for, and the accounts its province desk acts
    as (every name on its pages is an account); a reused work directory keeps them."""
    from sync.demo import DEMO_DESK_ACCOUNTS, DEMO_SUPERVISOR, _demo_supervisor

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    for _ in range(2):  # the second start of a reused work directory finds them taken
        _demo_supervisor(dict(os.environ), url, lang)
    listed = fedsync("hub", "staff", "list", "--database-url", url, "--json").stdout
    accounts = {a["id"]: (a["role"], a["name"], a["active"]) for a in json.loads(listed)}
    assert accounts[DEMO_SUPERVISOR] == ("supervisor", name, True)
    for staff_id, role, zh, en in DEMO_DESK_ACCOUNTS:
        assert accounts[staff_id] == (role, zh if lang == "zh" else en, True)
    assert len(accounts) == 1 + len(DEMO_DESK_ACCOUNTS)


def test_output_cut_short_by_its_reader_is_no_traceback(tmp_path: Path):
    # `fedsync hub status | head -3`: the reader closes the pipe after a few lines.
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    fedsync("hub", "migrate", "--database-url", url)
    reader, writer = os.pipe()
    os.close(reader)  # before the command writes anything
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sync.cli", "hub", "status", "--database-url", url],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_addresses_and_workers_out_of_range_are_refused_naming_the_setting(tmp_path: Path):
    city = ["--code", CITY, "--database-url", f"sqlite:///{tmp_path / 'city.sqlite'}"]
    hub = ["--database-url", f"sqlite:///{tmp_path / 'hub.sqlite'}"]
    for argv, named in (
        (["city", "status", *city, "--hub", "nohost"], "hub 'nohost' must be host:port"),
        (["city", "rebase", *city, "--hub", "nohost"], "hub 'nohost' must be host:port"),
        (["city", "run", *city, "--hub", "127.0.0.1:99999"], "port 99999 is not 1-65535"),
        (["city", "run", *city, "--hub", "::1:7443"], "IPv6 host in brackets"),
        (["hub", "run", *hub, "--listen", "127.0.0.1:99999"], "port 99999 is not 0-65535"),
        (["hub", "run", *hub, "--listen", ":7443"], "must be host:port"),
        (["hub", "run", *hub, "--db-workers", "-1"], "db_workers -1"),
    ):
        result = fedsync(*argv, check=False, timeout=30)
        assert result.returncode == 2, (argv, result.stderr)
        assert named in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "city.sqlite").exists() and not (tmp_path / "hub.sqlite").exists()
