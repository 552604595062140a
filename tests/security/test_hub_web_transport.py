"""The supervisor web is served like the city console (real hub, real uvicorn):

- bound to a non-loopback address it refuses to start on plain HTTP — before anything
  starts — unless told a TLS proxy fronts it (``http_allow_plain``) or given a certificate
  and key, which it then serves HTTPS with, its cookies marked Secure; loopback stays plain.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from province_hub.app import create_server
from sync.config import ConfigError
from tests.security.test_console_transport import free_port, self_signed

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "hub.example.org"])
async def test_plain_http_beyond_loopback_refuses_to_start(
    hub_settings_factory: Any, tmp_path: Path, host: str
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    settings = hub_settings_factory(
        url, http_host=host, http_port=free_port(), secret_key_file=tmp_path / "web-key"
    )
    with pytest.raises(ConfigError, match="the supervisor web would serve plain HTTP"):
        await create_server(settings)
    assert not (tmp_path / "hub.sqlite").exists(), "the store was opened before the refusal"


async def test_plain_http_behind_a_proxy_is_an_explicit_choice(
    hub_settings_factory: Any, start_hub: Any, tmp_path: Path
) -> None:
    port = free_port()
    settings = hub_settings_factory(
        f"sqlite:///{tmp_path / 'hub.sqlite'}",
        http_host="0.0.0.0",
        http_port=port,
        http_allow_plain=True,
        secret_key_file=tmp_path / "web-key",
    )
    await start_hub(settings)
    async with httpx.AsyncClient(timeout=10) as c:
        assert (await c.get(f"http://127.0.0.1:{port}/login")).status_code == 200


async def test_a_certificate_makes_the_supervisor_web_serve_https(
    hub_settings_factory: Any, start_hub: Any, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    with pytest.raises(ConfigError, match="both"):
        hub_settings_factory(url, http_port=free_port(), http_tls_cert=cert)
    port = free_port()
    settings = hub_settings_factory(
        url,
        http_host="127.0.0.2",
        http_port=port,
        http_tls_cert=cert,
        http_tls_key=key,
        secret_key_file=tmp_path / "web-key",
    )
    await start_hub(settings)
    trust = ssl.create_default_context(cafile=str(cert))
    trust.check_hostname = False  # the certificate names console.test: check the chain
    async with httpx.AsyncClient(verify=trust, timeout=10) as c:
        page = await c.get(f"https://127.0.0.2:{port}/login")
    assert page.status_code == 200
    assert "secure" in page.headers["set-cookie"].lower()
    async with httpx.AsyncClient(timeout=5) as c:
        with pytest.raises(httpx.HTTPError):
            await c.get(f"http://127.0.0.2:{port}/login")


@pytest.mark.parametrize(
    "value", ["*", "proxy.example.org", "10.0.0.5/24", "127.0.0.1,,x", "0.0.0.0/0", "::/0"]
)
async def test_trusted_proxies_are_addresses_or_networks(
    hub_settings_factory: Any, value: str
) -> None:
    with pytest.raises(ConfigError, match="http_trusted_proxies"):
        hub_settings_factory("sqlite:///unused.sqlite", http_trusted_proxies=value)


async def test_behind_a_trusted_proxy_failed_logins_count_per_client(
    hub_settings_factory: Any, start_hub: Any, tmp_path: Path
) -> None:
    """Behind a TLS proxy every user's peer is the proxy: counted per peer, a few wrong
    passwords locked the whole province out. Named in ``http_trusted_proxies``, the proxy's
    X-Forwarded-For names the client (the last address before the proxy: one the client
    wrote itself further left is not taken), in the throttle and in the audit log."""
    from sqlalchemy import select

    from province_hub import staff
    from province_hub.store import AuditEntry
    from sync.db import make_engine
    from tests.integration.test_hub_desk_web import csrf_of

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    port = free_port()
    settings = hub_settings_factory(
        url,
        http_host="127.0.0.1",
        http_port=port,
        http_trusted_proxies="127.0.0.1, 10.0.0.0/8",
        secret_key_file=tmp_path / "web-key",
    )
    await start_hub(settings)
    engine = make_engine(url)
    password = "long-enough-password-1"
    staff.add_staff(engine, staff_id="li", name="李", role="supervisor", password=password)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        token = csrf_of((await c.get("/login")).text)

        async def attempt(secret: str, forwarded: str) -> int:
            form = {"csrf_token": token, "staff_id": "li", "password": secret}
            r = await c.post("/login", data=form, headers={"X-Forwarded-For": forwarded})
            return r.status_code

        for n in range(5):  # the store throttle's 5 per account and address
            assert await attempt("wrong", f"192.0.2.{n}, 198.51.100.7") == 401
        assert await attempt(password, "198.51.100.7") == 429
        assert await attempt(password, "192.0.2.99, 198.51.100.7, 10.1.2.3") == 429
        assert await attempt(password, "198.51.100.8") == 303  # the owner, elsewhere
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        token = csrf_of((await c.get("/login")).text)
        # Text that is no address, passed on by the proxy, is one "unknown" address: not a
        # fresh address per attempt, not a key or an audit cell of any length.
        for n in range(3):
            assert await attempt("wrong", f"x{n} " + "y" * 400) == 401
    with engine.connect() as conn:
        addresses = conn.execute(
            select(AuditEntry.address).where(AuditEntry.action == "login_failed")
        ).scalars()
        assert set(addresses) == {"198.51.100.7", "unknown"}
    engine.dispose()


async def test_a_locked_sqlite_store_answers_503_quickly(
    hub_settings_factory: Any, start_hub: Any, tmp_path: Path
) -> None:
    """A writer holding the hub's SQLite store (a backup, a shell command): the supervisor
    web answers 503 with Retry-After after its short busy timeout, not after the minute the
    link's ingest waits."""
    import sqlite3
    import time

    from province_hub import staff

    port = free_port()
    store = tmp_path / "hub.sqlite"
    settings = hub_settings_factory(
        f"sqlite:///{store}",
        http_port=port,
        http_busy_timeout=0.5,
        secret_key_file=tmp_path / "web-key",
    )
    hub = await start_hub(settings)
    staff.add_staff(
        hub.engine, staff_id="gm", name="GM", role="gm_hotline", password="pass-word-long-1"
    )
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        async with httpx.AsyncClient(timeout=60, auth=("gm", "pass-word-long-1")) as c:
            started = time.monotonic()
            busy = await c.get(f"http://127.0.0.1:{port}/api/v1/desk")
            waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"].isdigit()
    assert waited < 10
