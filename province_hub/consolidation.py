"""The province's consolidated picture, read from the figure tables (never from record blobs,
except the suggestion browser, whose texts are only in the records).

How consolidation works:

- a city's figures for a period are its **latest** accepted revision of that period (highest
  revision; the later record when a revision number came twice); quarantined records never
  landed figures, so they cannot count;
- province totals are the **sums** of the reporting cities' counts; a roster city without
  a report for the period is listed as ``missing`` (never as zeros) and adds nothing;
- every KPI is ``{"numerator", "denominator", "rate"}`` computed from the summed numerator
  and denominator — never an average of city percentages — with ``rate`` ``None`` when the
  denominator is 0. ``overtime_open`` is a count at the period's end: its KPI carries the
  count as numerator and no denominator.

Every function takes keyword arguments and returns plain dicts / lists of JSON-ready values
(dates as ISO strings), for the CLI, the HTTP API and the exports alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from province_hub.deadlines import Deadlines, period_timeliness
from province_hub.figures import (
    PERIOD_CODES,
    SATISFACTION_COUNTS,
    SLICE_COUNTS,
    STAT_COUNTS,
    OvertimeCase,
    OvertimeFigures,
    QaDefect,
    QaFigures,
    QaOperator,
    StatisticsFigures,
    kpi,
    statistics_operators,
    statistics_slices,
)
from province_hub.store import Record
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import PeriodError, period_end, period_start_for
from sync.roster import City


class FiguresError(ValueError):
    """A request for figures that cannot be answered; the message names the parameter."""

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class PeriodRef:
    """A reporting period: kind name, first day and first day after."""

    kind: str
    start: date
    end: date

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "start": self.start.isoformat(), "end": self.end.isoformat()}

    def previous(self) -> PeriodRef:
        return period_ref(self.kind, period_start_for(PERIOD_CODES[self.kind], self.start - _DAY))

    def back(self, count: int) -> list[PeriodRef]:
        """This period and the ``count - 1`` before it, oldest first."""
        out = [self]
        while len(out) < count:
            out.append(out[-1].previous())
        return out[::-1]


_DAY = timedelta(days=1)


def period_ref(kind: str, start: date | str) -> PeriodRef:
    """Check a period given by a person or a URL; the error names ``period`` or ``start``."""
    if kind not in PERIOD_CODES:
        raise FiguresError(
            f"period {kind!r} is not one of: {', '.join(PERIOD_CODES)}", parameter="period"
        )
    if isinstance(start, str):
        try:
            start = date.fromisoformat(start)
        except ValueError:
            raise FiguresError(
                f"start {start!r} is not a YYYY-MM-DD date", parameter="start"
            ) from None
    code = PERIOD_CODES[kind]
    first = period_start_for(code, start)
    if first != start:
        raise FiguresError(
            f"start {start} is not the first day of a {kind} (that {kind} starts {first})",
            parameter="start",
        )
    try:
        return PeriodRef(kind, start, period_end(code, start))
    except (PeriodError, OverflowError, ValueError) as exc:
        raise FiguresError(f"start {start}: {exc}", parameter="start") from None


# --- KPIs -------------------------------------------------------------------------------------

#: KPI name → (numerator, denominator) over the summed counts; ``None``: a plain count.
KPI_DEFINITIONS: dict[str, tuple[str, str | None]] = {
    "in_time_closure_rate": ("closed_in_time", "closed"),
    "overtime_open": ("overtime_open", None),
    "repeat_complaint_rate": ("repeat_complaints", "complaints_received"),
    "satisfaction_rate": ("satisfied_or_better", "surveyed"),
    "survey_coverage": ("surveyed", "complaints_closed"),
    "escalation_rate": ("escalations_raised", "complaints_received"),
}
#: KPIs where a higher rate is better (rankings put the highest first); the others lowest.
HIGHER_IS_BETTER = frozenset(
    {
        "in_time_closure_rate",
        "satisfaction_rate",
        "survey_coverage",
        "qa_pass_rate",
        "report_timeliness",
    }
)


def _statistics_kpis(counts: Mapping[str, int], satisfaction: Mapping[str, int]) -> dict[str, Any]:
    values = dict(counts)
    values["surveyed"] = satisfaction["surveyed"]
    values["satisfied_or_better"] = satisfaction["very_satisfied"] + satisfaction["satisfied"]
    out: dict[str, Any] = {}
    for name, (num, den) in KPI_DEFINITIONS.items():
        out[name] = kpi(values[num], None if den is None else values[den])
    return out


# --- latest revisions ----------------------------------------------------------------------------


def _latest(rows: Iterable[Any]) -> dict[tuple[str, date], Any]:
    """Each (city, period start)'s latest revision (the later seq on a tie)."""
    best: dict[tuple[str, date], Any] = {}
    for row in rows:
        key = (row.city_code, row.period_start)
        held = best.get(key)
        if held is None or (row.revision, row.seq) > (held.revision, held.seq):
            best[key] = row
    return best


