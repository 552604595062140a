"""Dates in the supervisor web's queries: out of the report years, a 422 naming the
parameter; never a 500 (``date`` arithmetic at year 1 or 9999 overflows).

Walks every GET route of the hub web (API and pages) that takes a date query parameter,
over a real server on loopback, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from sync.db import make_engine
from tests.conftest import serving
from tests.hub_web_support import CODES, PASSWORD, fill, web_app

#: Past both ends of the years a report may have, and the extremes ``date`` allows.
OUT_OF_RANGE = ("0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31")
#: The first and last days allowed (a period's start where one is asked: January 1st is the
#: first day of every period kind; 2100-12-01 of a month).
IN_RANGE = ("2000-01-01", "2100-12-01")


def _is_date(annotation: Any) -> bool:
    """Whether a parameter's annotation is (optionally) a date."""
    if annotation is dt.date:
        return True
    return any(_is_date(a) for a in typing.get_args(annotation))


def _routes(routes: Any) -> Iterator[Any]:
    """Every endpoint, through included routers (FastAPI wraps those)."""
    for r in routes:
        if hasattr(r, "original_router"):
            yield from _routes(r.original_router.routes)
        else:
            yield r


#: Values for the other query parameters a route requires.
REQUIRED = {"city": CODES[0]}


def date_routes(app: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(path, query name, the route's other required parameters) of every GET route without
    path parameters taking a date."""
    found = []
    for route in _routes(app.routes):
        if (
            not isinstance(route, APIRoute)
            or "GET" not in (route.methods or ())
            or "{" in route.path
        ):
            continue
        required = {
            p.alias: REQUIRED[p.alias]  # a KeyError here: give the new parameter a value
            for p in route.dependant.query_params
            if p.field_info.is_required()
        }
        for param in route.dependant.query_params:
            if _is_date(param.field_info.annotation):
                found.append((route.path, param.alias, required))
    return found


@pytest.fixture
def site(databases: Any) -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]]]]:
    engine = make_engine(databases("hubdates"))
    fill(engine)
    app = web_app(engine)
    with serving(app) as url:
        yield url, date_routes(app)
    engine.dispose()


def test_every_date_query_refuses_years_out_of_range(site: tuple[str, Any]) -> None:
    url, routes = site
    paths = {path for path, _, _ in routes}
    # The walk must reach the places that overflowed and the figure views.
    assert {"/api/v1/audit", "/api/v1/suggestions", "/api/v1/figures", "/audit"} <= paths
    with httpx.Client(base_url=url, timeout=30) as c:
        # Logged in as the admin (pages use the session; the API takes it too).
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert token, "no CSRF field on the login page"
        form = {"csrf_token": token.group(1), "staff_id": "admin", "password": PASSWORD}
        assert c.post("/login", data={**form, "next": "/"}).status_code == 303
        for path, name, required in routes:
            for value in OUT_OF_RANGE:
                r = c.get(path, params={**required, name: value})
                assert r.status_code == 422, (path, name, value, r.status_code, r.text[:300])
                assert value in r.text and "2000..2100" in r.text, (path, name, r.text[:300])
                if path.startswith("/api/"):
                    assert r.json()["detail"] == (
                        f"query.{name}: date {value} is outside the years 2000..2100"
                    ), r.text
            for value in IN_RANGE:
                params = {**required, name: value}
                if name == "start" and value.endswith("12-01"):
                    params["period"] = "month"
                r = c.get(path, params=params)
                assert r.status_code < 500, (path, name, value, r.status_code, r.text[:300])
