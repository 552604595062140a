"""One period's statistics figures (per city and province), a city's operators, and the
report browser's revisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from province_hub.consolidation.core import (
    PeriodRef,
    Totals,
    cached,
    city_entry,
    decoded_slices,
    headers,
    iso,
    period_ref,
)
from province_hub.deadlines import Deadlines, period_timeliness
from province_hub.figures import (
    SATISFACTION_COUNTS,
    SLICE_COUNTS,
    STAT_COUNTS,
    QaFigures,
    StatisticsFigures,
    kpi,
    statistics_operators,
)
from sync.roster import City


def timeliness(
    engine: Engine,
    *,
    deadlines: Deadlines,
    period_kind: str,
    start: date,
    roster: Sequence[City],
    now: datetime,
) -> dict[str, Any]:
    """:func:`province_hub.deadlines.period_timeliness`, cached: its answer changes only with
    the store (the figures version) and when ``now`` passes the period's deadline (pending
    becomes missing). The value is shared: do not mutate it."""
    passed = now > deadlines.deadline(period_kind, start)
    codes = tuple(c.code for c in roster)
    with engine.connect() as conn:
        key = ("timeliness", id(deadlines), period_kind, start, codes, passed)
        value: dict[str, Any] = cached(
            conn,
            key,
            lambda: period_timeliness(
                engine,
                deadlines=deadlines,
                period_kind=period_kind,
                start=start,
                roster=roster,
                now=now,
            ),
        )
    return value


def _qa_kpis(conn: Connection, p: PeriodRef, codes: Sequence[str]) -> dict[str, tuple[int, int]]:
    heads = headers(conn, QaFigures, p.kind, [p.start], codes)
    return {code: (row.passed, row.sampled) for (code, _), row in heads.items()}


def figures(
    engine: Engine,
    *,
    period_kind: str,
    start: date | str,
    roster: Sequence[City],
    deadlines: Deadlines | None = None,
    now: datetime | None = None,
    slices: bool = True,
    timely: Mapping[str, Any] | None = None,
) -> Any:
    """The statistics figures of one period: one entry per roster city — its latest
    revision's counts, slices and KPIs, or ``"missing": true`` — and the province total.

    Counts carry the field names of ``StatisticsReport`` (satisfaction counts under
    ``satisfaction``), slices are under ``by_category`` / ``by_channel``, KPIs under
    ``kpis``; ``qa_pass_rate`` joins the KPIs from the period's QA reports, and with
    ``deadlines`` ``report_timeliness`` (the reports owed for this period, judged at
    ``now``) — for missing cities too, whose entry then holds that one KPI. With
    ``slices=False`` the ``by_category`` / ``by_channel`` lists are left out (and not read).
    ``timely``: the period's :func:`timeliness`, when the caller has it already.
    """
    p = period_ref(period_kind, start)
    codes = [c.code for c in roster]
    with engine.connect() as conn:
        heads = headers(conn, StatisticsFigures, p.kind, [p.start], codes, body=slices)
        qa = _qa_kpis(conn, p, codes)
    per_city: dict[str, Totals] = {}
    for (code, _), row in heads.items():
        per_city[code] = landed = Totals.empty()
        landed.add_header(row)
        if slices:
            for piece in decoded_slices(code, row.seq, row.body):
                landed.add_slice(piece)
    province = Totals.empty()
    cities: list[dict[str, Any]] = []
    missing: list[str] = []
    qa_sum = [0, 0]
    for city in roster:
        entry = city_entry(city)
        totals = per_city.get(city.code)
        if city.code in qa:
            qa_sum[0] += qa[city.code][0]
            qa_sum[1] += qa[city.code][1]
        if totals is None:
            missing.append(city.code)
            entry.update(missing=True, revision=None)
            cities.append(entry)
            continue
        head = heads[(city.code, p.start)]
        entry.update(
            missing=False,
            revision=head.revision,
            seq=head.seq,
            received_at=iso(head.received_at),
            approved_by=head.approved_by,
            **totals.as_dict(),
        )
        # None: no QA report for the period (not a zero pass rate).
        entry["kpis"]["qa_pass_rate"] = kpi(*qa[city.code]) if city.code in qa else None
        cities.append(entry)
        province.add_header(head)
        for source, target in (
            (totals.by_category, province.by_category),
            (totals.by_channel, province.by_channel),
        ):
            for key, counts in source.items():
                for name in SLICE_COUNTS:
                    target[key][name] += counts[name]
    total = province.as_dict()
    total["kpis"]["qa_pass_rate"] = kpi(*qa_sum)
    if timely is None and deadlines is not None:
        timely = timeliness(
            engine,
            deadlines=deadlines,
            period_kind=p.kind,
            start=p.start,
            roster=roster,
            now=now or datetime.now(UTC),
        )
    if timely is not None:
        judged = timely["kpis"]
        total["kpis"]["report_timeliness"] = dict(judged["report_timeliness"])
        # How the city's statistics report of the period stands: on_time, late, missing,
        # pending (not due yet) or before_go_live (owed before the hub went live).
        standing = {
            r["city_code"]: r["status"] for r in timely["rows"] if r["report"] == "statistics"
        }
        for entry in cities:
            entry.setdefault("kpis", {})["report_timeliness"] = dict(
                judged["by_city"][entry["city_code"]]
            )
            if entry["city_code"] in standing:
                entry["report_status"] = standing[entry["city_code"]]
    total.update(
        cities_reporting=len(roster) - len(missing),
        cities_missing=missing,
    )
    if not slices:
        for entry in (*cities, total):
            entry.pop("by_category", None)
            entry.pop("by_channel", None)
    return {"period": p.as_dict(), "cities": cities, "province": total}


def operators(
    engine: Engine, *, period_kind: str, start: date | str, city_code: str
) -> list[dict[str, Any]]:
    """Operator workload of one city's latest statistics revision of the period."""
    p = period_ref(period_kind, start)
    with engine.connect() as conn:
        heads = headers(conn, StatisticsFigures, p.kind, [p.start], [city_code], body=True)
    rows = [o for h in heads.values() for o in statistics_operators(h.city_code, h.seq, h.body)]
    return [
        {"operator_id": r.operator_id, "registered": r.registered, "closed": r.closed} for r in rows
    ]


