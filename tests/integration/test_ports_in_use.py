"""A process told to listen where another one already does refuses to start, saying which
address (exit status 2, no traceback): a second hub on the hub's gRPC port (Linux would let
both share it through SO_REUSEPORT, splitting the cities between them), a city console or
the supervisor web on a port in use."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.config import ConfigError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process's socket is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _fedsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)


async def test_a_second_hub_on_the_hub_port_is_refused(
    tmp_path: Path, pki_dir: Path, hub_settings_factory: Any, start_hub: Any
) -> None:
    from province_hub.app import create_server

    hub = await start_hub(hub_settings_factory(f"sqlite:///{tmp_path / 'first.sqlite'}"))
    listen = f"127.0.0.1:{hub.port}"
    second = hub_settings_factory(f"sqlite:///{tmp_path / 'second.sqlite'}", listen=listen)
    with pytest.raises(ConfigError, match=f"--listen {listen}: .*in use"):
        await create_server(second)
    done = _fedsync(
        "hub",
        "run",
        "--listen",
        listen,
        "--pki-dir",
        str(pki_dir),
        "--database-url",
        f"sqlite:///{tmp_path / 'third.sqlite'}",
    )
    _refused(done, f"--listen {listen}", "in use")
    assert done.stderr.count("\n") == 1, done.stderr  # the refusal alone, no gRPC log line
    # Refused for its port, it made no store.
    assert not (tmp_path / "second.sqlite").exists() and not (tmp_path / "third.sqlite").exists()


def test_a_console_on_a_port_in_use_exits_2_naming_it(
    tmp_path: Path, pki_dir: Path, taken_port: int
) -> None:
    done = _fedsync(
        "city",
        "run",
        "--code",
        "620100",
        "--hub",
        f"127.0.0.1:{_free_port()}",
        "--pki-dir",
        str(pki_dir),
        "--database-url",
        f"sqlite:///{tmp_path / 'city.sqlite'}",
        "--http-port",
        str(taken_port),
        "--secret-key-file",
        str(tmp_path / "console.key"),
        "--no-schedule",
    )
    _refused(done, f"--http-port {taken_port}", f"127.0.0.1:{taken_port}", "in use")
    # Before anything was made: a node on a mistyped store beside a running one made a new
    # store, said Hello in the city's name (the hub showed the real node in conflict), and
    # only then found its console port taken.
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith("-node.lock")] == []


def test_the_supervisor_web_on_a_port_in_use_exits_2_naming_it(
    tmp_path: Path, pki_dir: Path, taken_port: int
) -> None:
    done = _fedsync(
        "hub",
        "run",
        "--listen",
        "127.0.0.1:0",
        "--pki-dir",
        str(pki_dir),
        "--database-url",
        f"sqlite:///{tmp_path / 'hub.sqlite'}",
        "--http-port",
        str(taken_port),
        "--secret-key-file",
        str(tmp_path / "web.key"),
    )
    _refused(done, f"--http-port {taken_port}", "the supervisor web cannot listen", "in use")
    assert sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_the_listen_precheck_refuses_only_a_port_in_use(taken_port: int) -> None:
    """The hub's own bind before gRPC's: in use is refused; a free port, port 0 and what it
    cannot judge (a name that does not resolve) are left to gRPC."""
    from province_hub.app import _may_bind

    assert _may_bind(f"127.0.0.1:{taken_port}") is False
    assert _may_bind(f"127.0.0.1:{_free_port()}") is True
    assert _may_bind("127.0.0.1:0") is True
    assert _may_bind(f"no-such-host.invalid:{_free_port()}") is True
