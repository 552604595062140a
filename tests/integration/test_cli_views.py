"""``fedsync city … --json`` prints the city API's view models: the same ticket and report a
script gets from ``/api/v1``, read from one store by both (SQLite and PostgreSQL; each CLI
command closes its engine, so nothing is left open in-process)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from city_node import services, staff
from city_node.context import make_context
from city_node.store import create_schema
from city_node.web.app import create_app
from sync.cli import main
from sync.db import make_engine
from sync.outbox import Outbox
from tests.conftest import serving

CITY = "620100"
PASSWORD = "correct-horse-1"
_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT")

pytestmark = pytest.mark.timeout(120)


def _moments(value: Any) -> Any:
    """Date-times as values: the API writes UTC as ``Z``, the CLI as ``+00:00``."""
    if isinstance(value, dict):
        return {k: _moments(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_moments(v) for v in value]
    if isinstance(value, str) and _MOMENT.match(value):
        return datetime.fromisoformat(value)
    return value


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_cli_json_is_the_api_view(databases: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = databases("views")
    engine = make_engine(url)
    create_schema(engine)
    services.open_store(engine, CITY)
    for staff_id, role in (("op-j", "operator_junior"), ("stat", "statistician")):
        staff.add(engine, staff_id=staff_id, name=staff_id, role=role, password=PASSWORD)
    app = create_app(make_context(engine, CITY), Outbox(engine), secret_key=b"k" * 32)
    city = ["--code", CITY, "--database-url", url]
    try:
        with serving(app) as base_url:
            registered = _cli(
                capsys,
                "city",
                "ticket",
                "register",
                "--as",
                "op-j",
                "--kind",
                "complaint",
                "--category",
                "NET.BROADBAND",
                "--phone",
                "13800000001",
                "--content",
                "宽带断网两天",
                "--then",
                "dispatch",
                "--branch",
                "城区营业部",
                "--json",
                *city,
            )
            shown = _cli(
                capsys, "city", "ticket", "show", "--id", str(registered["id"]), "--json", *city
            )
            listed = _cli(capsys, "city", "ticket", "list", "--json", *city)
            drafted = _cli(
                capsys,
                "city",
                "report",
                "draft",
                "--kind",
                "statistics",
                "--period",
                "day",
                "--start",
                "2026-01-05",
                "--as",
                "stat",
                "--json",
                *city,
            )
            with httpx.Client(base_url=base_url, auth=("op-j", PASSWORD), timeout=10) as op:
                api_ticket = op.get(f"/api/v1/tickets/{registered['id']}").json()
                api_list = op.get("/api/v1/tickets").json()
            with httpx.Client(base_url=base_url, auth=("stat", PASSWORD), timeout=10) as stat:
                api_report = stat.get(f"/api/v1/reports/{drafted['id']}").json()
    finally:
        engine.dispose()

    # Only the caller's next actions (a signed-in caller's question) are the API's alone;
    # the id is the same number everywhere (register, show, list, API).
    assert "start" in api_ticket.pop("allowed_actions")
    assert "allowed_actions" not in registered
    assert isinstance(registered["id"], int) and registered["id"] == api_ticket["id"]
    expected = _moments(api_ticket)
    assert _moments(registered) == expected
    assert _moments(shown) == expected
    assert shown["status"] == "dispatched" and shown["branch"] == "城区营业部"
    assert [h["action"] for h in shown["history"]] == ["register", "dispatch"]
    assert _moments(listed) == _moments(api_list) and len(listed) == 1
    assert _moments(drafted) == _moments(api_report)
    assert drafted["kind"] == "statistics" and drafted["status"] == "draft"
