"""Promise: the city console's OpenAPI document is the truth about its API.

Schemathesis over ``/openapi.json`` against the real console (uvicorn, a filled SQLite
store): for every operation, generated requests never make the server fail, and every
response matches a documented status code, content type and schema — refusals included
(``{"detail": ...}`` for 400/401/403/404/409/413/422/429/503, with ``error_id`` for 500),
and path ids declared 1..2^63-1. Examples are bounded to keep the run short.

As for the hub (tests/integration/test_hub_openapi.py), ``positive_data_acceptance`` is left
out: rules such as "a report period must have begun" or "this ticket is closed" cannot be
written in OpenAPI, and such requests are rightly refused with a documented 409/422.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from city_node import services
from tests.conftest import serving
from tests.security.conftest import PASSWORD, make_console, new_ticket

pytestmark = pytest.mark.timeout(600)


def basic(who: str) -> str:
    return "Basic " + base64.b64encode(f"{who}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("console-openapi")
    engine, ctx, app = make_console(f"sqlite:///{folder / 'city.sqlite'}")
    from city_node import tickets
    from city_node.context import Actor
    from city_node.domain import Role
    from city_node.tickets import NewTicket
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    junior = Actor("junior", Role.OPERATOR_JUNIOR)
    for _ in range(3):
        fields = {k: v for k, v in new_ticket().items()}
        tickets.register(ctx, junior, NewTicket(**fields))
    notice = pb.Notice(seq=1, kind=pb.TASK, priority=pb.HIGH, title="t", body="b", sender="hq")
    notice.created_at.GetCurrentTime()
    services.accept_notice(engine, notice)
    with serving(app) as url:
        yield url
    engine.dispose()


def caller_for(path: str) -> str:
    if path.startswith("/api/v1/tickets") or path.startswith("/api/v1/answers"):
        return "senior"
    if path.startswith("/api/v1/qa"):
        return "inspector"
    return "leader"


def test_the_console_api_keeps_its_openapi_contract(console_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{console_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation its schema cannot describe: {result!r}"
        operations.append(result.ok())
    labels = {op.label for op in operations}
    assert "GET /api/v1/tickets/{ticket_id}" in labels and "POST /api/v1/reports" in labels
    for operation in operations:
        _exercise(operation, basic(caller_for(operation.path)))


def _exercise(operation: Any, auth: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    def check(case: Any) -> None:
        case.call_and_validate(
            headers={"Authorization": auth}, excluded_checks=[positive_data_acceptance]
        )

    check()


def test_the_document_declares_the_error_model_and_id_bounds(console_url: str) -> None:
    import httpx

    doc = httpx.get(f"{console_url}/openapi.json").json()
    one = doc["paths"]["/api/v1/reports/{report_id}"]["get"]
    assert {"401", "403", "404", "413", "422", "503"} <= set(one["responses"])
    problem = one["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert problem.endswith("/Problem")
    (param,) = [p for p in one["parameters"] if p["name"] == "report_id"]
    assert param["schema"]["minimum"] == 1 and param["schema"]["maximum"] == 2**63 - 1
    assert "HTTPValidationError" not in doc.get("components", {}).get("schemas", {})
