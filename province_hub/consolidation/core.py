"""What every view of the province's picture stands on: periods as a person or a URL gives
them, the KPI definitions, each city's latest revision of a period, and the read cache.

The cache: header reads (:func:`headers`) and report timeliness are kept per engine, keyed
by the store's **figures version** — every city's ``(epoch, acked_seq)`` from
``city_links``, which ingest bumps in the same transaction that lands a report's figures
(and quarantines, suggestion batches... which only invalidate needlessly). A new revision
therefore changes the key before anyone can read its figures; the version is read before
the data, so a reader never files older data under a newer version. Decoded slices are
kept by the header's bytes, which never change. Each hub replica has its own cache; all
key on the shared database's state.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from province_hub.figures import (
    PERIOD_CODES,
    SATISFACTION_COUNTS,
    SLICE_COUNTS,
    STAT_COUNTS,
    SliceRow,
    kpi,
    statistics_slices,
)
from province_hub.refusals import HubRefusal
from sync.periods import PeriodError, iso_date, period_end, period_start_for
from sync.roster import City


class FiguresError(HubRefusal, ValueError):
    """A request for figures that cannot be answered; the message names the parameter."""

    def __init__(self, code: str, /, *, parameter: str, field: str = "", **values: Any) -> None:
        # ``field`` only where the sentence places it ({field}): the message names the
        # parameter in its own words otherwise.
        super().__init__(code, field=field, **values)
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
        return period_ref(self.kind, period_start_for(PERIOD_CODES[self.kind], self.start - DAY))

    def back(self, count: int) -> list[PeriodRef]:
        """This period and the ``count - 1`` before it, oldest first."""
        out = [self]
        while len(out) < count:
            out.append(out[-1].previous())
        return out[::-1]


DAY = timedelta(days=1)


def period_ref(kind: str, start: date | str, *, parameter: str = "start") -> PeriodRef:
    """Check a period given by a person or a URL; the error names ``period`` or the
    parameter that gave the start (``start``; a trend's ``last``)."""
    if kind not in PERIOD_CODES:
        raise FiguresError(
            "period.kind", parameter="period", value=kind, allowed=", ".join(PERIOD_CODES)
        )
    if isinstance(start, str):
        try:
            start = iso_date(start)
        except ValueError:
            raise FiguresError(
                "period.start_not_date", parameter=parameter, field=parameter, value=start
            ) from None
    code = PERIOD_CODES[kind]
    first = period_start_for(code, start)
    if first != start:
        raise FiguresError(
            "period.start_not_first",
            parameter=parameter,
            field=parameter,
            start=start,
            kind=kind,
            first=first,
        )
    try:
        return PeriodRef(kind, start, period_end(code, start))
    except (PeriodError, OverflowError, ValueError) as exc:
        raise FiguresError(
            "figures.start_bad", parameter=parameter, field=parameter, start=start, problem=str(exc)
        ) from None


# --- KPIs -------------------------------------------------------------------------------------

#: KPI name → (numerator, denominator) over the summed counts; ``None``: a plain count.
KPI_DEFINITIONS: dict[str, tuple[str, str | None]] = {
    "in_time_closure_rate": ("closed_in_time", "closed"),
    "overtime_open": ("overtime_open", None),
    "repeat_complaint_rate": ("repeat_complaints", "complaints_received"),
    "satisfaction_rate": ("satisfied_or_better", "surveyed"),
    "survey_coverage": ("complaints_surveyed", "complaints_closed"),
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


def statistics_kpis(
    counts: Mapping[str, int], satisfaction: Mapping[str, int], *, reported: bool = True
) -> dict[str, Any]:
    """The KPIs of summed counts. Where nothing was ``reported`` (no city's report in the
    sum) a count KPI (``overtime_open``) is missing — numerator null — not a count of 0, as
    a rate is null for want of a denominator."""
    values = dict(counts)
    values["surveyed"] = satisfaction["surveyed"]
    values["complaints_surveyed"] = satisfaction["complaints_surveyed"]
    values["satisfied_or_better"] = satisfaction["very_satisfied"] + satisfaction["satisfied"]
    out: dict[str, Any] = {}
    for name, (num, den) in KPI_DEFINITIONS.items():
        if den is None and not reported:
            out[name] = {"numerator": None, "denominator": None, "rate": None}
        else:
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


def headers(
    conn: Connection,
    model: Any,
    kind: str,
    starts: Sequence[date],
    cities: Sequence[str] | None,
    *,
    body: bool = False,
) -> dict[tuple[str, date], Any]:
    """Each (city, start)'s latest header of these periods; a statistics header's ``body``
    (its slices) is read only when asked for. Cached by the figures version."""
    key = ("headers", model.__tablename__, kind, tuple(starts), _frozen(cities), body)
    heads: dict[tuple[str, date], Any] = cached(
        conn, key, lambda: _read_headers(conn, model, kind, starts, cities, body)
    )
    return heads


def _frozen(cities: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if cities is None else tuple(cities)


def _read_headers(
    conn: Connection,
    model: Any,
    kind: str,
    starts: Sequence[date],
    cities: Sequence[str] | None,
    body: bool,
) -> dict[tuple[str, date], Any]:
    columns = [c for c in model.__table__.columns if body or c.name != "body"]
    query = select(*columns).where(model.period_kind == kind, model.period_start.in_(starts))
    if cities is not None:
        query = query.where(model.city_code.in_(cities))
    return _latest(conn.execute(query).all())


# --- the read cache --------------------------------------------------------------------------

#: Entries kept per engine (a figures page reads a handful; trends a dozen).
CACHE_SIZE = 512
_VERSION_SQL = text("SELECT city_code, epoch, acked_seq FROM city_links ORDER BY city_code")


class _EngineCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[Hashable, Any] = OrderedDict()
        #: The version read by each open connection (one read per view call).
        self.versions: weakref.WeakKeyDictionary[Connection, Hashable] = weakref.WeakKeyDictionary()


_CACHES: weakref.WeakKeyDictionary[Engine, _EngineCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache_of(engine: Engine) -> _EngineCache:
    with _CACHES_LOCK:
        cache = _CACHES.get(engine)
        if cache is None:
            cache = _CACHES[engine] = _EngineCache()
        return cache


def figures_version(conn: Connection) -> Hashable:
    """The store's figures version (see the module docstring), read once per connection
    checkout: the views read it before their data, inside the same ``connect()`` block."""
    cache = _cache_of(conn.engine)
    version = cache.versions.get(conn)
    if version is None:
        version = tuple(tuple(row) for row in conn.execute(_VERSION_SQL).all())
        cache.versions[conn] = version
    return version


def cached(conn: Connection, key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()``'s value for ``key`` at the store's current figures version. Values must
    not be mutated by callers (rows, tuples, or dicts the caller copies)."""
    cache = _cache_of(conn.engine)
    full = (figures_version(conn), key)
    with cache.lock:
        if full in cache.entries:
            cache.entries.move_to_end(full)
            return cache.entries[full]
    value = compute()
    with cache.lock:
        cache.entries[full] = value
        while len(cache.entries) > CACHE_SIZE:
            cache.entries.popitem(last=False)
    return value


def clear_cache() -> None:
    """Forget every cached read (tests that write figure tables behind ingest's back)."""
    with _CACHES_LOCK:
        _CACHES.clear()
    decoded_slices.cache_clear()


@lru_cache(maxsize=16384)
def decoded_slices(city_code: str, seq: int, body: bytes) -> tuple[SliceRow, ...]:
    """The slices of a statistics header, decoded once per body."""
    return tuple(statistics_slices(city_code, seq, body))


def children(conn: Connection, model: Any, keys: Iterable[tuple[str, int]]) -> list[Any]:
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


def zero_slice() -> dict[str, int]:
    return dict.fromkeys(SLICE_COUNTS, 0)


def slices_list(groups: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    return [{"key": key, **groups[key]} for key in sorted(groups)]


@dataclass
class Totals:
    counts: dict[str, int]
    satisfaction: dict[str, int]
    by_category: dict[str, dict[str, int]]
    by_channel: dict[str, dict[str, int]]
    #: Report headers summed (0: nothing reported, the count KPIs are missing).
    reports: int = 0

    @classmethod
    def empty(cls) -> Totals:
        return cls(
            dict.fromkeys(STAT_COUNTS, 0),
            dict.fromkeys(SATISFACTION_COUNTS, 0),
            defaultdict(zero_slice),
            defaultdict(zero_slice),
        )

    def add_header(self, row: Any) -> None:
        self.reports += 1
        for name in STAT_COUNTS:
            self.counts[name] += getattr(row, name)
        for name in SATISFACTION_COUNTS:
            self.satisfaction[name] += getattr(row, name)

    def add_slice(self, row: Any) -> None:
        target = self.by_category if row.dimension == "category" else self.by_channel
        counts = target[row.key]
        for name in SLICE_COUNTS:
            counts[name] += getattr(row, name)

    def kpis(self) -> dict[str, Any]:
        return statistics_kpis(self.counts, self.satisfaction, reported=self.reports > 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts,
            "satisfaction": dict(self.satisfaction),
            "by_category": slices_list(self.by_category),
            "by_channel": slices_list(self.by_channel),
            "kpis": self.kpis(),
        }


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def city_entry(city: City) -> dict[str, Any]:
    return {"city_code": city.code, "name_zh": city.name_zh, "name_en": city.name_en}
