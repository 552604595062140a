"""``fedsync hub figures``: a period's consolidated statistics, per city and for the province.

Kept apart from the CLI module so the command moves with the hub's CLI unchanged: the
``fedsync`` parser calls :func:`add_figures_command` on its ``hub`` subcommands; the command
itself only parses, calls :func:`province_hub.consolidation.figures` and prints.
"""

from __future__ import annotations

import argparse
from typing import Any

from sync.commands import print_data
from sync.config import ConfigError, add_arguments

PERIOD_CHOICES = ("day", "week", "month", "quarter", "year")
#: Columns of the text table: (header, how to read it from a city or province entry).
_PERCENT_KPIS = (
    ("in-time", "in_time_closure_rate"),
    ("satisfied", "satisfaction_rate"),
    ("repeat", "repeat_complaint_rate"),
    ("coverage", "survey_coverage"),
    ("QA pass", "qa_pass_rate"),
    ("on time", "report_timeliness"),
)


def add_figures_command(hub_sub: Any) -> argparse.ArgumentParser:
    """Add ``figures`` to the hub's subcommands (with the hub's settings flags)."""
    from province_hub.settings import HubSettings

    parser: argparse.ArgumentParser = hub_sub.add_parser(
        "figures",
        help="a period's figures: every roster city (its latest revision, or missing) and "
        "the province total",
        description="Counts use the field names of StatisticsReport; KPIs are "
        "{numerator, denominator, rate} from summed counts, rate null when the denominator "
        "is 0. A city without a report for the period is listed as missing.",
    )
    # Not argparse choices: a bad value must exit 2 with our message naming the flag.
    parser.add_argument("--period", required=True, help="day, week, month, quarter or year")
    parser.add_argument(
        "--start", required=True, help="first day of the period, YYYY-MM-DD (Monday for a week)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(_handler=run_figures)
    add_arguments(parser, HubSettings, nested=True)
    return parser


def run_figures(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from province_hub.consolidation import FiguresError, figures, period_ref
    from province_hub.settings import HubSettings
    from province_hub.store import create_schema
    from sync.commands import tier_settings
    from sync.db import make_engine
    from sync.limits import report_date_problem
    from sync.roster import load_roster
    from sync.zones import in_zone

    try:
        period = period_ref(args.period, args.start)  # refuse bad input before the store
    except FiguresError as exc:
        raise ConfigError(f"--{exc.parameter}: {exc}") from None
    problem = report_date_problem(period.start, "start")  # the API's bounds (422 there)
    if problem:
        raise ConfigError(f"--start: {problem}")
    settings = tier_settings(HubSettings, args, section="hub")
    roster = load_roster(settings.roster)
    engine = make_engine(settings.database_url)
    try:
        create_schema(engine)
        data = figures(
            engine,
            period_kind=args.period,
            start=args.start,
            roster=roster,
            deadlines=settings.deadlines(),
        )
    finally:
        engine.dispose()
    data = in_zone(data, ZoneInfo(settings.timezone))  # times as the web shows them
    print_data(args, data, format_figures(data))
    return 0


def _rate(entry: dict[str, Any], name: str) -> str:
    value = (entry.get("kpis") or {}).get(name)
    if value is None or value["rate"] is None:
        return "-"
    return f"{100 * value['rate']:.1f}%"


def format_figures(data: dict[str, Any]) -> str:
    """A fixed-width table: one line per city, then the province."""
    period = data["period"]
    header = ["city", "name", "rev", "complaints", "enquiries", "closed", "overtime"]
    header += [label for label, _ in _PERCENT_KPIS]
    lines = [[*header]]

    def row(code: str, name: str, entry: dict[str, Any], revision: str) -> list[str]:
        if entry.get("missing"):
            return [
                code,
                name,
                "missing",
                *([""] * (len(header) - 4)),
                _rate(entry, "report_timeliness"),
            ]
        return [
            code,
            name,
            revision,
            str(entry["complaints_received"]),
            str(entry["enquiries_received"]),
            str(entry["closed"]),
            str(entry["overtime_open"]),
            *(_rate(entry, key) for _, key in _PERCENT_KPIS),
        ]

    for city in data["cities"]:
        lines.append(row(city["city_code"], city["name_en"], city, str(city.get("revision"))))
    province = data["province"]
    lines.append(row("total", f"{province['cities_reporting']} reporting", province, ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [f"{period['kind']} {period['start']} .. {period['end']} (end exclusive)"]
    text += [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    if province["cities_missing"]:
        text.append(f"missing: {', '.join(province['cities_missing'])}")
    return "\n".join(text)
