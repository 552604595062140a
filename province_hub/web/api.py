"""``/api/v1``: the supervisor web's JSON API (OpenAPI at ``/openapi.json``).

Every route is a thin edge: the caller (HTTP Basic or session cookie) is checked against
the role table (:mod:`province_hub.web.access`), the query is parsed, one view function
(:mod:`province_hub.web.views`) answers. A bad query value is a 422 whose ``detail`` names
the parameter (FastAPI's validation for types and enums; the consolidation service's
:class:`~province_hub.consolidation.FiguresError` for rules such as "start must begin a
period"). ``/figures`` returns exactly the JSON of ``fedsync hub figures --json``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from province_hub import supervision
from province_hub.staff import HubMember
from province_hub.web import exports, views
from province_hub.web.access import AREAS, api_user
from province_hub.web.context import hub_of
from province_hub.web.views import ExportView, KpiName, PeriodKind
from sync.limits import INT64_MAX
from sync.web.auth import area, client_address
from sync.web.params import Day, RequestModel, Whole


class Problem(BaseModel):
    """A refusal: what is wrong, naming the parameter or field when it is one."""

    detail: str


#: What any /api/v1 route may answer besides its own results (the desks and notices add theirs).
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no or wrong credentials"},
    403: {"model": Problem, "description": "the role may not open this"},
    422: {"model": Problem, "description": "a query value is invalid (the detail names it)"},
    429: {"model": Problem, "description": "too many failed logins"},
}

router = APIRouter(prefix="/api/v1", tags=["supervisor"], responses=ERRORS)
Caller = Annotated[HubMember, Depends(api_user)]

# --- response models (the fields clients rely on; the services may add more) ---------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Kpi(BaseModel):
    """A KPI from summed counts: ``rate`` is null when the denominator is 0; ``overtime_open``
    is a count (no denominator), null where no city reported (missing, not 0)."""

    numerator: int | None
    denominator: int | None
    rate: float | None


class Period(BaseModel):
    kind: str
    start: date
    end: date


class CityFigures(_Open):
    city_code: str
    name_zh: str
    name_en: str
    missing: bool
    revision: int | None
    # Counts, slices and ``kpis`` follow when the city reported (none when it is missing).


class ProvinceFigures(_Open):
    cities_reporting: int
    cities_missing: list[str]
    kpis: dict[str, Kpi | None]


class Figures(_Open):
    period: Period
    cities: list[CityFigures]
    province: ProvinceFigures


class ComparisonRow(_Open):
    city_code: str
    missing: bool
    ranks: dict[str, int]
    previous_kpis: dict[str, Kpi | None] | None


class Comparison(_Open):
    period: Period
    previous_period: Period
    rows: list[ComparisonRow]
    previous_province_kpis: dict[str, Kpi | None]


class TrendPoint(Kpi):
    cities_reporting: int


class Trend(_Open):
    kpi: str
    period_kind: str
    periods: list[date]
    province: list[TrendPoint]
    cities: dict[str, list[Kpi | None]]


class Revision(_Open):
    revision: int
    seq: int
    latest: bool
    counts: dict[str, int]


class Change(BaseModel):
    field: str
    old: int
    new: int
    change: int


class RevisionDiff(BaseModel):
    from_revision: int
    to_revision: int
    changes: list[Change]


class Reports(_Open):
    city_code: str
    period: Period
    revisions: list[Revision]
    diffs: list[RevisionDiff]


class PeriodView(_Open):
    period: Period


class SuggestionBatch(_Open):
    city_code: str
    seq: int
    batch_date: str
    new: bool
    suggestions: list[dict[str, Any]]
    earlier_seqs: list[int] = Field(
        default_factory=list,
        description="earlier copies of this city's batch (same date and number, other "
        "content: a city restored from an older copy sent it again); their suggestions of "
        "tickets this copy does not carry are in `suggestions`",
    )


class BatchKey(RequestModel):
    city_code: str = Field(pattern=r"^\d{6}$")
    seq: Whole = Field(ge=1, le=INT64_MAX)


class SeenRequest(RequestModel):
    batches: list[BatchKey] = Field(min_length=1, max_length=1000)


class SeenResult(BaseModel):
    marked: int


class Me(BaseModel):
    id: str
    name: str
    role: str
    areas: list[str]


# --- query parameters ---------------------------------------------------------------------------

PeriodQ = Annotated[PeriodKind, Query(description="period kind")]
StartQ = Annotated[
    Day | None,
    Query(description="first day of the period (default: the latest period that has ended)"),
]
LastQ = Annotated[
    Day | None,
    Query(description="a trend's: first day of the last period shown (default: the latest ended)"),
]
CityQ = Annotated[str | None, Query(pattern=r"^\d{6}$", description="a roster city's code")]


def _json(data: Any) -> Response:
    """The view's JSON as it is: the response model documents it (and the schemathesis test
    checks it against the responses), but FastAPI's re-validation and encoding of a whole
    province's figures cost more than computing them (about 11 ms of a 15 ms answer)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(body, media_type="application/json")


