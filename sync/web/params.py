"""Query parameter types both webs share.

A date in a query (a period's start, a ``from`` / ``to`` filter) is limited to the years the
federation's reports may have (``sync.limits``): the views step from it by days, weeks and
months, and ``date`` arithmetic at year 1 or 9999 raises ``OverflowError``, which would
answer a mistyped URL with a 500. Out of range, the request is refused with a 422 naming the
parameter and the years.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from sync.limits import report_date_refusal
from sync.periods import is_iso_date
from sync.refusals import Refusal


class DayRefused(Refusal, ValueError):
    """A query date outside the report years (pydantic turns it into a 422)."""


def _sane_day(value: date) -> date:
    problem = report_date_refusal(value)
    if problem:
        raise DayRefused(problem[0], field="date", **problem[1])
    return value


def _day_text(value: object) -> object:
    """Only ``YYYY-MM-DD`` text reaches the date parser: pydantic alone also reads
    ``2026-11-29T00:00`` (a date-time at midnight), ``20261129`` and ``0`` (seconds since
    1970) as dates."""
    if isinstance(value, date) or (isinstance(value, str) and is_iso_date(value)):
        return value
    raise DayRefused("date.as_text")


#: A date given as ``YYYY-MM-DD`` text and nothing else (JSON bodies, queries).
DayText = Annotated[date, BeforeValidator(_day_text)]
#: A ``YYYY-MM-DD`` query value within the report years (2000..2100).
Day = Annotated[DayText, AfterValidator(_sane_day)]


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


#: A page's filter field its form sent empty (``from=``, ``action=``) is no value at all, as
#: if it was not sent (a browser sends every field of a GET form): ``Annotated[X | None,
#: BLANK_IS_NONE]``.
BLANK_IS_NONE = BeforeValidator(_blank_is_none)
#: A page's date filter: as :data:`Day`, and empty is no date.
FormDay = Annotated[Day | None, BLANK_IS_NONE]


class RequestModel(BaseModel):
    """A JSON request body of either web: a misspelt or unknown field is a 422 naming it,
    not silently ignored (nothing half-done on a typo)."""

    model_config = ConfigDict(extra="forbid")
