"""`fedsync city rebase` when it cannot reach or trust the hub: exit 2 with one line naming
the hub's address and why, never a traceback, and the store untouched. The servers here
are bare sockets standing where the hub should be: nobody, a server with a certificate from
another CA, one that does not speak TLS, and the real hub certificate after its revocation
(which the command refused cleanly before)."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from sync.cli import main
from sync.link import tls_handshake
from sync.outbox import Outbox
from sync.pki import identity_from_pem, init_pki, revoke

CITY = "620100"


@contextmanager
def listening(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server handing each connection to ``answer``; its address."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn, suppress(OSError):
                answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def tls_with(pki: Path) -> Callable[[socket.socket], None]:
    """Answer as a TLS server presenting ``pki``'s hub certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "hub.crt", pki / "hub.key")

    def answer(conn: socket.socket) -> None:
        conn.settimeout(5)
        tls_handshake(conn, context, server_side=True)
        conn.recv(1)  # until the client hangs up

    return answer


def hang_up(conn: socket.socket) -> None:
    """Not TLS: read what the client says, then close the connection."""
    conn.settimeout(5)
    conn.recv(4096)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    init_pki(directory, city_codes=[CITY])
    return directory


@pytest.fixture
def city(tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    url = f"sqlite:///{tmp_path / 'city.sqlite'}"
    flags = ["--code", CITY, "--database-url", url, "--pki-dir", str(pki)]
    assert main(["city", "migrate", *flags]) == 0
    assert main(["city", "status", *flags]) == 0  # the store opened: its epoch drawn
    capsys.readouterr()
    return flags


def free_address() -> str:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return f"127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def nobody() -> Iterator[str]:
    yield free_address()


@pytest.mark.parametrize("with_yes", [False, True])
@pytest.mark.parametrize(
    ("hub", "reason"),
    [
        ("down", "connection refused"),
        ("foreign CA", "does not verify"),
        ("not TLS", "TLS handshake failed"),
        ("revoked", "revoked"),
    ],
)
def test_rebase_without_a_trusted_hub_exits_2_naming_it(
    hub: str,
    reason: str,
    with_yes: bool,
    tmp_path: Path,
    pki: Path,
    city: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    if hub == "foreign CA":
        foreign = tmp_path / "foreign"
        init_pki(foreign, city_codes=[CITY])
        server = listening(tls_with(foreign))
    elif hub == "not TLS":
        server = listening(hang_up)
    elif hub == "revoked":
        revoke(pki, serial=identity_from_pem((pki / "hub.crt").read_bytes()).serial)
        server = listening(tls_with(pki))
    else:
        server = nobody()
    store = city[city.index("--database-url") + 1]
    before = _snapshot(store)
    with server as address:
        code = main(["city", "rebase", *city, "--hub", address, *(["--yes"] if with_yes else [])])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert address in err and reason in err, err
    assert err.startswith("fedsync: error: ") and err.count("\n") == 1, err
    assert _snapshot(store) == before


def _snapshot(url: str) -> tuple[str, int, int, str]:
    from sync.db import make_engine

    engine = make_engine(url)
    try:
        snap = Outbox(engine).snapshot()
    finally:
        engine.dispose()
    return (snap.epoch, snap.last_seq, snap.delivered_seq, snap.state)


def test_a_hub_that_resets_before_the_handshake_leaves_the_socket_to_its_owner(
    pki: Path,
) -> None:
    """The city's own TLS probe when the peer resets at once (a hub going down).

    ``wrap_socket`` would take the descriptor over and, when the reset has already arrived,
    raise without closing it; the probe's handshake leaves it to the ``with`` that opened it.
    """
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with socket.create_server(("127.0.0.1", 0)) as server:
        raw = socket.create_connection(server.getsockname(), timeout=5)
        conn, _ = server.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # linger 0: a reset, not a FIN
        time.sleep(0.05)  # the reset reaches the client before its handshake starts
        with raw:
            with pytest.raises(OSError) as failure:
                tls_handshake(raw, context, server_hostname="hub.test")
            assert raw.fileno() != -1  # still ours to close
    assert isinstance(failure.value, (ConnectionResetError, ssl.SSLError)), failure.value


def test_a_peer_that_trickles_cannot_hold_the_handshake_past_its_deadline(pki: Path) -> None:
    """The probe's deadline bounds the whole handshake, not each read: a server sending a
    byte at a time (each read within the socket's timeout) is given up on."""
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    stop = threading.Event()

    def trickle(conn: socket.socket) -> None:
        conn.settimeout(5)
        conn.recv(4096)  # the ClientHello
        # A handshake record of 16 kB announced, then its body a byte at a time.
        conn.sendall(b"\x16\x03\x03\x40\x00")
        while not stop.is_set():
            with suppress(OSError):
                conn.sendall(b"\x02")
            stop.wait(0.05)

    with listening(trickle) as address:
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            try:
                with pytest.raises(TimeoutError):
                    tls_handshake(
                        raw, context, server_hostname="hub", deadline=time.monotonic() + 0.5
                    )
            finally:
                stop.set()
