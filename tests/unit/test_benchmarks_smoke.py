"""The city benchmarks run end to end at a tiny size (no timing is asserted: figures on a
shared machine say nothing in a test; this only proves the harnesses still work)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from benchmarks import city_register, city_reports


def _run(main: Callable[[Sequence[str]], int], argv: list[str], capsys: Any) -> dict[str, Any]:
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary: dict[str, Any] = json.loads(out[-1])
    return summary


def _engine_args(engine: str, request: pytest.FixtureRequest) -> list[str]:
    if engine == "sqlite":
        return ["--engine", "sqlite"]
    return ["--engine", "postgresql", "--pg-url", request.getfixturevalue("postgres_server_url")]


ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_city_reports_benchmark_runs(
    engine: str, request: pytest.FixtureRequest, capsys: Any
) -> None:
    argv = [*_engine_args(engine, request), "--tickets", "2000", "--runs", "1", "--json"]
    summary = _run(city_reports.main, argv, capsys)
    assert summary["tickets"] == 2000
    # The seeded months hold tickets, and the report was built for both of them.
    for month in ("last", "middle"):
        assert summary[f"{month}_registered"] > 0
        assert summary[f"{month}_seconds"] is not None


@pytest.mark.parametrize("engine", ENGINES)
def test_city_register_benchmark_runs(
    engine: str, request: pytest.FixtureRequest, capsys: Any
) -> None:
    argv = [
        *_engine_args(engine, request),
        "--tickets",
        "40",
        "--runs",
        "1",
        "--preload",
        "2000",
        "--batch-size",
        "10",
        "--threads",
        "2",
        "--concurrent-sqlite",
        "--json",
    ]
    summary = _run(city_register.main, argv, capsys)
    for mode in city_register.MODES:
        assert summary[f"{mode}_per_s"] > 0
