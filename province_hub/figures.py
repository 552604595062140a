"""Report figures in typed tables, landed at ingest (architecture.md, "The province side").

When the hub accepts a statistics, QA or overtime report, :func:`land_figures` writes its
figures in the same transaction as the record: one header row per report revision, keyed
like the record itself by ``(city_code, seq)``, with every count as a column, and the
slices (category, channel, operator, defect, overtime case with its branch) as child rows
keyed by ``(city_code, seq, n)`` — ``n`` being the position in the report, because only the
category / channel keys are unique by the rules.

Invariants:

- every accepted revision is kept; nothing here is ever updated or deleted, so a
  dashboard reads "each city's latest revision of a period" by query
  (:mod:`province_hub.consolidation`), indexed by ``(period_kind, period_start, city_code,
  revision)``;
- quarantined records land nothing: a figure that broke a business rule must not count;
- rows go through :func:`sync.db.bulk_insert` (COPY / executemany), the hub's ingest hot
  path, because a statistics report with its slices is dozens of rows and Core ``insert()``
  spends more time binding them than the database spends storing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
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
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: Position of the slice in the report.
    n: Mapped[int] = mapped_column(Integer, primary_key=True)


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
    approved_by: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_fig_statistics_period", "period_kind", "period_start", "city_code", "revision"),
    )


class StatisticsSlice(_Child, FiguresBase):
    """A category or channel slice of a statistics report revision."""

    __tablename__ = "fig_statistics_slices"
    __table_args__ = _CLUSTERED

    #: category / channel
    dimension: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(Text)
    complaints: Mapped[int] = mapped_column(BigInteger)
    suggestions: Mapped[int] = mapped_column(BigInteger)
    enquiries: Mapped[int] = mapped_column(BigInteger)
    closed: Mapped[int] = mapped_column(BigInteger)
    closed_in_time: Mapped[int] = mapped_column(BigInteger)
    repeat_complaints: Mapped[int] = mapped_column(BigInteger)


class StatisticsOperator(_Child, FiguresBase):
    """One operator's workload in a statistics report revision."""

    __tablename__ = "fig_statistics_operators"
    __table_args__ = _CLUSTERED

    operator_id: Mapped[str] = mapped_column(Text)
    registered: Mapped[int] = mapped_column(BigInteger)
    closed: Mapped[int] = mapped_column(BigInteger)


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
_STAT_COLUMNS = (*_HEADER, *STAT_COUNTS, *SATISFACTION_COUNTS, "approved_by")
_SLICE_COLUMNS = (*_CHILD, "dimension", "key", *SLICE_COUNTS)
_OPERATOR_COLUMNS = (*_CHILD, "operator_id", "registered", "closed")
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
    (StatisticsSlice, _SLICE_COLUMNS),
    (StatisticsOperator, _OPERATOR_COLUMNS),
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


class FigureRows:
    """The rows of a batch of reports, per table, in driver form."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {
            model.__tablename__: (columns, []) for model, columns in _TABLE_COLUMNS
        }

    def add(self, conn: Connection, city_code: str, seq: int, body: Any, received_at: Any) -> None:
        """Rows for one accepted report body (``received_at`` in driver form)."""
        period = body.period
        start: Any = date.fromisoformat(period.start)
        if conn.dialect.name == "sqlite":
            start = period.start  # SQLAlchemy's SQLite Date is the ISO text
        header = (city_code, seq, PERIOD_NAMES[period.kind], start, body.revision, received_at)
        t = self.tables
        if isinstance(body, pb.StatisticsReport):
            s = body.satisfaction
            t["fig_statistics"][1].append(
                (
                    *header,
                    body.complaints_received,
                    body.suggestions_received,
                    body.enquiries_received,
                    body.handled,
                    body.closed,
                    body.closed_in_time,
                    body.overtime_open,
                    body.repeat_complaints,
                    body.escalations_raised,
                    body.complaints_closed,
                    s.very_satisfied,
                    s.satisfied,
                    s.neutral,
                    s.dissatisfied,
                    s.surveyed,
                    s.unreachable,
                    body.approved_by,
                )
            )
            slices = t["fig_statistics_slices"][1]
            n = 0
            for dimension, items in (("category", body.by_category), ("channel", body.by_channel)):
                for x in items:
                    slices.append(
                        (
                            city_code,
                            seq,
                            n,
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
                    n += 1
            t["fig_statistics_operators"][1].extend(
                (city_code, seq, i, o.operator_id, o.registered, o.closed)
                for i, o in enumerate(body.operators)
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

    def insert(self, conn: Connection) -> None:
        for table, (columns, rows) in self.tables.items():
            bulk_insert(conn, table, columns, rows)


def land_figures(
    conn: Connection,
    *,
    city_code: str,
    reports: Sequence[tuple[int, Any]],
    received_at: Any,
) -> None:
    """Land the figures of accepted reports ``(seq, body)`` in the caller's transaction.

    ``received_at`` is in driver form (``sync.db.datetime_param``), as for the records.
    """
    if not reports:
        return
    rows = FigureRows()
    for seq, body in reports:
        rows.add(conn, city_code, seq, body, received_at)
    rows.insert(conn)


def backfill(conn: Connection, *, chunk: int = 2000) -> int:
    """Land the figures of every accepted report record already stored; how many.

    For the migration that introduces the tables (stores that held records before it). The
    records are read page by page in (city, seq) order; ``received_at`` is passed back in the
    driver's own form, as it was read.
    """
    kinds = ", ".join(f"'{k}'" for k in sorted(FIGURE_KINDS))
    sql = text(
        "SELECT city_code, seq, kind, received_at, body FROM records "
        f"WHERE status = 'accepted' AND kind IN ({kinds}) "
        "AND (city_code > :city OR (city_code = :city AND seq > :seq)) "
        "ORDER BY city_code, seq LIMIT :limit"
    )
    bodies: dict[str, Any] = {
        "statistics_report": pb.StatisticsReport,
        "qa_report": pb.QaReport,
        "overtime_report": pb.OvertimeReport,
    }
    done, city, seq = 0, "", 0
    while True:
        page = conn.execute(sql, {"city": city, "seq": seq, "limit": chunk}).all()
        if not page:
            return done
        rows = FigureRows()
        for code, number, kind, received_at, body in page:
            rows.add(conn, code, number, bodies[kind].FromString(bytes(body)), received_at)
        rows.insert(conn)
        done += len(page)
        city, seq = page[-1][0], page[-1][1]


#: Every figure table, for the schema (``province_hub.store.METADATA``).
METADATA = FiguresBase.metadata
