"""Promises about how the console is served (real settings, real uvicorn).

- A console bound to a non-loopback address refuses to start on plain HTTP, unless told a
  TLS proxy fronts it (``http_allow_plain``) or given a certificate and key
  (``http_tls_cert`` / ``http_tls_key``), which it then serves HTTPS with, its cookies marked
  Secure. Loopback stays plain HTTP for local use.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from city_node.app import build_console, context_for
from city_node.services import open_store
from city_node.settings import CitySettings
from city_node.store import create_schema
from sync.config import ConfigError
from sync.db import make_engine
from sync.outbox import Outbox

CITY = "620100"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "console.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "console.crt", folder / "console.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def settings_for(tmp_path: Path, city_settings_factory: Any) -> Any:
    def make(**overrides: Any) -> tuple[CitySettings, Any, Outbox]:
        url = f"sqlite:///{tmp_path / 'city.sqlite'}"
        settings = city_settings_factory(
            CITY,
            url,
            1,
            http_port=overrides.pop("http_port", free_port()),
            secret_key_file=tmp_path / "console-key",
            **overrides,
        )
        engine = make_engine(url)
        create_schema(engine)
        open_store(engine, CITY)
        return settings, context_for(settings, engine), Outbox(engine)

    return make


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "console.example.org"])
def test_plain_http_beyond_loopback_refuses_to_start(settings_for: Any, host: str) -> None:
    settings, ctx, outbox = settings_for(http_host=host)
    with pytest.raises(ConfigError, match="http_tls_cert"):
        build_console(settings, ctx, outbox)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_serves_plain_http(settings_for: Any, host: str) -> None:
    settings, ctx, outbox = settings_for(http_host=host)
    assert build_console(settings, ctx, outbox).config.ssl_certfile is None


def test_plain_http_behind_a_proxy_is_an_explicit_choice(settings_for: Any) -> None:
    settings, ctx, outbox = settings_for(http_host="0.0.0.0", http_allow_plain=True)
    build_console(settings, ctx, outbox)  # starts


def test_behind_a_trusted_proxy_the_console_takes_the_client_it_names(
    settings_for: Any,
) -> None:
    """The console's proxy setting: refused unless addresses or networks; given, uvicorn
    reads X-Forwarded-For from those peers only (without it, from none)."""
    with pytest.raises(ConfigError, match="http_trusted_proxies '\\*'"):
        settings_for(http_trusted_proxies="*")
    settings, ctx, outbox = settings_for(http_trusted_proxies="10.0.0.2,192.0.2.0/24")
    config = build_console(settings, ctx, outbox).config
    # An IPv4 proxy reaching a dual-stack listener arrives as ::ffff:10.0.0.2.
    assert config.proxy_headers
    assert config.forwarded_allow_ips == ["10.0.0.2", "::ffff:10.0.0.2", "192.0.2.0/24"]
    settings, ctx, outbox = settings_for()
    assert not build_console(settings, ctx, outbox).config.proxy_headers


def test_a_certificate_makes_the_console_serve_https(settings_for: Any, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with pytest.raises(ConfigError, match="both"):
        settings_for(http_host="0.0.0.0", http_tls_cert=cert)
    port = free_port()
    settings, ctx, outbox = settings_for(
        http_host="127.0.0.2", http_port=port, http_tls_cert=cert, http_tls_key=key
    )
    server = build_console(settings, ctx, outbox)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "console did not start"
            time.sleep(0.02)
        trust = ssl.create_default_context(cafile=str(cert))
        trust.check_hostname = False  # the certificate names console.test: check the chain
        with httpx.Client(verify=trust, timeout=10) as c:
            page = c.get(f"https://127.0.0.2:{port}/login")
        assert page.status_code == 200
        assert "secure" in page.headers["set-cookie"].lower()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.2:{port}/login", timeout=5)
    finally:
        server.should_exit = True
        thread.join(10)
