"""What every city use case needs: the store, the city's identity and its working rules.

Built once by the composition root (:mod:`city_node.app`) and passed to the services; tests
build their own with :func:`make_context`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from city_node.calendar import WorkCalendar
from city_node.domain import REPEAT_WINDOW_DAYS, Role

# The city's errors live in city_node.errors (the tree); re-exported here for the callers
# that import them with the context.
from city_node.errors import CityError as CityError
from city_node.errors import Conflict as Conflict
from city_node.errors import NotFound as NotFound
from sync.categories import CategoryTree
from sync.limits import INT64_MAX, MAX_NOTE_CHARS, id_in_range
from sync.limits import refuse_characters as shared_refusal
from sync.periods import DEFAULT_TIMEZONE

#: What :func:`existing_id` names -> its refusal.
_NO_SUCH_ID = {"notice": "id.no_notice", "report": "id.no_report", "QA sample": "id.no_qa_sample"}


def existing_id(value: int, what: str) -> int:
    """``value`` if it can be a stored row id, else ``NotFound`` naming ``what`` (a notice,
    a report, a QA sample).

    An id above 2^63 - 1 names nothing any store holds; passing it on would make PostgreSQL
    fail with "bigint out of range" (and SQLite overflow) instead of the plain answer.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not id_in_range(value):
        raise NotFound(_NO_SUCH_ID[what], value=value, maximum=INT64_MAX)
    return value


def check_city_note(value: str, field: str) -> str:
    """``value`` if it fits the federation's note limit (``sync.limits.MAX_NOTE_CHARS``, as
    ``sync.limits.check_note``), else ``CityError``."""
    if len(value) > MAX_NOTE_CHARS:
        raise CityError(
            "text.over_hub_limit", field=field, length=len(value), maximum=MAX_NOTE_CHARS
        )
    refuse_characters(value, field)
    return value


def refuse_characters(value: str, field: str) -> None:
    """``CityError`` naming ``field`` when ``value`` holds a control character (but tab and
    newlines) or a lone surrogate."""
    shared_refusal(value, field, CityError)


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff id and the role they act in."""

    id: str
    role: Role

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise CityError("actor.missing")


@dataclass(frozen=True)
class CityContext:
    engine: Engine
    city_code: str
    categories: CategoryTree
    calendar: WorkCalendar
    tz_name: str = DEFAULT_TIMEZONE
    repeat_window_days: int = REPEAT_WINDOW_DAYS
    #: Statistics / QA / overtime reports leave without a leader's approval when True.
    auto_approve: bool = False
    #: Separation of duties: a report's approver must not be the person who drafted it.
    approver_not_drafter: bool = False
    #: Share of the previous day's closed tickets drawn for QA by the daily schedule.
    qa_sample_rate: float = 0.05
    zone: ZoneInfo = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", ZoneInfo(self.tz_name))

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self, now: datetime | None = None) -> date:
        return (now or self.now()).astimezone(self.zone).date()


def make_context(
    engine: Engine,
    city_code: str,
    *,
    tz_name: str = DEFAULT_TIMEZONE,
    holidays: frozenset[date] = frozenset(),
    extra_workdays: frozenset[date] = frozenset(),
    categories: CategoryTree | None = None,
    **options: object,
) -> CityContext:
    return CityContext(
        engine=engine,
        city_code=city_code,
        categories=categories or CategoryTree.load(),
        calendar=WorkCalendar(holidays, extra_workdays, tz_name=tz_name),
        tz_name=tz_name,
        **options,  # type: ignore[arg-type]
    )
