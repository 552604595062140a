"""``fedsync demo`` leaves no process behind: SIGTERM or SIGHUP to the demo stops the hub,
the province desk and every city, and a demo killed outright (SIGKILL) takes its children
with it (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], set[int]]:
    demo = subprocess.Popen(
        [sys.executable, "-m", "sync.cli", "demo", "--cities", "2", "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    deadline = time.monotonic() + 90
    for line in demo.stdout:
        if "Ctrl-C to stop" in line or time.monotonic() > deadline:
            break
    children = _children(demo.pid)
    # the hub, 2 cities and the province desk
    assert len(children) == 4, children
    return demo, children


def _clean_up(demo: subprocess.Popen[str], children: set[int]) -> None:
    """Whatever a failed test left running: the children, then the demo."""
    for pid in children:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    if demo.poll() is None:
        demo.kill()
        demo.wait()
    if demo.stdout is not None:
        demo.stdout.close()


def _gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return {p for p in pids if _alive(p)}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_demo_stops_all_children(tmp_path: Path, sig: signal.Signals) -> None:
    workdir = tmp_path / "demo"  # made by the demo: private, as it holds stores and keys
    demo, children = _start(workdir)
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    try:
        os.kill(demo.pid, sig)
        demo.wait(timeout=40)
        assert _gone(children, 20) == set()
        if sig == signal.SIGTERM:
            assert demo.returncode == 0
    finally:
        _clean_up(demo, children)


def test_a_child_that_dies_stops_the_demo_naming_it(tmp_path: Path) -> None:
    demo, children = _start(tmp_path / "demo")
    try:
        hub = min(children)  # started first
        os.kill(hub, signal.SIGKILL)
        out, _ = demo.communicate(timeout=60)
        assert demo.returncode == 1
        assert "hub ended (exit status -9" in out and "stopping the demo" in out, out
        assert _gone(children, 20) == set()
    finally:
        _clean_up(demo, children)