def _headers(
    conn: Connection,
    model: Any,
    kind: str,
    starts: Sequence[date],
    cities: Sequence[str] | None,
    *,
    body: bool = False,
) -> dict[tuple[str, date], Any]:
    """Each (city, start)'s latest header of these periods; a statistics header's ``body``
    (its slices) is read only when asked for."""
    columns = [c for c in model.__table__.columns if body or c.name != "body"]
    query = select(*columns).where(model.period_kind == kind, model.period_start.in_(starts))
    if cities is not None:
        query = query.where(model.city_code.in_(cities))
    return _latest(conn.execute(query).all())


def _children(conn: Connection, model: Any, keys: Iterable[tuple[str, int]]) -> list[Any]:
    """The child rows of the headers ``keys`` (city, seq), in (city, seq, n) order."""
    seqs: dict[str, list[int]] = defaultdict(list)
    for city_code, seq in keys:
        seqs[city_code].append(seq)
    out: list[Any] = []
    # One ``city_code = ? AND seq IN (...)`` per city: a range scan of the primary key on
    # both engines (SQLite does not use an index for a row-value ``(a, b) IN`` list, and
    # scanned every slice: 15 ms a call over a year of four cities).
    for city_code in sorted(seqs):
        numbers = sorted(seqs[city_code])
        for i in range(0, len(numbers), 500):
            out += conn.execute(
                select(model)
                .where(model.city_code == city_code, model.seq.in_(numbers[i : i + 500]))
                .order_by(model.seq, model.n)
            ).all()
    return out


def _zero_slice() -> dict[str, int]:
    return dict.fromkeys(SLICE_COUNTS, 0)