def revisions(
    engine: Engine, *, city_code: str, period_kind: str, start: date | str
) -> dict[str, Any]:
    """Every accepted statistics revision a city sent for a period (the report browser),
    oldest first, each with its counts and what changed from the revision before it
    (``{field: [before, after]}``, slices by ``category:KEY.field`` / ``channel:KEY.field``);
    the one counted is the last."""
    p = period_ref(period_kind, start)
    with engine.connect() as conn:
        heads = conn.execute(
            select(StatisticsFigures)
            .where(
                StatisticsFigures.city_code == city_code,
                StatisticsFigures.period_kind == p.kind,
                StatisticsFigures.period_start == p.start,
            )
            .order_by(StatisticsFigures.revision, StatisticsFigures.seq)
        ).all()
    by_seq = {h.seq: decoded_slices(h.city_code, h.seq, h.body) for h in heads}
    out: list[dict[str, Any]] = []
    previous: dict[str, int] = {}
    for head in heads:
        flat = {name: getattr(head, name) for name in (*STAT_COUNTS, *SATISFACTION_COUNTS)}
        for row in by_seq[head.seq]:
            for name in SLICE_COUNTS:
                flat[f"{row.dimension}:{row.key}.{name}"] = getattr(row, name)
        totals = Totals.empty()
        totals.add_header(head)
        for row in by_seq[head.seq]:
            totals.add_slice(row)
        changes = (
            {
                key: [previous.get(key, 0), flat.get(key, 0)]
                for key in sorted(set(previous) | set(flat))
                if previous.get(key, 0) != flat.get(key, 0)
            }
            if out
            else {}
        )
        out.append(
            {
                "revision": head.revision,
                "seq": head.seq,
                "received_at": iso(head.received_at),
                "approved_by": head.approved_by,
                **totals.as_dict(),
                "changes": changes,
            }
        )
        previous = flat
    return {"city_code": city_code, "period": p.as_dict(), "revisions": out}