# --- routes ---------------------------------------------------------------------------------------


@router.get("/me", response_model=Me)
def me(user: Caller) -> Me:
    """Who is calling, and which areas their role may open."""
    areas = sorted(a for a, roles in AREAS.items() if user.role in roles)
    return Me(id=user.id, name=user.name, role=user.role.value, areas=areas)


@router.get("/figures", response_model=Figures)
@area("figures")
def get_figures(
    request: Request, user: Caller, period: PeriodQ = "month", start: StartQ = None
) -> Any:
    """A period's figures per roster city (latest revision, or missing) and the province
    total with every KPI as {numerator, denominator, rate}."""
    return _json(views.figures(hub_of(request), period, start))


@router.get("/comparison", response_model=Comparison)
@area("figures")
def get_comparison(
    request: Request, user: Caller, period: PeriodQ = "month", start: StartQ = None
) -> Any:
    """One row per city with counts, KPIs, ranks (1 = best) and the last period's KPIs."""
    return _json(views.comparison(hub_of(request), period, start))


#: Most cities a trend draws beside the province.
MAX_TREND_CITIES = views.MAX_TREND_CITIES

#: ``cities=620100&cities=620200``, or the same comma-separated (``cities=620100,620200``).
CitiesQ = Annotated[
    list[Annotated[str, Query(pattern=r"^\d{6}(,\d{6})*$")]],
    Query(
        max_length=MAX_TREND_CITIES,
        description="cities to draw beside the province: the parameter repeated, or codes "
        "separated by commas",
    ),
]


@router.get("/trend", response_model=Trend)
@area("figures")
def get_trend(
    request: Request,
    user: Caller,
    kpi: Annotated[KpiName, Query()] = "in_time_closure_rate",
    period: PeriodQ = "month",
    last: LastQ = None,
    cities: CitiesQ = [],  # noqa: B006 - FastAPI copies defaults per request
) -> Any:
    """A KPI over 30 days / 13 weeks / 12 months / 8 quarters / 5 years: the province line
    and one line per chosen city (null where its report is missing)."""
    return _json(views.trend(hub_of(request), kpi, period, last, views.city_list(cities)))


@router.get("/warnings", response_model=PeriodView)
@area("figures")
def get_warnings(
    request: Request,
    user: Caller,
    period: PeriodQ = views.PERIOD_DEFAULTS["warnings"],
    start: StartQ = None,
) -> Any:
    """Cities and categories running well above their own recent baseline, with the numbers."""
    return _json(views.warnings(hub_of(request), period, start))


@router.get("/reports", response_model=Reports)
@area("reports")
def get_reports(
    request: Request,
    user: Caller,
    city: Annotated[str, Query(pattern=r"^\d{6}$", description="a roster city's code")],
    period: PeriodQ = "month",
    start: StartQ = None,
) -> Any:
    """Every revision of a city's statistics report for a period, each diffed with the one
    before it."""
    return _json(views.reports(hub_of(request), city, period, start))


@router.get("/qa", response_model=PeriodView)
@area("qa")
def get_qa(request: Request, user: Caller, period: PeriodQ = "month", start: StartQ = None) -> Any:
    """QA per city: pass rate, mean score, defects by kind, findings; and the province's."""
    return _json(views.qa(hub_of(request), period, start))


