"""A report as the center leader reviews it: headline figures and the KPIs of docs/domain.md,
each with its numerator and denominator and compared with the previous period of the same
kind, then the breakdowns (category, channel, operator, satisfaction; QA defects and
operators; overtime cases).

Plain Python over :class:`city_node.reports.ReportView` (no web framework): the console's
review page renders it, a script could print it. Figures are read from the report's own
payload, never recounted, so the page shows exactly what would be sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import case, select

from city_node import report_figures, reports
from city_node.context import CityContext
from city_node.reports import ReportView
from city_node.store import Report
from city_node.vocabulary import ReportStatus
from sync.limits import report_date_refusal
from sync.periods import period_start_for
from sync.vocabulary import ReportKind

#: Which way a figure should move: "up" is good, "down" is good, or neither.
Better = Literal["up", "down", "none"]
Unit = Literal["count", "rate", "score", "yuan"]


@dataclass(frozen=True)
class Figure:
    """One number of the report, with the previous period's for comparison. A rate keeps
    its numerator and denominator (and is None when the denominator is 0: not 0 %)."""

    key: str
    value: float | None
    previous: float | None = None
    unit: Unit = "count"
    better: Better = "up"
    numerator: int | None = None
    denominator: int | None = None
    prev_numerator: int | None = None
    prev_denominator: int | None = None

    @property
    def delta(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def arrow(self) -> str:
        d = self.delta
        if d is None:
            return ""
        if abs(d) < 1e-9:
            return "→"
        return "↑" if d > 0 else "↓"

    @property
    def trend(self) -> str:
        """good / bad / flat / none: how the change reads (a CSS class)."""
        d = self.delta
        if d is None:
            return "none"
        if abs(d) < 1e-9 or self.better == "none":
            return "flat"
        return "good" if (d > 0) == (self.better == "up") else "bad"

    def show(self, value: float | None = None) -> str:
        v = self.value if value is None else value
        return format_value(v, self.unit)

    def show_delta(self) -> str:
        d = self.delta
        if d is None:
            return ""
        sign = "+" if d > 0 else ("−" if d < 0 else "±")
        if self.unit == "rate":
            return f"{sign}{abs(d) * 100:.1f} pp"
        return sign + format_value(abs(d), self.unit)


def format_value(value: float | None, unit: Unit) -> str:
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "score":
        return f"{value:.2f}"
    if unit == "yuan":
        return f"¥{value:,.2f}"
    return f"{int(value):,}"


def rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class Table:
    """A breakdown: label keys of the columns, then rows of (key, cells)."""

    key: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    #: How the first column's key reads: "category", "channel", "operator", "defect", "text".
    key_kind: str = "text"


@dataclass
class Review:
    report: ReportView
    previous: ReportView | None
    headline: list[Figure] = field(default_factory=list)
    kpis: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    #: KPIs of docs/domain.md a city report does not carry (the province measures them).
    province_kpis: tuple[str, ...] = ()


def _int(figures: dict[str, Any], *path: str) -> int:
    value: Any = figures
    for part in path:
        value = value.get(part, 0) if isinstance(value, dict) else 0
    return int(value or 0)


def previous_report(ctx: CityContext, view: ReportView) -> ReportView | None:
    """The previous period's report of the same kind: its latest approved revision, else
    its latest draft; None when there is none — nor could be: the period before the first a
    report may start in (2000) is outside the years a report may have."""
    kind = report_figures.PERIOD_KINDS[view.period_kind]
    start = period_start_for(kind, view.period_start - timedelta(days=1))
    if report_date_refusal(start) is not None:
        return None
    before = report_figures.period(ctx, view.period_kind, start)
    approved_first = case((Report.status == ReportStatus.APPROVED.value, 0), else_=1)
    with ctx.engine.connect() as conn:
        report_id = conn.execute(
            select(Report.id)
            .where(
                Report.kind == view.kind,
                Report.period_kind == view.period_kind,
                Report.period_start == before.start.isoformat(),
                Report.status.in_((ReportStatus.APPROVED.value, ReportStatus.DRAFT.value)),
            )
            .order_by(approved_first, Report.revision.desc())
            .limit(1)
        ).scalar()
    return None if report_id is None else reports.get(ctx, int(report_id))


def review(ctx: CityContext, view: ReportView) -> Review:
    """Everything the review page shows of ``view``."""
    prev = previous_report(ctx, view)
    out = Review(report=view, previous=prev)
    builder = {
        ReportKind.STATISTICS: _statistics,
        ReportKind.QA: _qa,
        ReportKind.OVERTIME: _overtime,
    }[view.kind]
    builder(out, view.figures, prev.figures if prev else None)
    return out


def _count(key: str, now: int, before: int | None, better: Better = "up") -> Figure:
    return Figure(key, now, before, "count", better)


def _rate(
    key: str,
    num: int,
    den: int,
    prev: tuple[int, int] | None,
    better: Better = "up",
) -> Figure:
    return Figure(
        key,
        rate(num, den),
        rate(*prev) if prev else None,
        "rate",
        better,
        num,
        den,
        prev[0] if prev else None,
        prev[1] if prev else None,
    )


def _statistics(out: Review, f: dict[str, Any], p: dict[str, Any] | None) -> None:
    def g(*path: str) -> int:
        return _int(f, *path)

    def pg(*path: str) -> int | None:
        return None if p is None else _int(p, *path)

    def pair(num: tuple[str, ...], den: tuple[str, ...]) -> tuple[int, int] | None:
        return None if p is None else (_int(p, *num), _int(p, *den))

    for key, better in (
        ("complaints_received", "down"),
        ("suggestions_received", "none"),
        ("enquiries_received", "none"),
        ("handled", "up"),
        ("closed", "up"),
        ("closed_in_time", "up"),
        ("complaints_closed", "up"),
        ("overtime_open", "down"),
        ("repeat_complaints", "down"),
        ("escalations_raised", "down"),
    ):
        out.headline.append(_count(key, g(key), pg(key), better))  # type: ignore[arg-type]

    def happy(d: dict[str, Any]) -> int:
        return _int(d, "satisfaction", "very_satisfied") + _int(d, "satisfaction", "satisfied")

    surveyed = g("satisfaction", "surveyed")

    def complaints_surveyed(d: dict[str, Any]) -> int:
        # A draft made before wire schema 1.4 has no such count: its surveys of every kind.
        held = d.get("satisfaction", {})
        key = "complaints_surveyed" if "complaints_surveyed" in held else "surveyed"
        return _int(d, "satisfaction", key)

    out.kpis = [
        _rate(
            "kpi_in_time", g("closed_in_time"), g("closed"), pair(("closed_in_time",), ("closed",))
        ),
        _count("kpi_overtime_open", g("overtime_open"), pg("overtime_open"), "down"),
        _rate(
            "kpi_repeat",
            g("repeat_complaints"),
            g("complaints_received"),
            pair(("repeat_complaints",), ("complaints_received",)),
            "down",
        ),
        _rate(
            "kpi_satisfaction",
            happy(f),
            surveyed,
            None if p is None else (happy(p), _int(p, "satisfaction", "surveyed")),
        ),
        _rate(
            "kpi_survey_coverage",
            complaints_surveyed(f),
            g("complaints_closed"),
            None if p is None else (complaints_surveyed(p), _int(p, "complaints_closed")),
        ),
        _rate(
            "kpi_escalation",
            g("escalations_raised"),
            g("complaints_received"),
            pair(("escalations_raised",), ("complaints_received",)),
            "down",
        ),
    ]
    out.province_kpis = ("kpi_qa_pass", "kpi_timeliness", "kpi_notice_completion")

    slice_columns = [
        "complaints",
        "suggestions",
        "enquiries",
        "closed",
        "closed_in_time",
        "kpi_in_time",
        "repeat_complaints",
    ]

    def slice_rows(items: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        rows = []
        for item in items:
            cells = [str(_int(item, c)) for c in slice_columns[:5]]
            cells.append(
                format_value(rate(_int(item, "closed_in_time"), _int(item, "closed")), "rate")
            )
            cells.append(str(_int(item, "repeat_complaints")))
            rows.append((str(item.get("key", "")), cells))
        return rows

    out.tables.append(
        Table("by_category", slice_columns, slice_rows(f.get("by_category", [])), "category")
    )
    out.tables.append(
        Table("by_channel", slice_columns, slice_rows(f.get("by_channel", [])), "channel")
    )
    out.tables.append(
        Table(
            "operator_workload",
            ["registered_count", "closed_count"],
            [
                (
                    str(o.get("operator_id", "")),
                    [str(_int(o, "registered")), str(_int(o, "closed"))],
                )
                for o in f.get("operators", [])
            ],
            "operator",
        )
    )
    reached = surveyed
    sat_rows = []
    for outcome in ("very_satisfied", "satisfied", "neutral", "dissatisfied", "unreachable"):
        n = g("satisfaction", outcome)
        share = "" if outcome == "unreachable" else format_value(rate(n, reached), "rate")
        before = pg("satisfaction", outcome)
        sat_rows.append((outcome, [str(n), share, "" if before is None else str(before)]))
    sat_rows.append(
        ("surveyed", [str(surveyed), "", "" if p is None else str(pg("satisfaction", "surveyed"))])
    )
    sat_rows.append(
        (
            "complaints_surveyed",
            [
                str(complaints_surveyed(f)),
                "",
                "" if p is None else str(complaints_surveyed(p)),
            ],
        )
    )
    out.tables.append(
        Table("satisfaction_breakdown", ["count", "share", "previous_period"], sat_rows, "sat")
    )


def _qa(out: Review, f: dict[str, Any], p: dict[str, Any] | None) -> None:
    sampled, passed = _int(f, "sampled"), _int(f, "passed")
    prev = None if p is None else (_int(p, "passed"), _int(p, "sampled"))
    out.headline = [
        _count("sampled", sampled, None if p is None else _int(p, "sampled"), "none"),
        _count("passed", passed, None if p is None else _int(p, "passed")),
        Figure(
            "mean_score",
            _int(f, "mean_score_centi") / 100 if sampled else None,
            (_int(p, "mean_score_centi") / 100 if _int(p, "sampled") else None) if p else None,
            "score",
            "up",
        ),
    ]
    out.kpis = [_rate("kpi_qa_pass", passed, sampled, prev)]
    out.province_kpis = ()
    out.tables.append(
        Table(
            "defects_by_kind",
            ["count"],
            [
                (_defect_key(d.get("kind", "")), [str(_int(d, "count"))])
                for d in f.get("defects", [])
            ],
            "defect",
        )
    )
    out.tables.append(
        Table(
            "qa_by_operator",
            ["sampled", "passed", "kpi_qa_pass", "mean_score"],
            [
                (
                    str(o.get("operator_id", "")),
                    [
                        str(_int(o, "sampled")),
                        str(_int(o, "passed")),
                        format_value(rate(_int(o, "passed"), _int(o, "sampled")), "rate"),
                        format_value(_int(o, "mean_score_centi") / 100, "score"),
                    ],
                )
                for o in f.get("operators", [])
            ],
            "operator",
        )
    )
    out.findings = [line for line in str(f.get("findings", "")).splitlines() if line.strip()]


def _defect_key(kind: Any) -> str:
    """The defect's label key (``late``…) from the wire enum's name (``LATE``…)."""
    key = str(kind).lower()
    return "other" if key == "other_defect" else key


def _overtime(out: Review, f: dict[str, Any], p: dict[str, Any] | None) -> None:
    cases = f.get("cases", [])
    prev_cases = None if p is None else len(p.get("cases", []))
    total = _int(f, "total_compensation_fen") / 100
    prev_total = None if p is None else _int(p, "total_compensation_fen") / 100
    compensated = sum(1 for c in cases if _int(c, "compensation_fen"))
    out.headline = [
        _count("overtime_cases", len(cases), prev_cases, "down"),
        _count(
            "compensated_cases",
            compensated,
            None
            if p is None
            else sum(1 for c in p.get("cases", []) if _int(c, "compensation_fen")),
            "none",
        ),
        Figure("total_compensation", total, prev_total, "yuan", "down"),
    ]
    out.tables.append(
        Table(
            "overtime_cases",
            ["category", "branch", "limit_hours", "overdue_hours", "compensation"],
            [
                (
                    str(c.get("ticket_id", "")),
                    [
                        str(c.get("category", "")),
                        str(c.get("branch", "")),
                        str(_int(c, "limit_hours")),
                        str(_int(c, "overdue_hours")),
                        format_value(_int(c, "compensation_fen") / 100, "yuan"),
                    ],
                )
                for c in cases
            ],
            "ticket",
        )
    )
