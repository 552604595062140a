"""The web stack is loaded only by a process that serves a web page.

A city without a console and a hub without an HTTP port import neither FastAPI, Starlette,
pydantic, Jinja, uvicorn nor openpyxl: the demo runs 13 such cities (in one process) and the ingest
benchmark such a hub, and each of those imports costs tens of MB of resident memory per
process and a fraction of a second of start-up (README "Demo footprint"). Each case runs in
a fresh interpreter, so what another test imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Top-level packages of the web stack (what a console or the supervisor web needs).
WEB_STACK = (
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic_core",
    "jinja2",
    "uvicorn",
    "openpyxl",
    "multipart",
    "python_multipart",
    "itsdangerous",
)


def _loaded_after(statements: str) -> set[str]:
    """Top-level packages of :data:`WEB_STACK` in ``sys.modules`` after ``statements``."""
    probe = (
        f"{statements}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(WEB_STACK)!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "statements",
    [
        # What `fedsync city` runs without --http-port: the command line, then the node.
        "import sync.cli; sync.cli.build_parser()\nimport city_node.app",
        # What `fedsync hub` runs without --http-port.
        "import sync.cli; sync.cli.build_parser()\nimport province_hub.app",
        # The demo's process of cities without a console, with what it runs.
        "import city_node.demo_cities, city_node.app, city_node.simulator_live",
    ],
    ids=["city-without-console", "hub-without-http", "demo-cities"],
)
def test_a_process_without_a_web_port_does_not_import_the_web_stack(statements: str) -> None:
    assert _loaded_after(statements) == set()


@pytest.mark.parametrize(
    "statements",
    ["import city_node.web.app", "import province_hub.web.app"],
    ids=["city-console", "supervisor-web"],
)
def test_the_probe_sees_the_web_stack_where_it_is_used(statements: str) -> None:
    # The check above would pass vacuously if the probe could not see these modules.
    assert {"fastapi", "starlette", "jinja2"} <= _loaded_after(statements)


@pytest.mark.parametrize("tier", ["city_node", "province_hub"])
def test_a_store_at_head_opens_without_alembic(tier: str, tmp_path: Path) -> None:
    # A new store is migrated by Alembic; reopening it (every restart) needs none of it.
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    probe = (
        f"from {tier}.store import MIGRATIONS, create_schema\n"
        "from sync.db import make_engine\n"
        "import json, sys\n"
        f"revision = create_schema(make_engine({url!r}))\n"
        "print(json.dumps([revision, 'alembic' in sys.modules]))"
    )

    def run() -> list[object]:
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
        ).stdout
        loaded: list[object] = json.loads(out.strip().splitlines()[-1])
        return loaded

    created, reopened = run(), run()
    from sync.migrate import head_revision

    head = head_revision(f"{tier}:migrations")
    assert created == [head, True]
    assert reopened == [head, False]
