"""The supervisor web's tables: each view's service data as columns and rows, so a page, its
CSV and its XLSX show the same numbers under the same (Chinese, for the province's upward
reports; English on the English page) headers.

A column has a kind that says how to show and export a value: ``int``, ``rate`` (a KPI
``{numerator, denominator, rate}`` or a plain fraction; pages show a percentage, exports a
fraction with four decimals), ``yuan`` (fen stored, yuan shown), ``text``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from province_hub.consolidation import HIGHER_IS_BETTER, KPI_DEFINITIONS, period_ref
from province_hub.figures import PERIOD_ZH, REPORT_WORDS, SATISFACTION_COUNTS, STAT_COUNTS
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.roster import City
from sync.web.i18n import DEFECT_WORDS

#: The counts a report revision shows, in the proto's order.
FIELDS = (*STAT_COUNTS, *SATISFACTION_COUNTS)
#: ``time``: an instant the views already give in the federation's zone (ISO text), shown
#: and exported as ``YYYY-MM-DD HH:MM`` like every time a person reads at the hub.
Kind = Literal["int", "rate", "yuan", "text", "float", "time"]


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: Kind = "int"


@dataclass
class Table:
    """One table of a view: its name (the export's file name), title, columns and rows."""

    name: str
    title_zh: str
    title_en: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    #: The reporting period the rows are for, e.g. "月 2026-11-01 至 2026-11-30".
    period: str = ""
    #: The period in the export's file name ("month-2026-11-01"); "" for a table of the
    #: present moment (links, quarantine, suggestions), named by the day it is made.
    file_period: str = ""
    #: The label (:mod:`province_hub.web.i18n`) a page shows when there are no rows.
    empty: str = "no_rows"

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en

    def period_text(self, lang: str) -> str:
        """The period line in the page's language (exports keep the Chinese one)."""
        if lang == "zh" or not self.period:
            return self.period
        kind, _, days = self.period.partition(" ")
        return f"{_PERIOD_EN.get(kind, kind)} {days.replace(' 至 ', ' to ')}"


def rate_value(value: Any) -> float | None:
    """A KPI dict's rate, a plain fraction, or None (no denominator, or missing)."""
    if isinstance(value, Mapping):
        rate = value.get("rate")
        if rate is None and value.get("denominator") is None and "numerator" in value:
            # A count KPI; its numerator is None where no city reported.
            count = value["numerator"]
            return None if count is None else float(count)
        return None if rate is None else float(rate)
    return None if value is None else float(value)


def _count(value: Any) -> Any:
    # A count KPI ({numerator, denominator: None}) shows as its count.
    if isinstance(value, Mapping):
        return value.get("numerator")
    return value


def _minute(value: Any) -> str:
    """``2026-12-05T10:00:00+08:00`` as ``2026-12-05 10:00`` (the clock the views give)."""
    return str(value)[:16].replace("T", " ")


def cell_text(column: Column, value: Any, lang: str = "zh") -> str:
    """How a page shows a value."""
    if column.kind == "int":
        value = _count(value)
    if value is None or value == "":
        return "-"
    if column.kind == "rate":
        rate = rate_value(value)
        return "-" if rate is None else f"{100 * rate:.1f}%"
    if column.kind == "yuan":
        return f"{int(value) / 100:.2f}"
    if column.kind == "float":
        return f"{float(value):.2f}"
    if column.kind == "time":
        return _minute(value)
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    return str(value)


def cell_export(column: Column, value: Any) -> Any:
    """How an export writes a value: numbers stay numbers (rates as fractions)."""
    if column.kind == "int":
        value = _count(value)
    if value is None:
        return None
    if column.kind == "rate":
        rate = rate_value(value)
        return None if rate is None else round(rate, 4)
    if column.kind == "yuan":
        return round(int(value) / 100, 2)
    if column.kind == "float":
        return round(float(value), 2)
    if column.kind == "time":
        return _minute(value) or None
    if isinstance(value, bool):
        return "是" if value else "否"
    return value


# --- vocabulary ---------------------------------------------------------------------------------

#: KPI name → (zh, en), in the order pages show them.
KPI_NAMES: dict[str, tuple[str, str]] = {
    "in_time_closure_rate": ("按时结案率", "In-time closure"),
    "satisfaction_rate": ("满意率", "Satisfaction"),
    "repeat_complaint_rate": ("重复投诉率", "Repeat complaints"),
    "overtime_open": ("超时未处理", "Overtime open"),
    "survey_coverage": ("回访率", "Survey coverage"),
    "escalation_rate": ("升级率", "Escalation rate"),
    "qa_pass_rate": ("质检合格率", "QA pass rate"),
}
assert set(KPI_NAMES) == {*KPI_DEFINITIONS, "qa_pass_rate"}
#: Every KPI the comparison ranks and a trend draws: the reports' KPIs and report timeliness
#: (judged on the hub's deadlines, not counted in a report).
ALL_KPI_NAMES: dict[str, tuple[str, str]] = {
    **KPI_NAMES,
    "report_timeliness": ("报表及时率", "Report timeliness"),
}
#: KPIs shown as rates (``overtime_open`` is a count).
RATE_KPIS = tuple(k for k in ALL_KPI_NAMES if k != "overtime_open")
#: Count fields (proto names) → (zh, en).
COUNT_NAMES: dict[str, tuple[str, str]] = {
    "complaints_received": ("投诉量", "Complaints"),
    "suggestions_received": ("建议量", "Suggestions"),
    "enquiries_received": ("咨询量", "Enquiries"),
    "handled": ("处理量", "Handled"),
    "closed": ("结案量", "Closed"),
    "closed_in_time": ("按时结案", "Closed in time"),
    "overtime_open": ("超时未处理", "Overtime open"),
    "repeat_complaints": ("重复投诉", "Repeat complaints"),
    "escalations_raised": ("升级量", "Escalations"),
    "complaints_closed": ("投诉结案", "Complaints closed"),
    "very_satisfied": ("非常满意", "Very satisfied"),
    "satisfied": ("满意", "Satisfied"),
    "neutral": ("一般", "Neutral"),
    "dissatisfied": ("不满意", "Dissatisfied"),
    "surveyed": ("已回访", "Surveyed"),
    "unreachable": ("未接通", "Unreachable"),
    "complaints_surveyed": ("投诉回访", "Complaints surveyed"),
}
assert set(COUNT_NAMES) == set(FIELDS)
_CITY = [
    Column("city_code", "地市代码", "City code", "text"),
    Column("city", "地市", "City", "text"),
]
_MAIN_COUNTS = ("complaints_received", "enquiries_received", "suggestions_received", "closed")


def _kpi_col(name: str, suffix: str = "", zh_suffix: str = "") -> Column:
    zh, en = ALL_KPI_NAMES[name]
    return Column(
        name + suffix,
        zh + zh_suffix,
        en + suffix.replace("_", " "),
        "int" if name == "overtime_open" else "rate",
    )


def _count_col(name: str) -> Column:
    zh, en = COUNT_NAMES[name]
    return Column(name, zh, en, "int")


#: A period kind as the Chinese export names it.
_PERIOD_ZH = PERIOD_ZH
_PERIOD_EN = {zh: en for en, zh in _PERIOD_ZH.items()}


def period_span(kind: str, first: date | str, last: date | str | None = None) -> tuple[str, str]:
    """A table's period line and the part of its export's file name that names the period,
    for the period starting ``first`` or, a trend's, the periods from ``first`` to the one
    starting ``last``. The line is in Chinese like the rest of the file, first and last day
    included (``月 2026-11-01 至 2026-11-30``); the name gives the kind and the periods' starts
    as the query does (``month-2026-11-01``, ``month-2025-12-01-2026-11-01``)."""
    final = period_ref(kind, last if last is not None else first)
    end = final.end - timedelta(days=1)
    text = f"{_PERIOD_ZH.get(kind, kind)} {first} 至 {end.isoformat()}"
    name = f"{kind}-{first}" if last is None else f"{kind}-{first}-{last}"
    return text, name


def period_of(period: Mapping[str, str]) -> tuple[str, str]:
    """:func:`period_span` of a view's ``period`` (its ``kind`` and ``start``)."""
    return period_span(period["kind"], period["start"])


def city_name(entry: Mapping[str, Any], lang: str) -> str:
    return str(entry.get("name_zh" if lang == "zh" else "name_en") or entry.get("city_code", ""))


def _kpi(entry: Mapping[str, Any], name: str) -> Any:
    kpis = entry.get("kpis") or {}
    return kpis.get(name)


# --- the views' tables ---------------------------------------------------------------------------


def _figures_status(city: Mapping[str, Any], lang: str) -> str:
    """A city's report of the period: received, or why there is none — missing (owed, its
    deadline passed), not yet due, or owed before the hub went live (not counted)."""
    if not city["missing"]:
        return "已报" if lang == "zh" else "received"
    standing = city.get("report_status", "missing")
    words = _STATUS.get(standing, _STATUS["missing"]) if standing != "late" else _STATUS["missing"]
    return words[0 if lang == "zh" else 1]


def figures_table(data: Mapping[str, Any], lang: str) -> Table:
    """The period's figures: one row per roster city (its revision or missing), then the
    province total (summed counts; KPIs from the sums)."""
    cols = [
        *_CITY,
        Column("status", "状态", "Status", "text"),
        Column("revision", "版次", "Revision", "int"),
        *(_count_col(n) for n in _MAIN_COUNTS),
        *(_kpi_col(n) for n in ALL_KPI_NAMES),
    ]
    rows = []
    for c in data["cities"]:
        row: dict[str, Any] = {
            "city_code": c["city_code"],
            "city": city_name(c, lang),
            "status": _figures_status(c, lang),
            "revision": c.get("revision"),
            # Judged for missing cities too: they owe the report.
            "report_timeliness": _kpi(c, "report_timeliness"),
        }
        if not c["missing"]:
            row.update({n: c[n] for n in _MAIN_COUNTS})
            row.update({n: _kpi(c, n) for n in KPI_NAMES})
        rows.append(row)
    p = data["province"]
    total: dict[str, Any] = {
        "city_code": "",
        "city": "全省合计" if lang == "zh" else "Province total",
        "status": f"{p['cities_reporting']}/{len(data['cities'])}",
        "revision": None,
        **{n: p[n] for n in _MAIN_COUNTS},
        **{n: _kpi(p, n) for n in KPI_NAMES},
        "report_timeliness": _kpi(p, "report_timeliness"),
    }
    rows.append(total)
    return Table("figures", "各地市数据", "Figures by city", cols, rows, *period_of(data["period"]))


_STATUS = {
    "on_time": ("按时", "on time"),
    "late": ("迟报", "late"),
    "missing": ("缺报", "missing"),
    "pending": ("未到期", "not yet due"),
    "before_go_live": ("上线前（不计）", "before go-live (not counted)"),
    "not_owed": ("无需上报", "not owed"),
}
_REPORTS = REPORT_WORDS


def timeliness_table(data: Mapping[str, Any] | None, names: Mapping[str, str], lang: str) -> Table:
    """The reports owed for the period that are late or missing (on time and not yet due
    are left out: this is the list a supervisor chases)."""
    cols = [
        *_CITY,
        Column("report", "报表", "Report", "text"),
        Column("status", "状态", "Status", "text"),
        Column("deadline", "截止时间", "Deadline", "time"),
        Column("received_at", "接收时间", "Received", "time"),
    ]
    i = 0 if lang == "zh" else 1
    rows = [
        {
            "city_code": r["city_code"],
            "city": names.get(r["city_code"], r["city_code"]),
            "report": _REPORTS.get(r["report"], (r["report"],) * 2)[i],
            "status": _STATUS[r["status"]][i],
            "status_code": r["status"],
            "deadline": r["deadline"],
            "received_at": r["received_at"],
        }
        for r in (data or {}).get("rows", [])
        if r["status"] in ("late", "missing")
    ]
    span = ("", "") if data is None else period_of(data["period"])
    return Table("timeliness", "迟报与缺报", "Late and missing reports", cols, rows, *span)


def province_kpi_table(
    comparison: Mapping[str, Any], lang: str, timeliness: Mapping[str, Any] | None = None
) -> Table:
    """The province's KPIs this period vs the last: numerator, denominator, rate, change;
    with ``timeliness`` (the period's report timeliness KPI), a row for it too (this period
    only: the last period's is judged on other deadlines)."""
    cols = [
        Column("kpi", "指标", "KPI", "text"),
        Column("numerator", "分子", "Numerator", "int"),
        Column("denominator", "分母", "Denominator", "int"),
        Column("value", "本期", "This period", "rate"),
        Column("previous", "上期", "Last period", "rate"),
        # Rates change in percentage points; overtime_open, a count, in tickets.
        Column(
            "change_pp",
            "变化(百分点;超时未结:件)",
            "Change (points; overtime open: tickets)",
            "float",
        ),
    ]
    now = comparison["province"]["kpis"]
    before = comparison["previous_province_kpis"]
    rows = []
    for name in KPI_NAMES:
        k, b = now.get(name), (before or {}).get(name)
        a_rate, b_rate = rate_value(k), rate_value(b)
        is_count = name == "overtime_open"
        change = None
        if a_rate is not None and b_rate is not None:
            change = (a_rate - b_rate) if is_count else 100 * (a_rate - b_rate)
        rows.append(
            {
                "kpi": KPI_NAMES[name][0 if lang == "zh" else 1],
                "kpi_name": name,
                "numerator": k["numerator"] if k else None,
                "denominator": k["denominator"] if k else None,
                "value": k,
                "previous": b,
                "change_pp": change,
                "better": None
                if change is None or change == 0
                else ((change > 0) == (name in HIGHER_IS_BETTER)),
            }
        )
    if timeliness is not None:
        rows.append(
            {
                "kpi": "报表及时率" if lang == "zh" else "Report timeliness",
                "kpi_name": "report_timeliness",
                "numerator": timeliness.get("numerator"),
                "denominator": timeliness.get("denominator"),
                "value": timeliness,
                "previous": None,
                "change_pp": None,
                "better": None,
            }
        )
    # overtime_open is a count: show it as one, not a percentage.
    return Table(
        "province_kpis",
        "全省指标(本期与上期)",
        "Province KPIs (this vs last period)",
        cols,
        rows,
        *period_of(comparison["period"]),
    )


#: Comparison sort keys: any KPI, or a main count.
SORT_KEYS = (*ALL_KPI_NAMES, *_MAIN_COUNTS, "city_code")


def comparison_table(
    comparison: Mapping[str, Any], lang: str, *, sort: str = "city_code", descending: bool = False
) -> Table:
    """One row per city: main counts, every KPI and its rank (1 = best); sorted by ``sort``
    with cities lacking the value last."""
    cols: list[Column] = [*_CITY, *(_count_col(n) for n in _MAIN_COUNTS)]
    for name in ALL_KPI_NAMES:
        cols.append(_kpi_col(name))
        cols.append(Column(f"rank_{name}", "排名", "Rank", "int"))
    rows = []
    for c in comparison["rows"]:
        row: dict[str, Any] = {"city_code": c["city_code"], "city": city_name(c, lang)}
        # A city that sent nothing is judged on timeliness all the same: it owed the report.
        shown = ("report_timeliness",) if c["missing"] else ALL_KPI_NAMES
        if not c["missing"]:
            row.update({n: c[n] for n in _MAIN_COUNTS})
        for name in shown:
            row[name] = _kpi(c, name)
            row[f"rank_{name}"] = c["ranks"].get(name)
        rows.append(row)

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = row.get(sort)
        if sort in ALL_KPI_NAMES:
            value = rate_value(value)
        if value is None:
            return (1, 0)
        return (0, -value if descending and not isinstance(value, str) else value)

    rows.sort(key=key)
    if descending and sort == "city_code":
        rows.reverse()
    return Table(
        "comparison", "地市对比", "City comparison", cols, rows, *period_of(comparison["period"])
    )


def trend_table(trend: Mapping[str, Any], roster_names: Mapping[str, str], lang: str) -> Table:
    """A KPI over periods: one row per period, the province and each chosen city."""
    name = trend["kpi"]
    cols = [Column("period", "周期", "Period", "text"), _kpi_col(name, "", "")]
    cols[1] = Column("province", "全省", "Province", cols[1].kind)
    for code in trend["cities"]:
        cols.append(
            Column(code, roster_names.get(code, code), roster_names.get(code, code), cols[1].kind)
        )
    rows = []
    for i, start in enumerate(trend["periods"]):
        row: dict[str, Any] = {"period": start, "province": trend["province"][i]}
        for code, series in trend["cities"].items():
            row[code] = series[i]
        rows.append(row)
    zh, en = ALL_KPI_NAMES[name]
    span = period_span(trend["period_kind"], trend["periods"][0], trend["periods"][-1])
    return Table(f"trend_{name}", f"趋势：{zh}", f"Trend: {en}", cols, rows, *span)


def revisions_table(data: Mapping[str, Any], city: City, lang: str) -> Table:
    """The revisions of ``city``'s report, titled by the city's name."""
    cols = [
        Column("revision", "版次", "Revision", "int"),
        Column("seq", "序号", "Seq", "int"),
        Column("received_at", "接收时间", "Received", "time"),
        Column("approved_by", "审批人", "Approved by", "text"),
        Column("latest", "计入汇总", "Counted", "text"),
        *(_count_col(n) for n in FIELDS),
    ]
    rows = [
        {
            **{k: r[k] for k in ("revision", "seq", "received_at", "approved_by", "latest")},
            **r["counts"],
        }
        for r in data["revisions"]
    ]
    return Table(
        "reports",
        f"报表版次 {city.name_zh}",
        f"Report revisions {city.name_en}",
        cols,
        rows,
        *period_of(data["period"]),
    )


def diff_table(diff: Sequence[Mapping[str, Any]], older: int, newer: int, lang: str) -> Table:
    cols = [
        Column("field", "字段", "Field", "text"),
        Column("old", f"第{older}版", f"Revision {older}", "int"),
        Column("new", f"第{newer}版", f"Revision {newer}", "int"),
        Column("change", "变化", "Change", "int"),
    ]

    def name(field: str) -> str:
        # Counts by their label; slice fields ("category:BILL.complaints") as they are.
        return COUNT_NAMES[field][0 if lang == "zh" else 1] if field in COUNT_NAMES else field

    rows = [{**d, "field": name(d["field"])} for d in diff]
    # No rows: the two revisions' figures are the same (not missing).
    return Table(
        "report_diff", "版次差异", "Changes between revisions", cols, rows, empty="same_figures"
    )


#: A category's name beside its code (the hub's category tree; "" for a code it lacks).
_CATEGORY_NAME = Column("category_name", "分类名称", "Category name", "text")


def hotspots_table(
    data: Mapping[str, Any],
    names: Mapping[str, str],
    lang: str,
    categories: Mapping[str, str],
) -> Table:
    cols = [
        *_CITY,
        Column("category", "咨询分类", "Enquiry category", "text"),
        _CATEGORY_NAME,
        Column("enquiries", "本期咨询", "This period", "int"),
        Column("previous", "上期咨询", "Last period", "int"),
        Column("change", "增量", "Change", "int"),
        Column("change_rate", "增幅", "Change rate", "rate"),
        Column("share", "本市占比", "Share in city", "rate"),
        Column("province_share", "全省占比", "Share in province", "rate"),
    ]
    rows = [
        {
            **r,
            "city": names.get(r["city_code"], r["city_code"]),
            "category_name": categories.get(r["category"], ""),
        }
        for r in data["rows"]
    ]
    return Table(
        "hotspots", "咨询热点", "Enquiry hot-spots", cols, rows, *period_of(data["period"])
    )


def warnings_table(
    data: Mapping[str, Any],
    names: Mapping[str, str],
    lang: str,
    categories: Mapping[str, str],
) -> Table:
    cols = [
        *_CITY,
        Column("category", "分类", "Category", "text"),
        _CATEGORY_NAME,
        Column("measure", "指标", "Measure", "text"),
        Column("count", "本期", "This period", "int"),
        Column("baseline_mean", "基线均值", "Baseline mean", "float"),
        Column("ratio", "倍数", "Ratio", "float"),
    ]
    measure = {"complaints": ("投诉", "complaints"), "enquiries": ("咨询", "enquiries")}
    rows = [
        {
            **f,
            "city": names.get(f["city_code"], f["city_code"]),
            "category_name": categories.get(f["category"], ""),
            "measure": measure[f["measure"]][0 if lang == "zh" else 1],
        }
        for f in data["flags"]
    ]
    return Table("warnings", "预警", "Early warnings", cols, rows, *period_of(data["period"]))


def overtime_table(data: Mapping[str, Any], lang: str) -> Table:
    """Per city its branches and subtotal; a city without a report is one row marked
    missing in the status column (the branch column names branches only)."""
    cols = [
        *_CITY,
        Column("status", "状态", "Status", "text"),
        Column("branch", "承办单位", "Branch", "text"),
        Column("cases", "超时限投诉", "Overtime complaints", "int"),
        Column("compensation_fen", "赔偿金额(元)", "Compensation (yuan)", "yuan"),
        Column("overdue_hours", "超时小时", "Hours overdue", "int"),
    ]
    rows: list[dict[str, Any]] = []
    for c in data["cities"]:
        name = city_name(c, lang)
        status = _figures_status(c, lang)
        if c["missing"]:
            rows.append({"city_code": c["city_code"], "city": name, "status": status})
            continue
        for b in c["branches"]:
            rows.append({"city_code": c["city_code"], "city": name, "status": status, **b})
        rows.append(
            {
                "city_code": c["city_code"],
                "city": name,
                "status": status,
                "branch": "小计" if lang == "zh" else "subtotal",
                "cases": c["cases"],
                "compensation_fen": c["total_compensation_fen"],
            }
        )
    p = data["province"]
    rows.append(
        {
            "city_code": "",
            "city": "全省合计" if lang == "zh" else "Province total",
            "status": f"{sum(not c['missing'] for c in data['cities'])}/{len(data['cities'])}",
            "branch": "",
            "cases": p["cases"],
            "compensation_fen": p["total_compensation_fen"],
        }
    )
    return Table(
        "overtime",
        "超时限投诉及赔偿",
        "Overtime and compensation",
        cols,
        rows,
        *period_of(data["period"]),
    )


#: QA defect kinds (``fedsync.v1.DefectKind``, as the hub stores them) → (zh, en), in the
#: cities' consoles' words.
DEFECT_NAMES: dict[str, tuple[str, str]] = {
    ("other_defect" if kind == "other" else kind): words for kind, words in DEFECT_WORDS.items()
}
assert {*DEFECT_NAMES, "defect_kind_unspecified"} == {k.lower() for k, _ in pb.DefectKind.items()}


def defects_text(defects: Mapping[str, int], lang: str) -> str:
    """Defect counts by kind as one cell (``服务态度: 2, 超时处理: 1``); a kind this hub
    does not know as it came."""
    i = 0 if lang == "zh" else 1
    return ", ".join(f"{DEFECT_NAMES.get(k, (k, k))[i]}: {v}" for k, v in defects.items())


def qa_table(data: Mapping[str, Any], lang: str) -> Table:
    cols = [
        *_CITY,
        Column("status", "状态", "Status", "text"),
        Column("sampled", "抽检量", "Sampled", "int"),
        Column("passed", "合格量", "Passed", "int"),
        Column("pass_rate", "合格率", "Pass rate", "rate"),
        Column("mean_score", "平均得分", "Mean score", "float"),
        Column("defects", "差错(类型:数量)", "Defects (kind: count)", "text"),
        Column("findings", "质检意见", "Findings", "text"),
    ]
    rows: list[dict[str, Any]] = []
    for c in data["cities"]:
        # A city without a QA report says so, as on the figures and overtime tables (a row
        # of dashes read as a report of nothing).
        row: dict[str, Any] = {
            "city_code": c["city_code"],
            "city": city_name(c, lang),
            "status": _figures_status(c, lang),
        }
        if not c["missing"]:
            row.update(
                {k: c[k] for k in ("sampled", "passed", "pass_rate", "mean_score", "findings")}
            )
            row["defects"] = defects_text(c["defects"], lang)
        rows.append(row)
    p = data["province"]
    rows.append(
        {
            "city_code": "",
            "city": "全省合计" if lang == "zh" else "Province total",
            "status": f"{sum(not c['missing'] for c in data['cities'])}/{len(data['cities'])}",
            **{k: p[k] for k in ("sampled", "passed", "pass_rate", "mean_score")},
            "defects": defects_text(p["defects"], lang),
        }
    )
    return Table("qa", "质检情况", "QA picture", cols, rows, *period_of(data["period"]))


def suggestions_table(
    batches: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    lang: str,
    categories: Mapping[str, str],
) -> Table:
    cols = [
        *_CITY,
        Column("batch_date", "批次日期", "Batch date", "text"),
        Column("batch_number", "批号", "Batch", "int"),
        Column("new", "新", "New", "text"),
        Column("category", "分类", "Category", "text"),
        _CATEGORY_NAME,
        Column("content", "建议内容", "Suggestion", "text"),
        Column("classified_by", "资料员", "Classified by", "text"),
    ]
    rows = []
    for b in batches:
        for s in b["suggestions"]:
            rows.append(
                {
                    "city_code": b["city_code"],
                    "city": names.get(b["city_code"], b["city_code"]),
                    "batch_date": b["batch_date"],
                    "batch_number": b["batch_number"],
                    "new": ("新" if lang == "zh" else "new") if b.get("new") else "",
                    "category": s["category"],
                    "category_name": categories.get(s["category_code"], ""),
                    "content": s["content"],
                    "classified_by": b["classified_by"],
                    "seq": b["seq"],
                }
            )
    return Table("suggestions", "建议汇总", "Suggestions", cols, rows)


def quarantine_table(rows: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> Table:
    cols = [
        *_CITY,
        Column("seq", "序号", "Seq", "int"),
        Column("kind", "类型", "Kind", "text"),
        Column("subject", "内容", "Subject", "text"),
        Column("revision", "版次", "Revision", "int"),
        Column("reason", "隔离原因", "Reason", "text"),
        Column("received_at", "接收时间", "Received", "time"),
    ]
    out = [{**r, "city": names.get(r["city_code"], r["city_code"])} for r in rows]
    return Table("quarantine", "隔离记录", "Quarantined records", cols, out)


#: A link's state (``province_hub.status.derived_state``) in a page's or export's words.
LINK_STATES: dict[str, tuple[str, str]] = {
    "connected": ("已连接", "connected"),
    "silent": ("失联", "silent"),
    "never": ("从未连接", "never connected"),
    "conflict": ("序号冲突", "sequence conflict"),
    "revoked": ("证书已吊销", "certificate revoked"),
    "incompatible": ("版本不兼容", "incompatible version"),
    "behind": ("待补发", "waiting for re-send"),
}


def link_state_text(state: str, lang: str) -> str:
    pair = LINK_STATES.get(state)
    return state if pair is None else pair[0 if lang == "zh" else 1]


#: What a link's error is about, by the refusal the hub stored it as (``LinkError`` class
#: names, as ``province_hub.links`` writes ``last_error``): a Chinese page leads with it and
#: keeps the stored sentence (English, as the logs and the CLI say it) for whoever follows
#: it up.
LINK_ERRORS_ZH: dict[str, str] = {
    "SequenceConflict": (
        "序号冲突：地市存储被重建或从旧备份恢复，复核后需重新编号（fedsync city rebase）"
    ),
    "SequenceGap": "序号缺口：等待地市从中断处补发",
    "SchemaUnsupported": "接口版本不兼容：地市软件需升级",
    "CertificateRevoked": "证书已吊销",
    "IdentityMismatch": "身份不符：报文未以证书所属地市的名义发送",
    "MalformedEnvelope": "报文格式错误，已拒收",
    "BatchTooLarge": "批次超过上限，已拒收",
}
_BEHIND_ZH = (
    "省中心从较早的备份恢复，等待地市重发其后的记录；"
    "地市已不再保留的，需重新编号（fedsync city rebase）"
)


def link_error_text(row: Mapping[str, Any], lang: str) -> str:
    """A link row's current error (``error``) as a reader in ``lang`` reads it: English as
    stored; Chinese led by what it is about — the hub's refusal, a restored hub waiting for
    the city, or the city's own error from its heartbeat."""
    error = str(row.get("error") or "")
    if not error or lang != "zh":
        return error
    if error != row.get("last_error"):
        said = "地市报告的错误"
    elif row.get("state") == "behind":
        said = _BEHIND_ZH
    else:
        kind, colon, _ = error.partition(":")
        said = (LINK_ERRORS_ZH.get(kind) if colon else None) or "链路错误"
    return f"{said}（原文：{error}）"


def links_table(
    rows: Sequence[Mapping[str, Any]], names: Mapping[str, str], lang: str = "zh"
) -> Table:
    cols = [
        *_CITY,
        Column("state", "链路状态", "Link state", "text"),
        Column("last_contact", "最近联系", "Last contact", "time"),
        Column("acked_seq", "已确认序号", "Acked seq", "int"),
        Column("records", "记录数", "Records", "int"),
        Column("quarantined", "隔离数", "Quarantined", "int"),
        Column("backlog", "待发送", "Backlog", "int"),
        Column("oldest_unsent_age_s", "最早未发送(秒)", "Oldest unsent (s)", "int"),
        Column("error", "当前错误", "Error", "text"),
    ]
    out = [
        {
            **r,
            "city": names.get(r["city_code"], r["city_code"]),
            "state": link_state_text(r["state"], lang),
            "records": sum(r["records"].values()),
            "error": link_error_text(r, lang),
        }
        for r in rows
    ]
    return Table("links", "链路状态", "Link health", cols, out)
