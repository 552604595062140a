"""Report figures in typed tables, landed at ingest (architecture.md, "The province side").

When the hub accepts a statistics, QA or overtime report, :func:`land_figures` writes its
figures in the same transaction as the record: one header row per report revision, keyed
like the record itself by ``(city_code, seq)``, with every count as a column. The slices of
QA and overtime reports (defect, operator, overtime case with its branch) are child rows
keyed by ``(city_code, seq, n)`` — ``n`` being the position in the report.

A statistics report's category, channel and operator slices are **not** child rows (since
migration h0007): the header row keeps the report's ``StatisticsReport`` bytes in its
``body`` column — the same bytes the record stores, typed by the wire contract — and
readers decode the slices of the few revisions they show (:func:`statistics_slices`,
:func:`statistics_operators`; about 6 µs a report with upb). Why: a daily report carries
about 40 slices, and writing them as rows made a report cost the hub ~40 row inserts
where a suggestion batch costs one — statistics ingest ran at 3 % of the suggestion rate
in-process and 11-15 % end to end (``benchmarks.ingest --bodies both``). Storing the bytes
costs nothing to encode (they are the ones that travelled) and one column to write. What
it gives up: SQL cannot ``GROUP BY`` a slice key; every view that needs slices reads at
most a few hundred revisions (one period × 14 cities, or 9 weeks for early warning) and sums
them in Python, which measured faster than the join over child rows did
(``benchmarks.province_figures``). JSON arrays were measured too: encoding 40 slices cost
about 100 µs a report, more than the rows it replaced.

Invariants:

- every accepted revision is kept; nothing here is ever updated or deleted, so a
  dashboard reads "each city's latest revision of a period" by query
  (:mod:`province_hub.consolidation`), indexed by ``(period_kind, period_start, city_code,
  revision)``;
- quarantined records land nothing: a figure that broke a business rule must not count;
- rows go through :func:`sync.db.bulk_insert` (COPY / executemany), the hub's ingest hot
  path, one statement per table for a whole Push batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sync.db import bulk_insert
from sync.pb.fedsync.v1 import federation_pb2 as pb

#: Report kinds whose figures are landed (the record ``kind`` names).
FIGURE_KINDS = frozenset({"statistics_report", "qa_report", "overtime_report"})
#: Period kinds by their wire value, as stored and as the CLI / API spell them.
PERIOD_NAMES: dict[int, str] = {
    pb.DAY: "day",
    pb.WEEK: "week",
    pb.MONTH: "month",
    pb.QUARTER: "quarter",
    pb.YEAR: "year",
}
PERIOD_CODES: dict[str, int] = {name: code for code, name in PERIOD_NAMES.items()}
#: A period kind as a Chinese line names it (exports, the hub's own notices' titles).
PERIOD_ZH = {"day": "日", "week": "周", "month": "月", "quarter": "季", "year": "年"}
#: The report kinds a city owes (deadlines, reminders) -> (Chinese, English).
REPORT_WORDS = {
    "statistics": ("统计报表", "statistics report"),
    "qa": ("质检报告", "QA report"),
    "overtime": ("超时限及赔偿报告", "overtime report"),
}

#: Counts of a StatisticsReport, named as in the proto (satisfaction counts apart).
STAT_COUNTS = (
    "complaints_received",
    "suggestions_received",
    "enquiries_received",
    "handled",
    "closed",
    "closed_in_time",
    "overtime_open",
    "repeat_complaints",
    "escalations_raised",
    "complaints_closed",
)
SATISFACTION_COUNTS = (
    "very_satisfied",
    "satisfied",
    "neutral",
    "dissatisfied",
    "surveyed",
    "unreachable",
    # Wire schema 1.4; a report without it (an older city) stands with its ``surveyed``.
    "complaints_surveyed",
)
SLICE_COUNTS = (
    "complaints",
    "suggestions",
    "enquiries",
    "closed",
    "closed_in_time",
    "repeat_complaints",
)


class FiguresBase(DeclarativeBase):
    pass


class _Header:
    """Columns every report header shares: which city, which revision of which period."""

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    #: The record's seq: one header per accepted record.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: day / week / month / quarter / year
    period_kind: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(BigInteger)
    #: When the hub committed it (deadlines are judged on it).
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


#: Child rows are stored in their primary key's order (SQLite ``WITHOUT ROWID``): one B-tree
#: write per row instead of two (table + key index), the larger part of ingest's added cost.
_CLUSTERED = {"sqlite_with_rowid": False}


class _Child:
    # The key columns first (sort_order): SQLite 3.40's quick_check reports a NULL in every
    # row of a WITHOUT ROWID table whose NOT NULL columns come before its key (h0009).
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True, sort_order=-3)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-2)
    #: Position of the slice in the report.
    n: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-1)


class StatisticsFigures(_Header, FiguresBase):
    """One statistics report revision: every count of ``StatisticsReport`` as a column."""

    __tablename__ = "fig_statistics"

    complaints_received: Mapped[int] = mapped_column(BigInteger)
    suggestions_received: Mapped[int] = mapped_column(BigInteger)
    enquiries_received: Mapped[int] = mapped_column(BigInteger)
    handled: Mapped[int] = mapped_column(BigInteger)
    closed: Mapped[int] = mapped_column(BigInteger)
    closed_in_time: Mapped[int] = mapped_column(BigInteger)
    overtime_open: Mapped[int] = mapped_column(BigInteger)
    repeat_complaints: Mapped[int] = mapped_column(BigInteger)
    escalations_raised: Mapped[int] = mapped_column(BigInteger)
    complaints_closed: Mapped[int] = mapped_column(BigInteger)
    very_satisfied: Mapped[int] = mapped_column(BigInteger)
    satisfied: Mapped[int] = mapped_column(BigInteger)
    neutral: Mapped[int] = mapped_column(BigInteger)
    dissatisfied: Mapped[int] = mapped_column(BigInteger)
    surveyed: Mapped[int] = mapped_column(BigInteger)
    unreachable: Mapped[int] = mapped_column(BigInteger)
    #: The numerator of survey coverage (h0010).
    complaints_surveyed: Mapped[int] = mapped_column(BigInteger)
    approved_by: Mapped[str] = mapped_column(Text)
    #: The report's ``StatisticsReport`` bytes as the record keeps them: the category,
    #: channel and operator slices are read from here (:func:`statistics_slices`,
    #: :func:`statistics_operators`), not from child rows (see the module docstring).
    body: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_fig_statistics_period", "period_kind", "period_start", "city_code", "revision"),
    )


class QaFigures(_Header, FiguresBase):
    """One QA report revision."""

    __tablename__ = "fig_qa"

    sampled: Mapped[int] = mapped_column(BigInteger)
    passed: Mapped[int] = mapped_column(BigInteger)
    mean_score_centi: Mapped[int] = mapped_column(BigInteger)
    findings: Mapped[str] = mapped_column(Text)
    inspector: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_fig_qa_period", "period_kind", "period_start", "city_code", "revision"),
    )


class QaDefect(_Child, FiguresBase):
    __tablename__ = "fig_qa_defects"
    __table_args__ = _CLUSTERED

    #: The DefectKind name in lower case: late, wrong_answer, ...
    defect: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(BigInteger)


class QaOperator(_Child, FiguresBase):
    __tablename__ = "fig_qa_operators"
    __table_args__ = _CLUSTERED

    operator_id: Mapped[str] = mapped_column(Text)
    sampled: Mapped[int] = mapped_column(BigInteger)
    passed: Mapped[int] = mapped_column(BigInteger)
    mean_score_centi: Mapped[int] = mapped_column(BigInteger)


class OvertimeFigures(_Header, FiguresBase):
    """One overtime and compensation report revision."""

    __tablename__ = "fig_overtime"

    cases: Mapped[int] = mapped_column(BigInteger)
    total_compensation_fen: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_fig_overtime_period", "period_kind", "period_start", "city_code", "revision"),
    )


class OvertimeCase(_Child, FiguresBase):
    __tablename__ = "fig_overtime_cases"
    __table_args__ = _CLUSTERED

    ticket_id: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    #: The branch (分公司) that broke the limit ("" when the city did not say).
    branch: Mapped[str] = mapped_column(Text)
    limit_hours: Mapped[int] = mapped_column(BigInteger)
    overdue_hours: Mapped[int] = mapped_column(BigInteger)
    compensation_fen: Mapped[int] = mapped_column(BigInteger)


class ReportReminder(FiguresBase):
    """The claim that a REMINDER was sent for one city's overdue report of one period.

    The claim is inserted in the transaction that creates the notice; its primary key makes
    "once per report and period" hold across hub replicas: a second claim fails and takes
    its transaction's notices with it (province_hub/deadlines.py also keeps two replicas
    from running the routine at once).
    """

    __tablename__ = "report_reminders"

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    #: statistics / qa / overtime
    report_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    notice_seq: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_HEADER = ("city_code", "seq", "period_kind", "period_start", "revision", "received_at")
_CHILD = ("city_code", "seq", "n")


def kpi(numerator: int, denominator: int | None) -> dict[str, Any]:
    """``{numerator, denominator, rate}``; ``rate`` is None when the denominator is 0.

    Every KPI of the province side (consolidation, report timeliness) is built by this one
    function: rates come from summed counts, never from averaged percentages.
    """
    rate = None if not denominator else numerator / denominator
    return {"numerator": numerator, "denominator": denominator, "rate": rate}


# The order the row builders below write values in (bulk_insert names the columns).
_STAT_COLUMNS = (*_HEADER, *STAT_COUNTS, *SATISFACTION_COUNTS, "approved_by", "body")
_QA_COLUMNS = (*_HEADER, "sampled", "passed", "mean_score_centi", "findings", "inspector")
_DEFECT_COLUMNS = (*_CHILD, "defect", "count")
_QA_OPERATOR_COLUMNS = (*_CHILD, "operator_id", "sampled", "passed", "mean_score_centi")
_OVERTIME_COLUMNS = (*_HEADER, "cases", "total_compensation_fen")
_CASE_COLUMNS = (
    *_CHILD,
    "ticket_id",
    "category",
    "branch",
    "limit_hours",
    "overdue_hours",
    "compensation_fen",
)
_TABLE_COLUMNS: tuple[tuple[Any, tuple[str, ...]], ...] = (
    (StatisticsFigures, _STAT_COLUMNS),
    (QaFigures, _QA_COLUMNS),
    (QaDefect, _DEFECT_COLUMNS),
    (QaOperator, _QA_OPERATOR_COLUMNS),
    (OvertimeFigures, _OVERTIME_COLUMNS),
    (OvertimeCase, _CASE_COLUMNS),
)
for _model, _names in _TABLE_COLUMNS:
    # A column added to a model but not to its builder would be left NULL: fail at import.
    if set(_names) != {c.name for c in _model.__table__.columns}:
        raise RuntimeError(f"{_model.__tablename__}: row builder columns differ from the table")


#: The counts of a report, fetched in one C call each (attribute by attribute they were a
#: fifth of a report's ingest CPU).
_STAT_VALUES = attrgetter(*STAT_COUNTS)
# Every count but the last, complaints_surveyed, which an older city's report lacks.
if SATISFACTION_COUNTS[-1] != "complaints_surveyed":
    raise RuntimeError("SATISFACTION_COUNTS: complaints_surveyed must come last")
_SATISFACTION_VALUES = attrgetter(*SATISFACTION_COUNTS[:-1])


def complaints_surveyed(s: pb.SatisfactionCounts) -> int:
    """The numerator of survey coverage: the city's count of surveyed complaints, or, from
    a city before wire schema 1.4 (no such field), its ``surveyed`` as it counted it."""
    return s.complaints_surveyed if s.HasField("complaints_surveyed") else s.surveyed


class FigureRows:
    """The rows of a batch of reports, per table, in driver form."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {
            model.__tablename__: (columns, []) for model, columns in _TABLE_COLUMNS
        }

    def add(
        self,
        conn: Connection,
        city_code: str,
        seq: int,
        body: Any,
        received_at: Any,
        raw: bytes | None = None,
    ) -> None:
        """Rows for one accepted report body (``received_at`` in driver form); ``raw``: the
        body's bytes as stored in the record (serialized here when not given)."""
        if raw is None and isinstance(body, pb.StatisticsReport):
            raw = body.SerializeToString(deterministic=True)
        period = body.period
        start: Any = date.fromisoformat(period.start)
        if conn.dialect.name == "sqlite":
            start = period.start  # SQLAlchemy's SQLite Date is the ISO text
        header = (city_code, seq, PERIOD_NAMES[period.kind], start, body.revision, received_at)
        t = self.tables
        if isinstance(body, pb.StatisticsReport):
            t["fig_statistics"][1].append(
                (
                    *header,
                    *_STAT_VALUES(body),
                    *_SATISFACTION_VALUES(body.satisfaction),
                    complaints_surveyed(body.satisfaction),
                    body.approved_by,
                    raw,
                )
            )
        elif isinstance(body, pb.QaReport):
            t["fig_qa"][1].append(
                (
                    *header,
                    body.sampled,
                    body.passed,
                    body.mean_score_centi,
                    body.findings,
                    body.inspector,
                )
            )
            t["fig_qa_defects"][1].extend(
                (city_code, seq, i, pb.DefectKind.Name(d.kind).lower(), d.count)
                for i, d in enumerate(body.defects)
            )
            t["fig_qa_operators"][1].extend(
                (city_code, seq, i, o.operator_id, o.sampled, o.passed, o.mean_score_centi)
                for i, o in enumerate(body.operators)
            )
        elif isinstance(body, pb.OvertimeReport):
            t["fig_overtime"][1].append((*header, len(body.cases), body.total_compensation_fen))
            t["fig_overtime_cases"][1].extend(
                (
                    city_code,
                    seq,
                    i,
                    c.ticket_id,
                    c.category,
                    c.branch,
                    c.limit_hours,
                    c.overdue_hours,
                    c.compensation_fen,
                )
                for i, c in enumerate(body.cases)
            )
        else:  # pragma: no cover - callers pass FIGURE_KINDS bodies only
            raise TypeError(f"{type(body).__name__} has no figures")

    def insert(self, conn: Connection, *, present: Mapping[str, set[str]] | None = None) -> None:
        """Insert every table's rows; ``present``: only these columns of each table (a
        migration's back-fill, into tables a later migration gives more columns)."""
        for table, (columns, rows) in self.tables.items():
            if not rows:
                continue
            held = None if present is None else present[table]
            if held is None or held >= set(columns):
                bulk_insert(conn, table, columns, rows)
                continue
            keep = [i for i, name in enumerate(columns) if name in held]
            bulk_insert(
                conn,
                table,
                tuple(columns[i] for i in keep),
                [tuple(row[i] for i in keep) for row in rows],
            )


