"""A real Chromium (Debian's /usr/bin/chromium, driven by Playwright) against the city
console served by a real uvicorn on loopback, over a fresh SQLite store per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from city_node import services, staff
from city_node.context import CityContext, make_context
from city_node.store import create_schema
from city_node.web.app import create_app
from sync.db import make_engine
from sync.outbox import Outbox
from tests.conftest import serving

CHROMIUM = "/usr/bin/chromium"
CITY = "620100"
PASSWORD = "correct-horse-1"
STAFF = {
    "senior": "operator_senior",
    "surveyor": "surveyor",
    "leader": "leader",
}


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, which would break every asyncio test collected after this one.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("FEDSYNC_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)  # CI installs it: a missing browser must not pass as a skip
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@dataclass
class LiveConsole:
    url: str
    engine: Engine
    ctx: CityContext


@pytest.fixture
def live_console(tmp_path: Any) -> Iterator[LiveConsole]:
    engine = make_engine(f"sqlite:///{tmp_path / 'city.sqlite'}")
    create_schema(engine)
    services.open_store(engine, CITY)
    for staff_id, role in STAFF.items():
        staff.add(engine, staff_id=staff_id, name=staff_id.title(), role=role, password=PASSWORD)
    ctx = make_context(engine, CITY)
    app = create_app(ctx, Outbox(engine), secret_key=b"b" * 32)
    with serving(app) as url:
        yield LiveConsole(url, engine, ctx)
    engine.dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(5000)
    pg = context.new_page()
    yield pg
    context.close()
