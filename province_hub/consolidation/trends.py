"""KPIs over time (trends) and cities side by side (comparison, rankings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from province_hub.consolidation.core import (
    HIGHER_IS_BETTER,
    KPI_DEFINITIONS,
    FiguresError,
    Totals,
    headers,
    period_ref,
    statistics_kpis,
)
from province_hub.consolidation.period_figures import figures
from province_hub.deadlines import Deadlines, timeliness_series
from province_hub.figures import SATISFACTION_COUNTS, STAT_COUNTS, QaFigures, StatisticsFigures, kpi
from sync.roster import City

#: Every KPI a trend can draw (report timeliness judged by the hub's deadline settings).
TREND_KPIS = (*KPI_DEFINITIONS, "qa_pass_rate", "report_timeliness")


def _kpis_of(head: Any) -> dict[str, Any]:
    counts = {n: getattr(head, n) for n in STAT_COUNTS}
    satisfaction = {n: getattr(head, n) for n in SATISFACTION_COUNTS}
    return statistics_kpis(counts, satisfaction)


def trend(
    engine: Engine,
    *,
    kpi_name: str,
    period_kind: str,
    last_start: date | str,
    count: int,
    roster: Sequence[City],
    cities: Sequence[str] = (),
    deadlines: Deadlines | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A KPI over ``count`` periods ending with the one starting ``last_start``: the province
    series (from summed counts of the cities reporting that period) and one series per
    chosen city (``None`` where its report is missing). ``report_timeliness`` is judged by
    ``deadlines`` at ``now`` (every report a city owed for the period, from its own
    settings; a city that sent nothing is judged too)."""
    return trends(
        engine,
        kpi_names=[kpi_name],
        period_kind=period_kind,
        last_start=last_start,
        count=count,
        roster=roster,
        cities=cities,
        deadlines=deadlines,
        now=now,
    )[kpi_name]


def trends(
    engine: Engine,
    *,
    kpi_names: Sequence[str],
    period_kind: str,
    last_start: date | str,
    count: int,
    roster: Sequence[City],
    cities: Sequence[str] = (),
    deadlines: Deadlines | None = None,
    now: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`trend` of several KPIs from one read of the periods' headers (the trends page
    draws every KPI): KPI name → the same dict ``trend`` returns."""
    for name in kpi_names:
        if name not in TREND_KPIS:
            known = ", ".join(TREND_KPIS)
            raise FiguresError("figures.kpi", parameter="kpi", value=name, allowed=known)
    if not 1 <= count <= 400:
        raise FiguresError("figures.count", parameter="count", count=count)
    codes = [c.code for c in roster]
    unknown = sorted(set(cities) - set(codes))
    if unknown:
        raise FiguresError("figures.cities_unknown", parameter="cities", codes=", ".join(unknown))
    periods = period_ref(period_kind, last_start).back(count)
    starts = [p.start for p in periods]
    with engine.connect() as conn:
        stat = (
            headers(conn, StatisticsFigures, period_kind, starts, codes)
            if any(n not in ("qa_pass_rate", "report_timeliness") for n in kpi_names)
            else {}
        )
        qa = (
            headers(conn, QaFigures, period_kind, starts, codes)
            if "qa_pass_rate" in kpi_names
            else {}
        )
    # Per period: the province's KPIs (summed counts) and each chosen city's.
    province_kpis: list[dict[str, Any]] = []
    reporting: list[int] = []
    city_kpis: dict[str, list[dict[str, Any] | None]] = {code: [] for code in cities}
    qa_reporting: list[int] = []
    for p in periods:
        rows = [stat[(code, p.start)] for code in codes if (code, p.start) in stat]
        totals = Totals.empty()
        for r in rows:
            totals.add_header(r)
        values = totals.kpis()
        qa_rows = [qa[(code, p.start)] for code in codes if (code, p.start) in qa]
        values["qa_pass_rate"] = kpi(
            sum(r.passed for r in qa_rows), sum(r.sampled for r in qa_rows)
        )
        province_kpis.append(values)
        reporting.append(len(rows))
        qa_reporting.append(len(qa_rows))
        for code in cities:
            head = stat.get((code, p.start))
            own = _kpis_of(head) if head is not None else {}
            qa_head = qa.get((code, p.start))
            if qa_head is not None:
                own["qa_pass_rate"] = kpi(qa_head.passed, qa_head.sampled)
            city_kpis[code].append(own)
    out: dict[str, dict[str, Any]] = {}
    if "report_timeliness" in kpi_names:
        out["report_timeliness"] = _timeliness_trend(
            engine, period_kind, starts, roster, cities, deadlines, now
        )
    for name in kpi_names:
        if name == "report_timeliness":
            continue
        is_qa = name == "qa_pass_rate"
        counted = qa_reporting if is_qa else reporting
        province = [
            {**values[name], "cities_reporting": n}
            for values, n in zip(province_kpis, counted, strict=True)
        ]
        series: dict[str, list[dict[str, Any] | None]] = {
            code: [dict(own[name]) if own and name in own else None for own in city_kpis[code]]
            for code in cities
        }
        out[name] = {
            "kpi": name,
            "period_kind": period_kind,
            "periods": [p.start.isoformat() for p in periods],
            "province": province,
            "cities": series,
        }
    return out


def _timeliness_trend(
    engine: Engine,
    period_kind: str,
    starts: Sequence[date],
    roster: Sequence[City],
    cities: Sequence[str],
    deadlines: Deadlines | None,
    now: datetime | None,
) -> dict[str, Any]:
    """Report timeliness per period: the province's (every report owed, on time / due) with
    the number of cities judged, and each chosen city's (None where nothing was due yet)."""
    judged: list[dict[str, Any]] = []
    if deadlines is not None and now is not None:
        judged = timeliness_series(
            engine,
            deadlines=deadlines,
            period_kind=period_kind,
            starts=starts,
            roster=roster,
            now=now,
        )
    province = []
    series: dict[str, list[dict[str, Any] | None]] = {code: [] for code in cities}
    for i in range(len(starts)):
        kpis = judged[i]["kpis"] if judged else {"report_timeliness": kpi(0, 0), "by_city": {}}
        by_city = kpis["by_city"]
        due = sum(1 for value in by_city.values() if value["denominator"])
        province.append({**kpis["report_timeliness"], "cities_reporting": due})
        for code in cities:
            own = by_city.get(code)
            series[code].append(dict(own) if own and own["denominator"] else None)
    return {
        "kpi": "report_timeliness",
        "period_kind": period_kind,
        "periods": [p.isoformat() for p in starts],
        "province": province,
        "cities": series,
    }


