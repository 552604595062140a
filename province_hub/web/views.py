"""What each view of the supervisor web shows, as data: the API returns it as JSON, the
pages render it, the exports write its tables. One function per view, each calling the
consolidation service; defaults (which period, how many trend points) are decided here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from itertools import pairwise
from typing import Any, Literal

from province_hub import consolidation, supervision
from province_hub.consolidation import FiguresError
from province_hub.consolidation.period_figures import timeliness as consolidation_timeliness
from province_hub.figures import SATISFACTION_COUNTS, STAT_COUNTS
from province_hub.status import link_status
from province_hub.web import tables
from province_hub.web.context import HubWeb
from province_hub.web.tables import Table
from sync.categories import code_of
from sync.zones import in_zone

PeriodKind = Literal["day", "week", "month", "quarter", "year"]
KpiName = Literal[
    "in_time_closure_rate",
    "satisfaction_rate",
    "repeat_complaint_rate",
    "overtime_open",
    "survey_coverage",
    "escalation_rate",
    "qa_pass_rate",
    "report_timeliness",
]
#: Trend length per period kind: 12 months, 13 weeks, 30 days (issue 9), 8 quarters, 5 years.
TREND_POINTS: dict[str, int] = {"day": 30, "week": 13, "month": 12, "quarter": 8, "year": 5}
#: The views that have an export, and the area (role table) each needs.
EXPORT_AREAS: dict[str, str] = {
    "figures": "figures",
    "timeliness": "figures",
    "comparison": "figures",
    "trend": "figures",
    "warnings": "figures",
    "reports": "reports",
    "qa": "qa",
    "overtime": "overtime",
    "hotspots": "hotspots",
    "suggestions": "suggestions",
    "quarantine": "quarantine",
    "links": "links",
}
ExportView = Literal[
    "figures",
    "timeliness",
    "comparison",
    "trend",
    "warnings",
    "reports",
    "qa",
    "overtime",
    "hotspots",
    "suggestions",
    "quarantine",
    "links",
]
#: A view's period kind when none is asked (the API's default, which its export shares).
PERIOD_DEFAULTS: dict[str, PeriodKind] = {"warnings": "week"}


def default_period(view: str) -> PeriodKind:
    """The period kind ``view`` shows when none is asked: a week for the early warnings
    (their baseline is weekly), a month for the others."""
    return PERIOD_DEFAULTS.get(view, "month")


#: Dates the views accept: wide enough for any real report, narrow enough that walking
#: back a trend never leaves the calendar.
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2199, 12, 31)


def start_of(hub: HubWeb, period: str, start: date | None, parameter: str = "start") -> date:
    """``start``, or the latest period that has ended (its report is the one due). A start
    given must lie in the years the views accept and be the first day of its period, for
    every view alike (the consolidation service's own check, :func:`consolidation.period_ref`);
    a refusal names ``parameter``, the query parameter that gave it (a trend's ``last``)."""
    if start is None:
        return supervision.last_complete_start(period, hub.today())
    if not MIN_DATE <= start <= MAX_DATE:
        raise FiguresError(
            "figures.start_range",
            parameter=parameter,
            field=parameter,
            start=start,
            low=MIN_DATE,
            high=MAX_DATE,
        )
    consolidation.period_ref(period, start, parameter=parameter)
    return start


def figures(hub: HubWeb, period: str, start: date | None) -> dict[str, Any]:
    data: dict[str, Any] = consolidation.figures(
        hub.engine,
        period_kind=period,
        start=start_of(hub, period, start),
        roster=hub.roster,
        deadlines=hub.deadlines,
        now=hub.local_now(),
    )
    return dict(in_zone(data, hub.zone))


def timeliness(hub: HubWeb, period: str, start: date | None) -> dict[str, Any] | None:
    """Every report owed for the period, per city: on time, late, missing or pending (its
    deadline not passed yet); None when the hub judges no deadlines."""
    first = start_of(hub, period, start)
    if hub.deadlines is None:
        return None
    data = consolidation_timeliness(
        hub.engine,
        deadlines=hub.deadlines,
        period_kind=period,
        start=first,
        roster=hub.roster,
        now=hub.local_now(),
    )
    return dict(in_zone(data, hub.zone))


def overview(
    hub: HubWeb, period: str, start: date | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """What the overview shows of a period — its figures, the comparison with the last
    period, and report timeliness — each computed once: the figures are the comparison's
    current period, and timeliness feeds the figures' ``report_timeliness`` KPI."""
    first = start_of(hub, period, start)
    timely = timeliness(hub, period, first)
    data: dict[str, Any] = consolidation.figures(
        hub.engine,
        period_kind=period,
        start=first,
        roster=hub.roster,
        timely=timely,
    )
    compared = consolidation.comparison(
        hub.engine, period_kind=period, start=first, roster=hub.roster, current=data
    )
    zone = hub.zone
    return in_zone(data, zone), in_zone(compared, zone), in_zone(timely, zone)


def comparison(hub: HubWeb, period: str, start: date | None) -> dict[str, Any]:
    first = start_of(hub, period, start)
    # This period's figures judged on the deadlines: report timeliness is ranked too.
    current = consolidation.figures(
        hub.engine,
        period_kind=period,
        start=first,
        roster=hub.roster,
        deadlines=hub.deadlines,
        now=hub.local_now(),
        slices=False,
    )
    data = consolidation.comparison(
        hub.engine, period_kind=period, start=first, roster=hub.roster, current=current
    )
    return dict(in_zone(data, hub.zone))


def trend(
    hub: HubWeb,
    kpi: str,
    period: str,
    last: date | None,
    cities: Sequence[str],
    parameter: str = "last",
) -> dict[str, Any]:
    return consolidation.trend(
        hub.engine,
        kpi_name=kpi,
        period_kind=period,
        last_start=start_of(hub, period, last, parameter),
        count=TREND_POINTS[period],
        roster=hub.roster,
        cities=list(dict.fromkeys(cities)),
        deadlines=hub.deadlines,
        now=hub.local_now(),
    )


def trends(
    hub: HubWeb, kpis: Sequence[str], period: str, last: date | None, cities: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """:func:`trend` of several KPIs from one read of the store."""
    return consolidation.trends(
        hub.engine,
        kpi_names=kpis,
        period_kind=period,
        last_start=start_of(hub, period, last, "last"),
        count=TREND_POINTS[period],
        roster=hub.roster,
        cities=list(dict.fromkeys(cities)),
        deadlines=hub.deadlines,
        now=hub.local_now(),
    )


def reports(hub: HubWeb, city: str, period: str, start: date | None) -> dict[str, Any]:
    """Every revision of one city's statistics report for a period (the consolidation
    service's :func:`~province_hub.consolidation.revisions`), each with its counts, its
    slices, whether it is the one counted, and the diff against the one before it."""
    if city not in hub.roster_codes:
        raise FiguresError("figures.city_unknown", parameter="city", city=city)
    data = consolidation.revisions(
        hub.engine, city_code=city, period_kind=period, start=start_of(hub, period, start)
    )
    revs = data["revisions"]
    shown = []
    for i, r in enumerate(revs):
        counts = {f: r[f] for f in STAT_COUNTS}
        counts.update({f: r["satisfaction"][f] for f in SATISFACTION_COUNTS})
        shown.append(
            {
                **{k: r[k] for k in ("revision", "seq", "received_at", "approved_by")},
                "latest": i == len(revs) - 1,
                "counts": counts,
                "by_category": r["by_category"],
                "by_channel": r["by_channel"],
            }
        )
    diffs = [
        {
            "from_revision": a["revision"],
            "to_revision": b["revision"],
            "changes": [
                {"field": field, "old": old, "new": new, "change": new - old}
                for field, (old, new) in b["changes"].items()
            ],
        }
        for a, b in pairwise(revs)
    ]
    shown_in_zone = in_zone(shown, hub.zone)
    return {"city_code": city, "period": data["period"], "revisions": shown_in_zone, "diffs": diffs}


def qa(hub: HubWeb, period: str, start: date | None) -> dict[str, Any]:
    first = start_of(hub, period, start)
    data = consolidation.qa_picture(hub.engine, period_kind=period, start=first, roster=hub.roster)
    return _with_standing(hub, data, "qa", period, first)


def overtime(hub: HubWeb, period: str, start: date | None) -> dict[str, Any]:
    first = start_of(hub, period, start)
    data = consolidation.overtime_summary(
        hub.engine, period_kind=period, start=first, roster=hub.roster
    )
    return _with_standing(hub, data, "overtime", period, first)


def _with_standing(
    hub: HubWeb, data: dict[str, Any], report: str, period: str, first: date
) -> dict[str, Any]:
    """``data`` with each city's ``report_status`` for ``report`` of the period (on_time,
    late, missing, pending, before_go_live; not_owed when the report is not due for this
    kind of period), as the figures carry it for statistics: a city without a report reads
    缺报 only when it owed one."""
    judged = timeliness(hub, period, first)
    if judged is None or hub.deadlines is None:
        return data
    if period not in hub.deadlines.due.get(report, ()):
        # Not owed for this kind of period (QA is monthly by default): nobody is missing.
        for city in data["cities"]:
            city["report_status"] = "not_owed"
        return data
    standing = {r["city_code"]: r["status"] for r in judged["rows"] if r["report"] == report}
    for city in data["cities"]:
        if city["city_code"] in standing:
            city["report_status"] = standing[city["city_code"]]
    return data


def hotspots(hub: HubWeb, period: str, start: date | None) -> dict[str, Any]:
    return consolidation.enquiry_hotspots(
        hub.engine, period_kind=period, start=start_of(hub, period, start), roster=hub.roster
    )


def warnings(hub: HubWeb, period: str, start: date | None) -> dict[str, Any]:
    return consolidation.early_warnings(
        hub.engine, period_kind=period, start=start_of(hub, period, start), roster=hub.roster
    )


#: Most cities a trend draws beside the province (the roster has 14; repeats count).
MAX_TREND_CITIES = 50


def city_list(cities: Sequence[str]) -> list[str]:
    """The codes of ``cities`` parameters, comma-separated ones split, at most
    :data:`MAX_TREND_CITIES` (else a 422 naming ``cities``)."""
    codes = [code for item in cities for code in item.split(",")]
    if len(codes) > MAX_TREND_CITIES:
        raise FiguresError(
            "figures.too_many_cities", parameter="cities", count=len(codes), most=MAX_TREND_CITIES
        )
    return codes


def category_code(value: str | None) -> str | None:
    """A category filter as typed: a code (``NET``, ``BILL.DISPUTE``) or a category's path
    label as the consoles show it (``资费与计费 / 话费争议 / BILL.DISPUTE``), whose code is the
    part after the last " / ". Blank is no filter (None)."""
    if value is None:
        return None
    return code_of(value) or None


#: Most suggestion batches one export holds (about 200,000 suggestions): narrow the dates for
#: more.
EXPORT_BATCHES = 10_000


def suggestions(
    hub: HubWeb,
    city: str | None,
    category: str | None,
    date_from: date | None,
    date_to: date | None,
    *,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    if city is not None and city not in hub.roster_codes:
        raise FiguresError("figures.city_unknown", parameter="city", city=city)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise FiguresError(
            "figures.dates_reversed", parameter="from", date_from=date_from, date_to=date_to
        )
    found = supervision.suggestions_with_seen(
        hub.engine,
        city_code=city,
        category=category_code(category),
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
    )
    return list(in_zone(found, hub.zone))


def quarantine(hub: HubWeb, city: str | None) -> list[dict[str, Any]]:
    if city is not None and city not in hub.roster_codes:
        raise FiguresError("figures.city_unknown", parameter="city", city=city)
    return list(in_zone(consolidation.quarantined_records(hub.engine, city_code=city), hub.zone))


def links(hub: HubWeb) -> list[dict[str, Any]]:
    return list(in_zone(link_status(hub.engine, hub.roster_codes), hub.zone))


def check_sort(sort: str) -> None:
    if sort not in tables.SORT_KEYS:
        raise FiguresError(
            "figures.sort", parameter="sort", value=sort, allowed=", ".join(tables.SORT_KEYS)
        )


def export_table(
    hub: HubWeb,
    view: str,
    lang: str,
    *,
    period: str | None,
    start: date | None,
    last: date | None = None,
    sort: str,
    order: str,
    kpi: str,
    cities: Sequence[str],
    city: str | None,
    category: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Table:
    """The table a view exports, built exactly as its page and API show it: from the
    view's own query (a trend's last period is ``last``, the others' period ``start``), the
    view's period kind when ``period`` is None. ``city`` and ``cities`` must be roster
    cities whichever view is asked (a view without a city filter would otherwise ignore a
    mistyped one)."""
    if period is None:
        period = default_period(view)
    if city is not None and city not in hub.roster_codes:
        raise FiguresError("figures.city_unknown", parameter="city", city=city)
    unknown = [c for c in cities if c not in hub.roster_codes]
    if unknown:
        raise FiguresError("figures.cities_unknown", parameter="cities", codes=", ".join(unknown))
    # Only the comparison sorts, but a sort no table has is a mistake wherever it is sent.
    check_sort(sort)
    names = hub.names(lang)
    if view == "figures":
        return tables.figures_table(figures(hub, period, start), lang)
    if view == "timeliness":
        return tables.timeliness_table(timeliness(hub, period, start), names, lang)
    if view == "comparison":
        return tables.comparison_table(
            comparison(hub, period, start), lang, sort=sort, descending=order == "desc"
        )
    if view == "trend":
        return tables.trend_table(trend(hub, kpi, period, last, cities), names, lang)
    if view == "warnings":
        return tables.warnings_table(
            warnings(hub, period, start), names, lang, hub.category_names(lang)
        )
    if view == "reports":
        if city is None:
            raise FiguresError("figures.city_required", parameter="city")
        return tables.revisions_table(reports(hub, city, period, start), hub.city(city), lang)
    if view == "qa":
        return tables.qa_table(qa(hub, period, start), lang)
    if view == "overtime":
        return tables.overtime_table(overtime(hub, period, start), lang)
    if view == "hotspots":
        return tables.hotspots_table(
            hotspots(hub, period, start), names, lang, hub.category_names(lang)
        )
    if view == "suggestions":
        # The whole selection (newest first), not the page's first 100 batches.
        found = suggestions(hub, city, category, date_from, date_to, limit=EXPORT_BATCHES)
        return tables.suggestions_table(found, names, lang, hub.category_names(lang))
    if view == "quarantine":
        return tables.quarantine_table(quarantine(hub, city), names)
    return tables.links_table(links(hub), names, lang)