def _slices_list(groups: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    return [{"key": key, **groups[key]} for key in sorted(groups)]


@dataclass
class _Totals:
    counts: dict[str, int]
    satisfaction: dict[str, int]
    by_category: dict[str, dict[str, int]]
    by_channel: dict[str, dict[str, int]]

    @classmethod
    def empty(cls) -> _Totals:
        return cls(
            dict.fromkeys(STAT_COUNTS, 0),
            dict.fromkeys(SATISFACTION_COUNTS, 0),
            defaultdict(_zero_slice),
            defaultdict(_zero_slice),
        )

    def add_header(self, row: Any) -> None:
        for name in STAT_COUNTS:
            self.counts[name] += getattr(row, name)
        for name in SATISFACTION_COUNTS:
            self.satisfaction[name] += getattr(row, name)

    def add_slice(self, row: Any) -> None:
        target = self.by_category if row.dimension == "category" else self.by_channel
        counts = target[row.key]
        for name in SLICE_COUNTS:
            counts[name] += getattr(row, name)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts,
            "satisfaction": dict(self.satisfaction),
            "by_category": _slices_list(self.by_category),
            "by_channel": _slices_list(self.by_channel),
            "kpis": _statistics_kpis(self.counts, self.satisfaction),
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _city_entry(city: City) -> dict[str, Any]:
    return {"city_code": city.code, "name_zh": city.name_zh, "name_en": city.name_en}


def _qa_kpis(conn: Connection, p: PeriodRef, codes: Sequence[str]) -> dict[str, tuple[int, int]]:
    heads = _headers(conn, QaFigures, p.kind, [p.start], codes)
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
) -> Any:
    """The statistics figures of one period: one entry per roster city — its latest
    revision's counts, slices and KPIs, or ``"missing": true`` — and the province total.

    Counts carry the field names of ``StatisticsReport`` (satisfaction counts under
    ``satisfaction``), slices are under ``by_category`` / ``by_channel``, KPIs under
    ``kpis``; ``qa_pass_rate`` joins the KPIs from the period's QA reports, and with
    ``deadlines`` ``report_timeliness`` (the reports owed for this period, judged at
    ``now``) — for missing cities too, whose entry then holds that one KPI. With
    ``slices=False`` the ``by_category`` / ``by_channel`` lists are left out (and not read).
    """
    p = period_ref(period_kind, start)
    codes = [c.code for c in roster]
    with engine.connect() as conn:
        heads = _headers(conn, StatisticsFigures, p.kind, [p.start], codes, body=slices)
        qa = _qa_kpis(conn, p, codes)
    per_city: dict[str, _Totals] = {}
    for (code, _), row in heads.items():
        per_city[code] = landed = _Totals.empty()
        landed.add_header(row)
        if slices:
            for piece in statistics_slices(code, row.seq, row.body):
                landed.add_slice(piece)
    province = _Totals.empty()
    cities: list[dict[str, Any]] = []
    missing: list[str] = []
    qa_sum = [0, 0]
    for city in roster:
        entry = _city_entry(city)
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
            received_at=_iso(head.received_at),
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
    if deadlines is not None:
        timely = period_timeliness(
            engine,
            deadlines=deadlines,
            period_kind=p.kind,
            start=p.start,
            roster=roster,
            now=now or datetime.now(UTC),
        )["kpis"]
        total["kpis"]["report_timeliness"] = timely["report_timeliness"]
        for entry in cities:
            entry.setdefault("kpis", {})["report_timeliness"] = timely["by_city"][
                entry["city_code"]
            ]
    total.update(
        cities_reporting=len(roster) - len(missing),
        cities_missing=missing,
    )
    if not slices:
        for entry in (*cities, total):
            entry.pop("by_category", None)
            entry.pop("by_channel", None)
    return {"period": p.as_dict(), "cities": cities, "province": total}


# --- trends and comparison ----------------------------------------------------------------------


def _kpi_of(head: Any, name: str) -> dict[str, Any]:
    counts = {n: getattr(head, n) for n in STAT_COUNTS}
    satisfaction = {n: getattr(head, n) for n in SATISFACTION_COUNTS}
    value: dict[str, Any] = _statistics_kpis(counts, satisfaction)[name]
    return value