def land_figures(
    conn: Connection,
    *,
    city_code: str,
    reports: Sequence[tuple[int, Any, bytes | None, Any]],
) -> None:
    """Land the figures of accepted reports ``(seq, body, body bytes, received_at)`` in the
    caller's transaction (the bytes as the record stores them; ``None``: serialize the body).

    ``received_at`` is the record's, in driver form (``sync.db.datetime_param``).
    """
    if not reports:
        return
    rows = FigureRows()
    for seq, body, raw, received_at in reports:
        rows.add(conn, city_code, seq, body, received_at, raw)
    rows.insert(conn)


_BODIES: dict[str, Any] = {
    "statistics_report": pb.StatisticsReport,
    "qa_report": pb.QaReport,
    "overtime_report": pb.OvertimeReport,
}


def backfill(
    conn: Connection,
    *,
    kinds: Sequence[str] = tuple(sorted(FIGURE_KINDS)),
    missing_only: bool = False,
    chunk: int = 2000,
) -> int:
    """Land the figures of the accepted report records of ``kinds`` already stored; how many.

    For the migrations that introduce the tables (stores that held records before them),
    into the columns the tables have at that revision (a later migration fills those it
    adds). The records are read page by page in (city, seq) order; ``received_at`` is
    passed back in the driver's own form, as it was read. ``missing_only`` skips records
    whose header row is already there.
    """
    inspector = inspect(conn)
    present = {
        table: {c["name"] for c in inspector.get_columns(table)}
        for table in FigureRows().tables
        if inspector.has_table(table)
    }
    tables = {
        "statistics_report": StatisticsFigures.__tablename__,
        "qa_report": QaFigures.__tablename__,
        "overtime_report": OvertimeFigures.__tablename__,
    }
    done = 0
    for kind in sorted(kinds):
        skip = (
            f"AND NOT EXISTS (SELECT 1 FROM {tables[kind]} f "
            "WHERE f.city_code = records.city_code AND f.seq = records.seq) "
            if missing_only
            else ""
        )
        sql = text(
            "SELECT city_code, seq, received_at, body FROM records "
            f"WHERE status = 'accepted' AND kind = '{kind}' {skip}"
            "AND (city_code > :city OR (city_code = :city AND seq > :seq)) "
            "ORDER BY city_code, seq LIMIT :limit"
        )
        city, seq = "", 0
        while True:
            page = conn.execute(sql, {"city": city, "seq": seq, "limit": chunk}).all()
            if not page:
                break
            rows = FigureRows()
            for code, number, received_at, body in page:
                raw = bytes(body)
                rows.add(conn, code, number, _BODIES[kind].FromString(raw), received_at, raw)
            rows.insert(conn, present=present)
            done += len(page)
            city, seq = page[-1][0], page[-1][1]
    return done


