"""A real city console (uvicorn on loopback) over a real store, one account per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from city_node import services, staff
from city_node.context import CityContext, make_context
from city_node.store import create_schema
from city_node.web.app import create_app
from sync.db import make_engine
from sync.outbox import Outbox
from tests.conftest import serving

CITY = "620100"
PASSWORD = "correct-horse-1"
#: staff id → role: one account per role.
ROLES = {
    "junior": "operator_junior",
    "senior": "operator_senior",
    "manager": "manager_hotline",
    "surveyor": "surveyor",
    "inspector": "qa_inspector",
    "clerk": "materials_clerk",
    "stat": "statistician",
    "leader": "leader",
    "leader2": "leader",
}


@dataclass
class Console:
    base_url: str
    engine: Engine
    ctx: CityContext

    def api(self, who: str, password: str = PASSWORD) -> httpx.Client:
        """A script's client: HTTP Basic as staff member ``who``."""
        return httpx.Client(base_url=self.base_url, auth=(who, password), timeout=30)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)

    @contextmanager
    def browser(self, who: str) -> Iterator[httpx.Client]:
        """A client holding a session cookie, logged in through the login form."""
        with self.anonymous() as client:
            token = csrf_of(client.get("/login").text)
            done = client.post(
                "/login", data={"csrf_token": token, "staff_id": who, "password": PASSWORD}
            )
            assert done.status_code == 303, done.text
            yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


def new_ticket(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "complaint",
        "category": "BILL.DISPUTE",
        "channel": "phone",
        "customer_phone": "13812345678",
        "customer_name": "李四",
        "tier": "ordinary",
        "content": "charged twice for October",
    }
    body.update(overrides)
    return body


def make_console(url: str, **app_options: Any) -> tuple[Engine, CityContext, Any]:
    engine = make_engine(url)
    create_schema(engine)
    services.open_store(engine, CITY)
    for staff_id, role in ROLES.items():
        staff.add(engine, staff_id=staff_id, name=staff_id.title(), role=role, password=PASSWORD)
    ctx = make_context(engine, CITY, **app_options.pop("context", {}))
    app = create_app(ctx, Outbox(engine), secret_key=b"k" * 32, **app_options)
    return engine, ctx, app


@pytest.fixture
def console(databases: Any) -> Iterator[Console]:
    engine, ctx, app = make_console(databases("console"))
    with serving(app) as base_url:
        yield Console(base_url, engine, ctx)
    engine.dispose()