def trend(
    engine: Engine,
    *,
    kpi_name: str,
    period_kind: str,
    last_start: date | str,
    count: int,
    roster: Sequence[City],
    cities: Sequence[str] = (),
) -> dict[str, Any]:
    """A KPI over ``count`` periods ending with the one starting ``last_start``: the province
    series (from summed counts of the cities reporting that period) and one series per
    chosen city (``None`` where its report is missing)."""
    if kpi_name not in KPI_DEFINITIONS and kpi_name != "qa_pass_rate":
        known = ", ".join([*KPI_DEFINITIONS, "qa_pass_rate"])
        raise FiguresError(f"kpi {kpi_name!r} is not one of: {known}", parameter="kpi")
    if not 1 <= count <= 400:
        raise FiguresError(f"count {count} must be between 1 and 400", parameter="count")
    codes = [c.code for c in roster]
    unknown = sorted(set(cities) - set(codes))
    if unknown:
        raise FiguresError(f"cities {', '.join(unknown)} not on the roster", parameter="cities")
    periods = period_ref(period_kind, last_start).back(count)
    starts = [p.start for p in periods]
    qa = kpi_name == "qa_pass_rate"
    with engine.connect() as conn:
        heads = _headers(conn, QaFigures if qa else StatisticsFigures, period_kind, starts, codes)
    province: list[dict[str, Any]] = []
    series: dict[str, list[dict[str, Any] | None]] = {code: [] for code in cities}
    for p in periods:
        rows = [heads[(code, p.start)] for code in codes if (code, p.start) in heads]
        if qa:
            province.append(kpi(sum(r.passed for r in rows), sum(r.sampled for r in rows)))
        else:
            totals = _Totals.empty()
            for r in rows:
                totals.add_header(r)
            province.append(_statistics_kpis(totals.counts, totals.satisfaction)[kpi_name])
        province[-1]["cities_reporting"] = len(rows)
        for code in cities:
            head = heads.get((code, p.start))
            if head is None:
                series[code].append(None)
            elif qa:
                series[code].append(kpi(head.passed, head.sampled))
            else:
                series[code].append(_kpi_of(head, kpi_name))
    return {
        "kpi": kpi_name,
        "period_kind": period_kind,
        "periods": [p.start.isoformat() for p in periods],
        "province": province,
        "cities": series,
    }


def comparison(
    engine: Engine, *, period_kind: str, start: date | str, roster: Sequence[City]
) -> dict[str, Any]:
    """One row per roster city with its counts and KPIs and its rank on every KPI (1 = best;
    cities without a rate — missing, or a zero denominator — are not ranked), beside the
    same period's figures of the previous period for "vs last"."""
    # The rows carry no slices: neither period needs them read.
    current = figures(engine, period_kind=period_kind, start=start, roster=roster, slices=False)
    p = period_ref(period_kind, start)
    before = figures(
        engine, period_kind=period_kind, start=p.previous().start, roster=roster, slices=False
    )
    previous = {c["city_code"]: c for c in before["cities"]}
    rows: list[dict[str, Any]] = []
    for city in current["cities"]:
        row = dict(city)
        last = previous[city["city_code"]]
        row["previous_kpis"] = None if last["missing"] else last["kpis"]
        row["ranks"] = {}
        rows.append(row)
    names = [*KPI_DEFINITIONS, "qa_pass_rate"]
    for name in names:
        ranked = []
        for row in rows:
            value = row.get("kpis", {}).get(name)
            if value is None or row["missing"]:
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
        "province": {k: v for k, v in current["province"].items()},
        "previous_province_kpis": before["province"]["kpis"],
    }


# --- QA, overtime ---------------------------------------------------------------------------------


def qa_picture(
    engine: Engine, *, period_kind: str, start: date | str, roster: Sequence[City]
) -> dict[str, Any]:
    """Per city: pass rate, mean score, defects by kind, operators and the inspector's
    findings (latest QA revision); the province's pass rate, mean score weighted by the
    samples, and defects summed."""
    p = period_ref(period_kind, start)
    codes = [c.code for c in roster]
    with engine.connect() as conn:
        heads = _headers(conn, QaFigures, p.kind, [p.start], codes)
        keys = [(r.city_code, r.seq) for r in heads.values()]
        defects = _children(conn, QaDefect, keys)
        operators = _children(conn, QaOperator, keys)
    by_city_defects: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in defects:
        by_city_defects[d.city_code][d.defect] += d.count
    by_city_ops: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in operators:
        by_city_ops[o.city_code].append(
            {
                "operator_id": o.operator_id,
                "sampled": o.sampled,
                "passed": o.passed,
                "mean_score": o.mean_score_centi / 100,
            }
        )
    cities = []
    sampled = passed = score_weight = 0
    province_defects: dict[str, int] = defaultdict(int)
    for city in roster:
        entry = _city_entry(city)
        head = heads.get((city.code, p.start))
        if head is None:
            entry.update(missing=True, revision=None)
            cities.append(entry)
            continue
        city_defects = dict(sorted(by_city_defects[city.code].items()))
        entry.update(
            missing=False,
            revision=head.revision,
            sampled=head.sampled,
            passed=head.passed,
            pass_rate=kpi(head.passed, head.sampled),
            mean_score=head.mean_score_centi / 100 if head.sampled else None,
            defects=city_defects,
            operators=by_city_ops[city.code],
            findings=head.findings,
            inspector=head.inspector,
        )
        cities.append(entry)
        sampled += head.sampled
        passed += head.passed
        score_weight += head.mean_score_centi * head.sampled
        for name, n in city_defects.items():
            province_defects[name] += n
    return {
        "period": p.as_dict(),
        "cities": cities,
        "province": {
            "sampled": sampled,
            "passed": passed,
            "pass_rate": kpi(passed, sampled),
            "mean_score": round(score_weight / sampled / 100, 2) if sampled else None,
            "defects": dict(sorted(province_defects.items())),
        },
    }