class SliceRow(NamedTuple):
    """A category or channel slice of one statistics revision, decoded from its body."""

    city_code: str
    seq: int
    n: int
    #: category / channel
    dimension: str
    key: str
    complaints: int
    suggestions: int
    enquiries: int
    closed: int
    closed_in_time: int
    repeat_complaints: int


class OperatorRow(NamedTuple):
    """One operator's workload in one statistics revision, decoded from its body."""

    city_code: str
    seq: int
    n: int
    operator_id: str
    registered: int
    closed: int


def _slices_message(body: bytes) -> Any:
    # Slices and operators only: the counts are typed columns of the header already.
    return pb.StatisticsReport.FromString(bytes(body))


def statistics_slices(city_code: str, seq: int, body: bytes) -> list[SliceRow]:
    """The category then channel slices of a header's ``body``, in report order."""
    report = _slices_message(body)
    out: list[SliceRow] = []
    for dimension, items in (("category", report.by_category), ("channel", report.by_channel)):
        for x in items:
            out.append(
                SliceRow(
                    city_code,
                    seq,
                    len(out),
                    dimension,
                    x.key,
                    x.complaints,
                    x.suggestions,
                    x.enquiries,
                    x.closed,
                    x.closed_in_time,
                    x.repeat_complaints,
                )
            )
    return out


def statistics_operators(city_code: str, seq: int, body: bytes) -> list[OperatorRow]:
    """The operators of a header's ``body``, in report order."""
    return [
        OperatorRow(city_code, seq, i, o.operator_id, o.registered, o.closed)
        for i, o in enumerate(_slices_message(body).operators)
    ]


#: Every figure table, for the schema (``province_hub.store.METADATA``).
METADATA = FiguresBase.metadata
