"""The supervisor web's exports against their views, over a real uvicorn on SQLite and
PostgreSQL: an export takes its view's query (the trend's ``last``, the warnings' week) with
the same defaults and refusals; its period line and file name are the period shown; the
suggestion batches of one date come newest (highest number) first everywhere; the report
browser's export links work without a city chosen; the desk export names the customer tier
as the pages do; and the notices API documents its 429 like the rest of ``/api/v1``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from sync.db import make_engine
from tests.conftest import serving
from tests.hub_web_support import PASSWORD, HubStore, fill, web_app


@dataclass
class Live:
    url: str
    engine: Engine
    store: HubStore

    def api(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(who, PASSWORD), timeout=30)

    @contextmanager
    def browser(self, who: str) -> Iterator[httpx.Client]:
        """A client signed in through the login form (session cookie), like a browser."""
        with httpx.Client(base_url=self.url, timeout=30) as c:
            token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
            assert token
            form = {"csrf_token": token.group(1), "staff_id": who, "password": PASSWORD}
            assert c.post("/login", data=form).status_code == 303
            yield c


@pytest.fixture
def live(databases: Any) -> Iterator[Live]:
    url = databases("hubexports")
    engine = make_engine(url)
    store = fill(engine)
    with serving(web_app(engine)) as u:
        yield Live(u, engine, store)
    engine.dispose()


def _preamble(body: bytes) -> dict[str, str]:
    """The lines above a CSV export's header row, as label -> value."""
    out = {}
    for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))):
        if not row:
            break
        out[row[0]] = row[1]
    return out


def _rows(body: bytes) -> list[dict[str, str]]:
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    blank = lines.index([])
    header = lines[blank + 1]
    return [dict(zip(header, r, strict=True)) for r in lines[blank + 2 :]]


def _file_name(response: httpx.Response) -> str:
    found = re.search(r'filename="([^"]+)"', response.headers["content-disposition"])
    assert found, response.headers
    return found.group(1)


# --- one check of a period's start ----------------------------------------------------------------


def test_the_timeliness_export_refuses_a_start_inside_its_period_as_every_view(live: Live) -> None:
    bad = {"format": "csv", "period": "month", "start": "2026-11-03"}
    with live.api("admin") as c:
        timely = c.get("/api/v1/export/timeliness", params=bad)
        figures = c.get("/api/v1/figures", params=bad)
        good = c.get("/api/v1/export/timeliness", params={**bad, "start": "2026-11-01"})
    assert timely.status_code == figures.status_code == 422, timely.text
    assert timely.json()["detail"] == figures.json()["detail"]
    assert "start 2026-11-03" in timely.json()["detail"]
    assert good.status_code == 200