def overtime_summary(
    engine: Engine, *, period_kind: str, start: date | str, roster: Sequence[City]
) -> dict[str, Any]:
    """Overtime complaints and compensation per city and per branch (the GM hotline's
    summary), from each city's latest overtime report of the period; money in fen."""
    p = period_ref(period_kind, start)
    codes = [c.code for c in roster]
    with engine.connect() as conn:
        heads = _headers(conn, OvertimeFigures, p.kind, [p.start], codes)
        cases = _children(conn, OvertimeCase, [(r.city_code, r.seq) for r in heads.values()])
    branches: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for c in cases:
        b = branches[c.city_code].setdefault(
            c.branch, {"cases": 0, "compensation_fen": 0, "overdue_hours": 0}
        )
        b["cases"] += 1
        b["compensation_fen"] += c.compensation_fen
        b["overdue_hours"] += c.overdue_hours
    cities = []
    total_cases = total_fen = 0
    for city in roster:
        entry = _city_entry(city)
        head = heads.get((city.code, p.start))
        if head is None:
            entry.update(missing=True, revision=None)
            cities.append(entry)
            continue
        entry.update(
            missing=False,
            revision=head.revision,
            cases=head.cases,
            total_compensation_fen=head.total_compensation_fen,
            branches=[{"branch": k, **v} for k, v in sorted(branches[city.code].items())],
        )
        cities.append(entry)
        total_cases += head.cases
        total_fen += head.total_compensation_fen
    return {
        "period": p.as_dict(),
        "cities": cities,
        "province": {"cases": total_cases, "total_compensation_fen": total_fen},
    }


# --- hot-spots and early warning ------------------------------------------------------------------


def _category_counts(
    conn: Connection, kind: str, starts: Sequence[date], codes: Sequence[str], field: str
) -> tuple[dict[tuple[str, date], dict[str, int]], set[tuple[str, date]]]:
    """(city, start) → category → ``field`` from the latest revisions; and which
    (city, start) reported at all."""
    heads = _headers(conn, StatisticsFigures, kind, starts, codes, body=True)
    out: dict[tuple[str, date], dict[str, int]] = defaultdict(dict)
    for key, head in heads.items():
        counts = out[key]
        for row in statistics_slices(head.city_code, head.seq, head.body):
            if row.dimension == "category":
                counts[row.key] = getattr(row, field)
    return out, set(heads)