@router.get("/overtime", response_model=PeriodView)
@area("overtime")
def get_overtime(
    request: Request, user: Caller, period: PeriodQ = "month", start: StartQ = None
) -> Any:
    """Overtime complaints and compensation per city and branch (money in fen)."""
    return _json(views.overtime(hub_of(request), period, start))


@router.get("/hotspots", response_model=PeriodView)
@area("hotspots")
def get_hotspots(
    request: Request, user: Caller, period: PeriodQ = "month", start: StartQ = None
) -> Any:
    """Enquiry categories rising per city, vs the last period and vs the province."""
    return _json(views.hotspots(hub_of(request), period, start))


@router.get("/suggestions", response_model=list[SuggestionBatch])
@area("suggestions")
def get_suggestions(
    request: Request,
    user: Caller,
    city: CityQ = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    date_from: Annotated[Day | None, Query(alias="from")] = None,
    date_to: Annotated[Day | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Any:
    """Suggestion batches, newest first; ``new`` until a materials manager has seen them.
    A page of ``limit`` batches after the first ``offset`` (the next page: ``offset`` +
    ``limit``; a page shorter than ``limit`` is the last)."""
    found = views.suggestions(
        hub_of(request), city, category, date_from, date_to, limit=limit, offset=offset
    )
    return _json(found)


@router.post("/suggestions/seen", response_model=SeenResult)
@area("suggestions.seen")
def post_suggestions_seen(request: Request, user: Caller, body: SeenRequest) -> SeenResult:
    """Mark suggestion batches seen (materials managers only); returns how many were new."""
    marked = supervision.mark_suggestions_seen(
        hub_of(request).engine,
        batches=[(b.city_code, b.seq) for b in body.batches],
        seen_by=user.id,
        role=user.role.value,
        address=client_address(request),
    )
    return SeenResult(marked=marked)


@router.get("/quarantine", response_model=list[dict[str, Any]])
@area("quarantine")
def get_quarantine(request: Request, user: Caller, city: CityQ = None) -> Any:
    """Quarantined records with the city and the reason, newest first."""
    return _json(views.quarantine(hub_of(request), city))


@router.get("/links", response_model=list[dict[str, Any]])
@area("links")
def get_links(request: Request, user: Caller) -> Any:
    """Every roster city's link: state, last contact, acked seq, backlog, errors."""
    return _json(views.links(hub_of(request)))


@router.get(
    "/export/{view}",
    response_class=Response,
    responses=exports.responses("the table as a file, with its period and generation time"),
)
@area(lambda path: views.EXPORT_AREAS.get(path.get("view", "")))
def get_export(
    request: Request,
    user: Caller,
    view: ExportView,
    format: Annotated[exports.Format, Query()] = "csv",
    period: Annotated[
        PeriodKind | None,
        Query(description="period kind (default: the view's, as its API: week for warnings)"),
    ] = None,
    start: StartQ = None,
    last: LastQ = None,
    sort: Annotated[str, Query(max_length=40)] = "city_code",
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
    kpi: Annotated[KpiName, Query()] = "in_time_closure_rate",
    cities: CitiesQ = [],  # noqa: B006 - FastAPI copies defaults per request
    city: CityQ = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    date_from: Annotated[Day | None, Query(alias="from")] = None,
    date_to: Annotated[Day | None, Query(alias="to")] = None,
) -> Response:
    """A view's table as CSV or XLSX, Chinese headers, as the province sends it upward.
    The view's own query applies, with its API's defaults and refusals: the trend's
    ``kpi``, ``period``, ``last`` and ``cities``; the warnings' week; the suggestions'
    category and dates."""
    hub = hub_of(request)
    table = views.export_table(
        hub,
        view,
        "zh",  # exports go upward in Chinese
        period=period,
        start=start,
        last=last,
        sort=sort,
        order=order,
        kpi=kpi,
        cities=views.city_list(cities),
        city=city,
        category=category,
        date_from=date_from,
        date_to=date_to,
    )
    return exports.attachment(table, format, hub.local_now())
