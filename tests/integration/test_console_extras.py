"""Small promises of the city console: the API docs work offline (Swagger UI from the
package, no CDN), a favicon is served, and a leader cannot open the ticket register form by
URL any more than from the menu."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from city_node import services, staff
from city_node.context import make_context
from city_node.store import create_schema
from city_node.web.app import create_app
from sync.db import make_engine
from sync.outbox import Outbox
from tests.conftest import serving
from tests.integration.test_city_api import CITY, PASSWORD, Console

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sqlite_console(tmp_path: Any) -> Iterator[Console]:
    """These promises do not depend on the store: SQLite only."""
    engine = make_engine(f"sqlite:///{tmp_path / 'city.sqlite'}")
    create_schema(engine)
    services.open_store(engine, CITY)
    for staff_id, role in (("leader", "leader"), ("senior", "operator_senior")):
        staff.add(engine, staff_id=staff_id, name=staff_id, role=role, password=PASSWORD)
    app = create_app(make_context(engine, CITY), Outbox(engine), secret_key=b"x" * 32)
    with serving(app) as base_url:
        yield Console(base_url, engine, make_context(engine, CITY))
    engine.dispose()


def test_api_docs_load_nothing_from_elsewhere(sqlite_console: Console) -> None:
    with sqlite_console.anonymous() as c:
        page = c.get("/api/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources, page.text
        assert all(s.startswith("/") for s in sources), sources  # same origin only
        assert "cdn" not in page.text.lower()
        for asset in sources:
            got = c.get(asset)
            assert got.status_code == 200, asset
        script = c.get("/static/common/swagger-ui-bundle.js")
        assert "SwaggerUIBundle" in script.text
        assert c.get("/openapi.json").json()["info"]["title"].startswith("fedsync city console")


def test_favicon(sqlite_console: Console) -> None:
    with sqlite_console.anonymous() as c:
        icon = c.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


@pytest.mark.parametrize(("who", "status"), [("leader", 403), ("senior", 200)])
def test_register_form_only_for_those_who_register(
    sqlite_console: Console, who: str, status: int
) -> None:
    with sqlite_console.browser(who) as c:
        page = c.get("/tickets/new")
    assert page.status_code == status
    assert ('id="register"' in page.text) == (status == 200)