def enquiry_hotspots(
    engine: Engine,
    *,
    period_kind: str,
    start: date | str,
    roster: Sequence[City],
    min_enquiries: int = 1,
) -> dict[str, Any]:
    """Enquiry categories rising per city: this period vs the last, and the category's share
    of the city's enquiries vs its share in the province. Rows where the count rose, the
    biggest rise first; cities missing either period are not compared (and are listed)."""
    p = period_ref(period_kind, start)
    last = p.previous()
    codes = [c.code for c in roster]
    with engine.connect() as conn:
        counts, reported = _category_counts(conn, p.kind, [p.start, last.start], codes, "enquiries")
    province_now: dict[str, int] = defaultdict(int)
    for code in codes:
        for key, n in counts.get((code, p.start), {}).items():
            province_now[key] += n
    province_total = sum(province_now.values())
    rows: list[dict[str, Any]] = []
    not_compared = []
    for code in codes:
        if (code, p.start) not in reported or (code, last.start) not in reported:
            not_compared.append(code)
            continue
        now_counts = counts.get((code, p.start), {})
        before = counts.get((code, last.start), {})
        city_total = sum(now_counts.values())
        for key, n in now_counts.items():
            previous = before.get(key, 0)
            if n < min_enquiries or n <= previous:
                continue
            share = n / city_total if city_total else None
            province_share = province_now[key] / province_total if province_total else None
            rows.append(
                {
                    "city_code": code,
                    "category": key,
                    "enquiries": n,
                    "previous": previous,
                    "change": n - previous,
                    "change_rate": (n - previous) / previous if previous else None,
                    "share": share,
                    "province_share": province_share,
                    "share_vs_province": (
                        share / province_share if share is not None and province_share else None
                    ),
                }
            )
    rows.sort(key=lambda r: (-r["change"], r["city_code"], r["category"]))
    return {
        "period": p.as_dict(),
        "previous_period": last.as_dict(),
        "rows": rows,
        "not_compared": not_compared,
    }


def early_warnings(
    engine: Engine,
    *,
    period_kind: str = "week",
    start: date | str,
    roster: Sequence[City],
    baseline_periods: int = 8,
    min_baseline_periods: int = 4,
    ratio: float = 2.0,
    min_excess: int = 5,
) -> dict[str, Any]:
    """City + category whose complaints or enquiries run well above their own baseline: the
    mean of the city's reported previous ``baseline_periods`` periods (missing periods are
    left out of the mean, not counted as zero). Flagged when the count is at least
    ``ratio`` × the mean and at least ``min_excess`` above it, with at least
    ``min_baseline_periods`` periods behind the mean. Every flag carries its numbers."""
    if baseline_periods < 1 or min_baseline_periods < 1 or ratio <= 0 or min_excess < 0:
        raise FiguresError("baseline and thresholds must be positive", parameter="baseline")
    p = period_ref(period_kind, start)
    periods = p.back(baseline_periods + 1)
    base_starts = [x.start for x in periods[:-1]]
    codes = [c.code for c in roster]
    flags: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for field in ("complaints", "enquiries"):
            counts, reported = _category_counts(
                conn, p.kind, [x.start for x in periods], codes, field
            )
            for code in codes:
                if (code, p.start) not in reported:
                    continue
                history_starts = [s for s in base_starts if (code, s) in reported]
                if len(history_starts) < min_baseline_periods:
                    continue
                for key, n in counts.get((code, p.start), {}).items():
                    values = [counts.get((code, s), {}).get(key, 0) for s in history_starts]
                    mean = sum(values) / len(values)
                    threshold = max(ratio * mean, mean + min_excess)
                    if n >= threshold and n > 0:
                        flags.append(
                            {
                                "city_code": code,
                                "category": key,
                                "measure": field,
                                "count": n,
                                "baseline_mean": mean,
                                "baseline": dict(
                                    zip(
                                        [s.isoformat() for s in history_starts], values, strict=True
                                    )
                                ),
                                "ratio": n / mean if mean else None,
                                "threshold": threshold,
                            }
                        )
    flags.sort(key=lambda f: (-(f["count"] - f["baseline_mean"]), f["city_code"], f["category"]))
    return {
        "period": p.as_dict(),
        "rule": {
            "baseline_periods": baseline_periods,
            "min_baseline_periods": min_baseline_periods,
            "ratio": ratio,
            "min_excess": min_excess,
        },
        "flags": flags,
    }


