"""One running node per city store, and no re-base under a running node
(``city_node.node_lock``): the lock itself on SQLite and PostgreSQL, and the commands that
take it, as processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from city_node.node_lock import NodeRunning, node_lock
from city_node.store import create_schema
from sync.db import make_engine
from tests.integration.test_cli import CITY, fedsync, free_port, wait_for


def test_the_lock_is_held_once_and_freed_on_release(databases: Any) -> None:
    first = make_engine(databases("city"))
    create_schema(first)
    second = make_engine(first.url.render_as_string(hide_password=False))
    try:
        with (
            node_lock(first, CITY),
            pytest.raises(NodeRunning, match="is running on this store"),
            node_lock(second, CITY),
        ):
            pass
        with node_lock(second, CITY):  # released: taken again
            pass
    finally:
        first.dispose()
        second.dispose()


def test_a_second_node_and_a_rebase_are_refused_while_a_node_runs(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    fedsync("pki", "init", "--dir", str(pki))
    city = [
        "--code", CITY, "--pki-dir", str(pki), "--hub", f"127.0.0.1:{free_port()}",
        "--database-url", f"sqlite:///{tmp_path / 'city.sqlite'}",
    ]  # fmt: skip
    log = open(tmp_path / "node.log", "w+")  # noqa: SIM115
    node = subprocess.Popen(
        [sys.executable, "-m", "sync.cli", "city", "run", *city],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for(lambda: "linking to" in (tmp_path / "node.log").read_text(), 30, "the node")
        second = fedsync("city", "run", *city, check=False, timeout=30)
        assert second.returncode == 2 and "is running on this store" in second.stderr
        rebase = fedsync("city", "rebase", *city, "--yes", check=False, timeout=30)
        assert rebase.returncode == 2 and "is running on this store" in rebase.stderr
    finally:
        node.terminate()
        node.wait(30)
        log.close()
    # Stopped: the re-base goes on to ask the hub (down here: refused for that instead).
    rebase = fedsync("city", "rebase", *city, "--yes", check=False, timeout=30)
    assert rebase.returncode == 2 and "is running" not in rebase.stderr
    assert "nothing was re-based" in rebase.stderr
