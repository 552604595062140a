"""Query parameter types both webs share.

A date in a query (a period's start, a ``from`` / ``to`` filter) is limited to the years the
federation's reports may have (``sync.limits``): the views step from it by days, weeks and
months, and ``date`` arithmetic at year 1 or 9999 raises ``OverflowError``, which would
answer a mistyped URL with a 500. Out of range, the request is refused with a 422 naming the
parameter and the years.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Container, Iterable, Sequence
from datetime import date
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict

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


#: A JSON integer in a request body, not a bool or a string that looks like one (``true`` is
#: not 1, ``"3"`` not 3).
Whole = Annotated[int, Strict()]
#: A JSON bool in a request body: ``"yes"``, ``1`` or ``"false"`` are refused, not read as
#: true or false (a confirmation must be meant).
Flag = Annotated[bool, Strict()]


class RequestModel(BaseModel):
    """A JSON request body of either web: a misspelt or unknown field is a 422 naming it,
    not silently ignored (nothing half-done on a typo)."""

    model_config = ConfigDict(extra="forbid")


class RepeatedParameter(Refusal, ValueError):
    """A query parameter of one value given several times (``period=month&period=day``)."""


class UnknownParameter(Refusal, ValueError):
    """A query parameter the API request does not take (``strat=`` for ``start=``)."""


#: The attribute a route keeps the query parameters it takes in, once found: (every name,
#: those taken as lists — repeatable). On the route itself: routes compare by value, so they
#: key no dictionary, and an id could be reused by a later app's route.
_QUERY_ATTRIBUTE = "__fedsync_query_parameters__"
#: Query parameters every request takes: the language of the answer.
_ALWAYS_TAKEN = frozenset({"lang"})


def _is_list(annotation: Any) -> bool:
    """Whether a parameter's type takes several values (``list[str]``, optional or not)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_list(get_args(annotation)[0])
    if origin is Union or type(annotation).__name__ == "UnionType":
        return any(_is_list(a) for a in get_args(annotation) if a is not type(None))
    return origin in (list, tuple, set, frozenset, Sequence)


def _query_parameters(route: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(every query parameter ``route`` and its dependencies take, those taken as lists)."""
    if route is None:
        return frozenset(), frozenset()
    found: tuple[frozenset[str], frozenset[str]] | None = getattr(route, _QUERY_ATTRIBUTE, None)
    if found is None:
        names: set[str] = set()
        lists: set[str] = set()
        pending = [getattr(route, "dependant", None)]
        while pending:
            dependant = pending.pop()
            if dependant is None:
                continue
            names |= {f.alias for f in dependant.query_params}
            lists |= {f.alias for f in dependant.query_params if _is_list(f.field_info.annotation)}
            pending.extend(dependant.dependencies)
        found = (frozenset(names), frozenset(lists))
        setattr(route, _QUERY_ATTRIBUTE, found)
    return found


def refuse_repeated_query(request: Request) -> None:
    """Refuse (422 naming it, in the page's language on a page) a query parameter given
    more than once that the route takes once: the framework would keep the last and drop
    the others without a word (``period=month&period=day`` answered for a day). On the
    ``/api/`` a parameter the request does not take at all is refused as well: the
    framework would ignore it, and ``?strat=2026-11-27`` answered for today."""
    params = request.query_params
    route = request.scope.get("route")
    if request.url.path.startswith("/api/") and params:
        refuse_unknown(params.keys(), "query", _query_parameters(route)[0] | _ALWAYS_TAKEN)
    if len(params) == len(params.multi_items()):  # nothing given twice: the common case
        return
    refuse_repeated(params.multi_items(), "query", _query_parameters(route)[1])


def refuse_unknown(keys: Iterable[str], where: str, taken: frozenset[str]) -> None:
    """``RequestValidationError`` (422 naming each and what is taken) for every key not in
    ``taken``."""
    errors = []
    for key in dict.fromkeys(keys):
        if key in taken:
            continue
        refusal = UnknownParameter(
            "query.unknown", takes=", ".join(sorted(taken - _ALWAYS_TAKEN)) or "-"
        )
        errors.append(
            {
                "type": "value_error",
                "loc": (where, key),
                "msg": f"Value error, {refusal}",
                "input": key,
                "ctx": {"error": refusal},
            }
        )
    if errors:
        raise RequestValidationError(errors)


async def refuse_unread_body(request: Request) -> None:
    """Refuse (422 naming ``body``) a body sent to an API action that reads none (approve a
    report, draw a QA sample, send the day's suggestions): nothing in it would be read, so a
    client that meant something by it, or sent a broken document, must hear so rather than
    see the action done. An empty body, or ``{}``, is no body. A dependency of every route
    of both webs, acting on the API (pages read their forms their own way); an action that
    reads a body has its model judge it."""
    route = request.scope.get("route")
    if (
        not request.url.path.startswith("/api/")
        or route is None
        or getattr(route, "body_field", None) is not None
    ):
        return
    raw = await request.body()
    if not raw.strip():
        return
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except ValueError:  # not UTF-8
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "not valid JSON", "input": {}}]
        ) from None
    if value == {}:
        return
    raise RequestValidationError(
        [
            {
                "type": "no_body",
                "loc": ("body",),
                "msg": "this action reads no body: send none, or {}",
                "input": value,
            }
        ]
    )


def refuse_repeated(
    items: Sequence[tuple[str, Any]], where: str, repeatable: Container[str]
) -> None:
    """``RequestValidationError`` (422 naming each) for every key of ``items`` (a query's
    or a form's pairs) given more than once that is not ``repeatable``."""
    counts = Counter(key for key, _ in items)
    errors = []
    for key, n in counts.items():
        if n < 2 or key in repeatable:
            continue
        refusal = RepeatedParameter("query.repeated", count=n)
        errors.append(
            {
                "type": "value_error",
                "loc": (where, key),
                "msg": f"Value error, {refusal}",
                "input": [value for k, value in items if k == key],
                "ctx": {"error": refusal},
            }
        )
    if errors:
        raise RequestValidationError(errors)
