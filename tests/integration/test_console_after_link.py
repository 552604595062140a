"""``fedsync city`` with a console starts its link first and builds the console beside it
(``build(..., console_after_link=True)``, what ``serve`` does): the console still serves,
the link still reaches the hub, a console the settings refuse is still refused before
anything starts, and the node stops cleanly."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from city_node.app import build
from province_hub.store import CityLink
from sync.config import ConfigError
from tests.conftest import wait_until

pytestmark = pytest.mark.asyncio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_console_is_built_after_the_link_starts_and_serves(
    databases: Any,
    hub_settings_factory: Any,
    city_settings_factory: Any,
    start_hub: Any,
    tmp_path: Path,
) -> None:
    hub = await start_hub(hub_settings_factory(databases("hub")))
    port = _free_port()
    settings = city_settings_factory(
        "620100",
        databases("city"),
        hub.port,
        http_port=port,
        secret_key_file=tmp_path / "console.key",
    )
    node = build(settings, console_after_link=True)
    assert node.console is None  # built by run(), beside the link
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    try:

        def contacted() -> bool:
            with hub.engine.connect() as conn:
                found = conn.execute(
                    select(CityLink.first_contact_at).where(CityLink.city_code == "620100")
                ).scalar()
            return found is not None

        await wait_until(contacted, what="the city's first contact with the hub")

        async def answers() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"http://127.0.0.1:{port}/login")
            except httpx.TransportError:
                return False
            return response.status_code == 200

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not await answers():
            assert loop.time() < deadline, "the console did not answer within 20 s"
            await asyncio.sleep(0.1)
        assert node.console is not None
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def test_a_refused_console_is_refused_before_anything_starts(
    databases: Any, city_settings_factory: Any, tmp_path: Path
) -> None:
    settings = city_settings_factory(
        "620100",
        databases("city"),
        1,
        http_host="0.0.0.0",
        http_port=_free_port(),
        secret_key_file=tmp_path / "console.key",
    )
    with pytest.raises(ConfigError, match="http_tls_cert"):
        build(settings, console_after_link=True)


async def test_a_bad_console_key_is_refused_before_the_link_starts(
    databases: Any, city_settings_factory: Any, tmp_path: Path
) -> None:
    key = tmp_path / "console.key"
    key.write_text("short\n")
    key.chmod(0o600)
    url = databases("city")
    settings = city_settings_factory("620100", url, 1, http_port=_free_port(), secret_key_file=key)
    with pytest.raises(ConfigError, match="the key has 5 bytes"):
        build(settings, console_after_link=True)


async def test_a_stop_during_the_console_build_starts_nothing_more(
    databases: Any,
    city_settings_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from city_node import scheduler

    caught_up: list[object] = []
    monkeypatch.setattr(scheduler, "catch_up", lambda ctx: caught_up.append(ctx))
    port = _free_port()
    settings = city_settings_factory(
        "620100",
        databases("city"),
        1,  # no hub answers: the link only retries
        http_port=port,
        secret_key_file=tmp_path / "console.key",
        schedule=True,
    )
    node = build(settings, console_after_link=True)
    stop = asyncio.Event()
    stop.set()  # the signal came while the console was being built
    await asyncio.wait_for(node.run(stop), timeout=30)
    assert node.console is not None  # the build finished...
    assert caught_up == []  # ...but no routine, no companions
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # and the console never served
