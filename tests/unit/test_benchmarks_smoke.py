"""The city benchmarks run end to end at a tiny size (no timing is asserted: figures on a
shared machine say nothing in a test; this only proves the harnesses still work)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks import city_register, city_reports


def _run(main: Callable[[list[str]], int], argv: list[str], capsys: Any) -> dict[str, Any]:
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary: dict[str, Any] = json.loads(out[-1])
    return summary


def _engine_args(engine: str, request: pytest.FixtureRequest) -> list[str]:
    if engine not in request.config.getoption("--engines").split(","):
        pytest.skip(f"{engine} not selected with --engines")
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


def test_ingest_benchmark_compares_statistics_reports_with_suggestion_batches(
    capsys: Any,
) -> None:
    """``--bodies both``: one run of each body, the reports' figures landed at the hub."""
    from benchmarks import ingest

    argv = ["--engine", "sqlite", "--cities", "2", "--per-city", "40", "--bodies", "both"]
    summary = _run(ingest.main, [*argv, "--fill-workers", "1", "--json"], capsys)
    assert summary["suggestions"]["bodies"] == "suggestions"
    assert summary["suggestions"]["figure_rows"] == 0
    statistics = summary["statistics"]
    assert statistics["envelopes"] == 80
    # Every report landed its figure row (its slices are kept in the row's body, h0007).
    assert statistics["figure_rows"] == 80
    assert summary["statistics_vs_suggestions"] > 0


def test_ingest_attribution_run_lands_no_figures(capsys: Any) -> None:
    """``--without figures``: the statistics run's hub skips landing them (and says so)."""
    from benchmarks import ingest

    argv = ["--engine", "sqlite", "--cities", "1", "--per-city", "20", "--bodies", "statistics"]
    summary = _run(
        ingest.main, [*argv, "--without", "figures", "--fill-workers", "1", "--json"], capsys
    )
    assert summary["envelopes"] == 20
    assert summary["figure_rows"] == 0
    assert summary["without"] == ["figures"]


def test_ingest_benchmark_all_compares_reports_with_both_batch_sizes(capsys: Any) -> None:
    """``--bodies all``: one-suggestion batches, a day's batches, reports; both shares."""
    from benchmarks import ingest

    argv = ["--engine", "sqlite", "--cities", "1", "--per-city", "20", "--bodies", "all"]
    summary = _run(ingest.main, [*argv, "--fill-workers", "1", "--json"], capsys)
    assert [summary[k]["bodies"] for k in ("suggestions", "daily_suggestions", "statistics")] == [
        "suggestions",
        "daily-suggestions",
        "statistics",
    ]
    assert summary["daily_suggestions"]["envelopes"] == 20
    assert summary["daily_suggestions"]["figure_rows"] == 0
    assert summary["statistics"]["figure_rows"] == 20
    assert summary["statistics_vs_suggestions"] > 0
    assert summary["statistics_vs_daily_suggestions"] > 0


def test_daily_suggestion_batches_match_their_reports_and_keep_the_rules() -> None:
    """A day's batch carries one suggestion per suggestion its day's report counts."""
    from datetime import date

    from benchmarks.ingest import daily_suggestions_body, statistics_body
    from sync.validation import broken_rule

    for number in range(1, 30):
        batch = daily_suggestions_body("620100", number, "2026-11-26")
        report = statistics_body("620100", number, "2026-11-26")
        assert broken_rule("suggestion_batch", batch, today=date(2026, 11, 27)) is None
        assert batch.batch_date == report.period.start
        assert len(batch.suggestions) == report.suggestions_received
        counted = {s.key: s.suggestions for s in report.by_category if s.suggestions}
        filed: dict[str, int] = {}
        for suggestion in batch.suggestions:
            filed[suggestion.category] = filed.get(suggestion.category, 0) + 1
        assert filed == counted
        assert len({s.ticket_id for s in batch.suggestions}) == len(batch.suggestions)


def test_statistics_bodies_keep_the_hubs_rules() -> None:
    from datetime import date

    from benchmarks.ingest import statistics_body
    from sync.validation import broken_rule

    for number in range(1, 30):
        body = statistics_body("620100", number, "2026-11-26")
        assert broken_rule("statistics_report", body, today=date(2026, 11, 27)) is None
        assert len(body.by_category) >= 10 and len(body.operators) >= 10


def test_province_figures_benchmark_runs(capsys: Any) -> None:
    from benchmarks import province_figures

    argv = ["--engine", "sqlite", "--cities", "2", "--years", "1", "--runs", "3", "--json"]
    summary = _run(province_figures.main, argv, capsys)
    assert summary["reports"] > 2 * 365  # a day, week, month... report per period and city
    for call in ("figures", "comparison", "trend"):
        assert summary[call]["p95_ms"] >= summary[call]["p50_ms"] > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_hub_web_benchmark_runs(engine: str, request: pytest.FixtureRequest, capsys: Any) -> None:
    from benchmarks import hub_web

    argv = [*_engine_args(engine, request), "--cities", "2", "--years", "1", "--requests", "3"]
    summary = _run(hub_web.main, [*argv, "--json"], capsys)
    # Two cities, every period of a year that has ended: ~365 days, 52 weeks, 12 months...
    assert 400 < summary["load"]["reports"] < 500 * 2
    results = summary["results"]
    assert set(results) == {"figures", "comparison", "trend"}
    assert results["figures"]["cities_reporting"] == 2  # the timed month had real reports
    assert all(r["p95_ms"] > 0 for r in results.values())


@pytest.mark.parametrize(
    ("engine", "replicas"),
    [
        pytest.param("sqlite", 1, id="sqlite"),
        pytest.param("postgresql", 2, id="postgresql-2-replicas", marks=pytest.mark.postgres),
    ],
)
def test_notice_fanout_benchmark_runs(
    engine: str, replicas: int, request: pytest.FixtureRequest, capsys: Any
) -> None:
    from benchmarks import notice_fanout

    argv = [*_engine_args(engine, request), "--replicas", str(replicas), "--cities", "2"]
    argv += ["--notices", "3", "--warmup", "1", "--interval", "0.05", "--json"]
    summary = _run(notice_fanout.main, argv, capsys)
    assert summary["notices"] == 3 and summary["cities"] == 2
    assert summary["p99_ms"] >= summary["p50_ms"] > 0
    if replicas == 2:
        # One city streams from the replica that created the notices, one from the other.
        assert len(summary["by_replica"]) == 2


def test_a_flag_given_to_a_benchmark_replaces_its_own() -> None:
    """`fedsync` refuses an option given twice: `--city-arg=--heartbeat-seconds=2` replaces
    the benchmark's own `--heartbeat-seconds 5` rather than repeating it."""
    from benchmarks.flags import with_extra

    own = ["--code", "620100", "--no-schedule", "--heartbeat-seconds", "5"]
    assert with_extra(own, ["--heartbeat-seconds=2"]) == [
        "--code",
        "620100",
        "--no-schedule",
        "--heartbeat-seconds=2",
    ]
    assert with_extra(own, ["--db-workers", "2"]) == [*own, "--db-workers", "2"]
    assert with_extra(own, ["--no-schedule"]) == [
        "--code",
        "620100",
        "--heartbeat-seconds",
        "5",
        "--no-schedule",
    ]


def test_rules_benchmark_times_every_body(capsys: Any) -> None:
    from benchmarks import rules

    assert rules.main(["--number", "10", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "rules/suggestions",
        "rules/statistics",
        "rules/daily-suggestions",
    ]
    assert all(float(line.split("broken_rule ")[1].split(" ")[0]) > 0 for line in lines)