# --- quarantine and suggestions -------------------------------------------------------------------


def quarantined_records(
    engine: Engine, *, city_code: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Quarantined records, newest first: city, seq, kind, subject, reason, when."""
    query = select(
        Record.city_code,
        Record.seq,
        Record.kind,
        Record.subject,
        Record.revision,
        Record.reason,
        Record.received_at,
    ).where(Record.status == "quarantined")
    if city_code is not None:
        query = query.where(Record.city_code == city_code)
    query = query.order_by(Record.received_at.desc(), Record.city_code, Record.seq.desc())
    with engine.connect() as conn:
        rows = conn.execute(query.limit(max(1, min(limit, 5000)))).all()
    return [
        {
            "city_code": r.city_code,
            "seq": r.seq,
            "kind": r.kind,
            "subject": r.subject,
            "revision": r.revision,
            "reason": r.reason,
            "received_at": _iso(r.received_at),
        }
        for r in rows
    ]


def suggestion_batches(
    engine: Engine,
    *,
    city_code: str | None = None,
    category: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Accepted suggestion batches, newest batch date first, with their suggestions
    (only those of ``category`` or its sub-categories when given); dates inclusive."""
    prefix = "suggestion_batch/"
    conditions = [Record.kind == "suggestion_batch", Record.status == "accepted"]
    if city_code is not None:
        conditions.append(Record.city_code == city_code)
    if date_from is not None:
        conditions.append(Record.subject >= f"{prefix}{date_from.isoformat()}")
    if date_to is not None:
        # Subjects are "suggestion_batch/YYYY-MM-DD/N": compare as text up to the next day.
        conditions.append(Record.subject < f"{prefix}{(date_to + _DAY).isoformat()}")
    query = (
        select(Record.city_code, Record.seq, Record.received_at, Record.body)
        .where(and_(*conditions))
        .order_by(Record.subject.desc(), Record.city_code, Record.seq)
        .limit(max(1, min(limit, 1000)))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for r in rows:
        batch = pb.SuggestionBatch.FromString(r.body)
        items = [
            {
                "ticket_id": s.ticket_id,
                "category": s.category,
                "content": s.content,
                "received_at": (
                    _iso(s.received_at.ToDatetime(UTC)) if s.HasField("received_at") else None
                ),
            }
            for s in batch.suggestions
            if category is None or s.category == category or s.category.startswith(category + ".")
        ]
        if category is not None and not items:
            continue
        out.append(
            {
                "city_code": r.city_code,
                "seq": r.seq,
                "batch_date": batch.batch_date,
                "batch_number": batch.batch_number,
                "classified_by": batch.classified_by,
                "received_at": _iso(r.received_at),
                "suggestions": items,
            }
        )
    return out


def operators(
    engine: Engine, *, period_kind: str, start: date | str, city_code: str
) -> list[dict[str, Any]]:
    """Operator workload of one city's latest statistics revision of the period."""
    p = period_ref(period_kind, start)
    with engine.connect() as conn:
        heads = _headers(conn, StatisticsFigures, p.kind, [p.start], [city_code], body=True)
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
    by_seq = {h.seq: statistics_slices(h.city_code, h.seq, h.body) for h in heads}
    out: list[dict[str, Any]] = []
    previous: dict[str, int] = {}
    for head in heads:
        flat = {name: getattr(head, name) for name in (*STAT_COUNTS, *SATISFACTION_COUNTS)}
        for row in by_seq[head.seq]:
            for name in SLICE_COUNTS:
                flat[f"{row.dimension}:{row.key}.{name}"] = getattr(row, name)
        totals = _Totals.empty()
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
                "received_at": _iso(head.received_at),
                "approved_by": head.approved_by,
                **totals.as_dict(),
                "changes": changes,
            }
        )
        previous = flat
    return {"city_code": city_code, "period": p.as_dict(), "revisions": out}