def comparison(
    engine: Engine,
    *,
    period_kind: str,
    start: date | str,
    roster: Sequence[City],
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One row per roster city with its counts and KPIs and its rank on every KPI (1 = best;
    cities without a rate — missing, or a zero denominator — are not ranked), beside the
    same period's figures of the previous period for "vs last". ``current``: this period's
    :func:`figures`, when the caller has them already (their slices are left out here);
    figures judged with deadlines carry ``report_timeliness``, ranked too — a city that sent
    nothing is ranked on it (it owed the report), once its deadline has passed."""
    # The rows carry no slices: neither period needs them read.
    if current is None:
        current = figures(engine, period_kind=period_kind, start=start, roster=roster, slices=False)
    p = period_ref(period_kind, start)
    before = figures(
        engine, period_kind=period_kind, start=p.previous().start, roster=roster, slices=False
    )
    previous = {c["city_code"]: c for c in before["cities"]}
    rows: list[dict[str, Any]] = []
    for city in current["cities"]:
        row = {k: v for k, v in city.items() if k not in ("by_category", "by_channel")}
        last = previous[city["city_code"]]
        row["previous_kpis"] = None if last["missing"] else last["kpis"]
        row["ranks"] = {}
        rows.append(row)
    names = [*KPI_DEFINITIONS, "qa_pass_rate", "report_timeliness"]
    for name in names:
        ranked = []
        for row in rows:
            value = row.get("kpis", {}).get(name)
            if value is None or (row["missing"] and name != "report_timeliness"):
                continue
            measure = value["rate"] if value["denominator"] is not None else value["numerator"]
            if measure is not None:
                ranked.append((measure, row))
        ranked.sort(key=lambda item: item[0], reverse=name in HIGHER_IS_BETTER)
        rank = 0
        last_measure: Any = object()
        for position, (measure, row) in enumerate(ranked, start=1):
            if measure != last_measure:  # ties share a rank
                rank, last_measure = position, measure
            row["ranks"][name] = rank
    return {
        "period": current["period"],
        "previous_period": before["period"],
        "rows": rows,
        "province": {
            k: v for k, v in current["province"].items() if k not in ("by_category", "by_channel")
        },
        "previous_province_kpis": before["province"]["kpis"],
    }
