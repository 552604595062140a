"""A report's figures, built by SQL: periods cut in the federation's zone, the statistics
report from a handful of GROUP BY queries over the ticket history, the QA and overtime
reports. What each figure counts is in the README ("Reports: built by SQL"); drafting and
approval are :mod:`city_node.reports`'s."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    func,
    literal_column,
    select,
    text,
)

from city_node import domain
from city_node.context import (
    CityContext,
    CityError,
)
from city_node.domain import Action, Role, Satisfaction, TicketKind
from city_node.store import (
    FIGURE_ACTIONS,
    HistoryRow,
    QaSample,
    TicketRow,
    figure_steps_sql,
    late_stretch_ends_sql,
)
from sync.limits import report_date_refusal
from sync.masking import mask_text
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import PeriodError, iso_date, period_end, period_start_for
from sync.vocabulary import PeriodKind, ReportKind

_T: Table = TicketRow.__table__  # type: ignore[assignment]
_H: Table = HistoryRow.__table__  # type: ignore[assignment]
_Q: Table = QaSample.__table__  # type: ignore[assignment]

REPORT_KINDS = tuple(ReportKind)
PERIOD_KINDS = {k.value: k.pb for k in PeriodKind}
_OPERATOR_ROLES = [
    Role.OPERATOR_JUNIOR.value,
    Role.OPERATOR_SENIOR.value,
    Role.MANAGER_HOTLINE.value,
]
_RECEIVED_FIELD = {
    TicketKind.COMPLAINT.value: "complaints",
    TicketKind.SUGGESTION.value: "suggestions",
    TicketKind.ENQUIRY.value: "enquiries",
}
_SATISFACTION_FIELD = {
    Satisfaction.VERY_SATISFIED.value: "very_satisfied",
    Satisfaction.SATISFIED.value: "satisfied",
    Satisfaction.NEUTRAL.value: "neutral",
    Satisfaction.DISSATISFIED.value: "dissatisfied",
    Satisfaction.UNREACHABLE.value: "unreachable",
}


# --- periods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date  # exclusive
    start_at: datetime  # UTC instants of the local midnights
    end_at: datetime

    @property
    def pb(self) -> pb.Period:
        return pb.Period(kind=PERIOD_KINDS[self.kind], start=self.start.isoformat())


def period(ctx: CityContext, kind: str, start: date | str) -> Period:
    """Check and resolve a period; ``start`` must be its first day (a Monday for weeks)."""
    if kind not in PERIOD_KINDS:
        raise CityError("period.kind", value=kind, allowed=", ".join(PERIOD_KINDS))
    if isinstance(start, str):
        try:
            start = iso_date(start)
        except ValueError:
            raise CityError("period.start_not_date", field="start", value=start) from None
    problem = report_date_refusal(start)
    if problem:
        raise CityError(problem[0], field="start", **problem[1])
    code = PERIOD_KINDS[kind]
    try:
        if period_start_for(code, start) != start:
            raise CityError(
                "period.start_not_first",
                field="start",
                start=start,
                kind=kind,
                first=period_start_for(code, start),
            )
        end = period_end(code, start)
    except PeriodError as exc:
        raise CityError("period.invalid", problem=str(exc)) from None

    def instant(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=ctx.zone).astimezone(UTC)

    return Period(kind, start, end, instant(start), instant(end))


def containing(ctx: CityContext, kind: str, day: date) -> Period:
    """The period of ``kind`` that contains the local date ``day``."""
    return period(ctx, kind, period_start_for(PERIOD_KINDS[kind], day))


def complete_periods(
    ctx: CityContext, kind: str, count: int = 1, now: datetime | None = None
) -> list[Period]:
    """The last ``count`` periods of ``kind`` that have ended, oldest first (count 1:
    yesterday, last week, ...)."""
    p = containing(ctx, kind, ctx.today(now))
    out = []
    for _ in range(count):
        p = containing(ctx, kind, p.start - timedelta(days=1))
        out.append(p)
    return out[::-1]


# --- statistics ------------------------------------------------------------------------------


def _in(column: Any, p: Period) -> Any:
    return and_(column >= p.start_at, column < p.end_at)


def build_statistics(
    ctx: CityContext, period_kind: str, start: date | str, *, now: datetime | None = None
) -> pb.StatisticsReport:
    """The statistics report of a period, counted by SQL over the store (no writes)."""
    p = period(ctx, period_kind, start)
    as_of = min(p.end_at, now or ctx.now())
    with ctx.engine.connect() as conn:
        return _statistics(conn, p, as_of)


def _statistics(conn: Connection, p: Period, as_of: datetime) -> pb.StatisticsReport:
    r = pb.StatisticsReport(period=p.pb, revision=1)
    by_category: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_channel: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    received = conn.execute(
        select(_T.c.kind, _T.c.category, _T.c.channel, _T.c.is_repeat, func.count())
        .where(_in(_T.c.registered_at, p))
        .group_by(_T.c.kind, _T.c.category, _T.c.channel, _T.c.is_repeat)
    )
    for kind, category, channel, repeat, n in received:
        field = _RECEIVED_FIELD.get(kind)
        if field is None:  # help requests and praise: counted nowhere but per operator
            continue
        setattr(r, f"{field}_received", getattr(r, f"{field}_received") + n)
        for slice_ in (by_category[category], by_channel[channel]):
            slice_[field] += n
            if repeat and kind == TicketKind.COMPLAINT.value:
                slice_["repeat_complaints"] += n
        if repeat and kind == TicketKind.COMPLAINT.value:
            r.repeat_complaints += n

    # Every closure step in the period, a ticket closed, reopened and closed again counting
    # each time; in time by the deadline in force at that step. Kind, category and channel
    # are fixed at registration, so the ticket row gives them.
    in_time = _H.c.at <= _H.c.deadline
    closed = conn.execute(
        select(_T.c.kind, _T.c.category, _T.c.channel, in_time, func.count())
        .select_from(_H.join(_T, _T.c.id == _H.c.ticket_id))
        .where(*_steps(_CLOSURES, p))
        .group_by(_T.c.kind, _T.c.category, _T.c.channel, in_time)
    )
    for kind, category, channel, on_time, n in closed:
        r.closed += n
        if on_time:
            r.closed_in_time += n
        if kind == TicketKind.COMPLAINT.value:
            r.complaints_closed += n
        for slice_ in (by_category[category], by_channel[channel]):
            slice_["closed"] += n
            if on_time:
                slice_["closed_in_time"] += n

    r.handled = conn.execute(
        select(func.count(func.distinct(_H.c.ticket_id))).where(
            _in(_H.c.at, p), _H.c.role.in_(_OPERATOR_ROLES)
        )
    ).scalar_one()
    r.overtime_open = _overtime_open(conn, as_of)
    r.escalations_raised = conn.execute(
        select(func.count()).select_from(_H).where(*_steps([Action.ESCALATE_PROVINCE], p))
    ).scalar_one()

    # Surveys of every kind make the satisfaction counts; those of complaints alone are the
    # numerator of survey coverage (its denominator counts complaints only). Set even when 0:
    # the hub reads its absence as a report from a city before wire schema 1.4.
    r.satisfaction.complaints_surveyed = 0
    surveys = conn.execute(
        select(_H.c.outcome, _T.c.kind, func.count())
        .select_from(_H.join(_T, _T.c.id == _H.c.ticket_id))
        .where(*_steps([Action.SURVEY], p))
        .group_by(_H.c.outcome, _T.c.kind)
    )
    for outcome, kind, n in surveys:
        field = _SATISFACTION_FIELD.get(outcome or "")
        if field is None:
            continue
        setattr(r.satisfaction, field, getattr(r.satisfaction, field) + n)
        if outcome != Satisfaction.UNREACHABLE.value:
            r.satisfaction.surveyed += n
            if kind == TicketKind.COMPLAINT.value:
                r.satisfaction.complaints_surveyed += n

    workload: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for who, n in conn.execute(
        select(_T.c.registered_by, func.count())
        .where(_in(_T.c.registered_at, p))
        .group_by(_T.c.registered_by)
    ):
        workload[who][0] += n
    for who, n in conn.execute(
        select(_H.c.actor, func.count()).where(*_steps(_CLOSURES, p)).group_by(_H.c.actor)
    ):
        workload[who][1] += n

    r.by_category.extend(_slices(by_category))
    r.by_channel.extend(_slices(by_channel))
    r.operators.extend(
        pb.OperatorWorkload(operator_id=who, registered=reg, closed=done)
        for who, (reg, done) in sorted(workload.items())
    )
    return r


def _slices(groups: dict[str, dict[str, int]]) -> Iterable[pb.SliceCounts]:
    for key in sorted(groups):
        yield pb.SliceCounts(key=key, **groups[key])


#: The steps that close a ticket (answered on the spot, or closed after the branch).
_CLOSURES = (Action.ANSWER, Action.CLOSE)
_OPEN = [s.value for s in domain.OPEN_STATUSES]
# The partial indexes' WHERE terms, qualified: some queries join the tickets, which have a
# deadline too.
_FIGURE_STEPS = figure_steps_sql(f"{_H.name}.")
_LATE_STRETCH_ENDS = late_stretch_ends_sql(f"{_H.name}.")


def _steps(actions: Iterable[Action], p: Period | None = None) -> list[Any]:
    """Conditions for figure steps of ``actions`` (in ``p``): the partial index's own WHERE
    term first, verbatim, so that SQLite uses ``ix_history_figures``; the action values
    inline too (our own constants), so that the planners estimate them even in a generic
    plan."""
    values = [a.value for a in actions]
    assert set(values) <= set(FIGURE_ACTIONS), values
    where: list[Any] = [
        text(_FIGURE_STEPS),
        _H.c.action.in_([literal_column(f"'{v}'") for v in values]),
    ]
    if p is not None:
        where.append(_in(_H.c.at, p))
    return where


def _ended_late_after(as_of: datetime) -> list[Any]:
    """Steps at or after ``as_of`` ending an open stretch that began before it under a
    deadline already past then. Such a step came after its deadline, so the partial index
    of late stretch ends (its WHERE term verbatim, for SQLite) holds every one of them."""
    return [
        text(_LATE_STRETCH_ENDS),
        _H.c.at >= as_of,
        _H.c.state_since < as_of,
        _H.c.deadline < as_of,
    ]


def _overtime_open(conn: Connection, as_of: datetime) -> int:
    """Tickets open at ``as_of`` (the state after every step before it) and past the
    deadline in force then.

    A ticket's life is a run of stretches, each open or closed under one deadline, begun by
    its registration, a closure, a reopening or an extension approval. The stretch holding
    ``as_of`` either ended later — by a closure or an extension approval whose step
    remembers when its stretch began (``state_since``) and its deadline — or still goes
    on, and the ticket row says since when (``tickets.state_since``). Each count is an
    index-only range scan (over late stretch ends only, a few % of the steps after
    ``as_of``). A later step only tells how the ticket stood before it, so a
    past period's figure stays what it was however its tickets are reopened, re-closed or
    extended later.
    """
    ended_later = conn.execute(
        select(func.count()).select_from(_H).where(*_ended_late_after(as_of))
    ).scalar_one()
    # "Registered before as of" is implied (state_since is at least the registration), as
    # "closed_at IS NULL" is by an open status.
    goes_on = conn.execute(
        select(func.count()).where(
            _T.c.status.in_(_OPEN),
            _T.c.deadline < as_of,
            _T.c.state_since < as_of,
        )
    ).scalar_one()
    return int(ended_later) + int(goes_on)


# --- QA and overtime ---------------------------------------------------------------------------

_DEFECT_PB = {
    "late": pb.LATE,
    "wrong_answer": pb.WRONG_ANSWER,
    "incomplete_record": pb.INCOMPLETE_RECORD,
    "wrong_category": pb.WRONG_CATEGORY,
    "attitude": pb.ATTITUDE,
    "no_callback": pb.NO_CALLBACK,
    "other": pb.OTHER_DEFECT,
}


def build_qa(
    ctx: CityContext, period_kind: str, start: date | str, *, inspector: str
) -> pb.QaReport:
    """QA over the samples scored in the period: pass rate, mean score, defects, operators."""
    p = period(ctx, period_kind, start)
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(
                _Q.c.operator,
                _Q.c.score_centi,
                _Q.c.defects,
                _Q.c.finding,
                _Q.c.ticket_id,
                _T.c.customer_name,
                _T.c.customer_phone,
            )
            .select_from(_Q.outerjoin(_T, _T.c.id == _Q.c.ticket_id))
            .where(_in(_Q.c.scored_at, p))
            .order_by(_Q.c.id)
        ).all()
    r = pb.QaReport(period=p.pb, revision=1, inspector=inspector)
    defects: dict[str, int] = defaultdict(int)
    operators: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # sampled, passed, sum
    findings = []
    for operator, score, defect_text, finding, ticket_id, name, phone in rows:
        kinds = [d for d in defect_text.split(",") if d]
        stats = operators[operator]
        stats[0] += 1
        stats[1] += 0 if kinds else 1
        stats[2] += score or 0
        for d in kinds:
            defects[d] += 1
        if finding.strip():
            # Personal data stays in the city: an inspector quoting the customer's name or
            # a number leaves them masked in the report (a QA report is no escalation).
            said = mask_text(finding.strip(), name=name or "", phone=phone or "")
            findings.append(f"ticket {ticket_id} ({operator}): {said}")
    r.sampled = len(rows)
    r.passed = sum(s[1] for s in operators.values())
    r.mean_score_centi = (sum(s[2] for s in operators.values()) // len(rows)) if rows else 0
    r.defects.extend(
        pb.DefectCount(kind=_DEFECT_PB[k], count=n) for k, n in sorted(defects.items())
    )
    r.operators.extend(
        pb.OperatorQa(operator_id=op, sampled=s, passed=ok, mean_score_centi=total // s)
        for op, (s, ok, total) in sorted(operators.items())
    )
    r.findings = "\n".join(findings)[:20_000]
    return r


def build_overtime(
    ctx: CityContext, period_kind: str, start: date | str, *, now: datetime | None = None
) -> pb.OvertimeReport:
    """Complaints closed late in the period (a closure step after the deadline in force
    then), or open past their deadline at its end ("as of", judged as for overtime open),
    or paid compensation in the period, with the sum of the payments made in the period
    (each payment is counted once, in the period it was made). One case per ticket: open at
    the end if it is, else its last late closure in the period; a complaint that is a case
    only for a payment shows its overdue time as it stands (closed, or open at "as of")."""
    p = period(ctx, period_kind, start)
    as_of = min(p.end_at, now or ctx.now())
    complaint = _T.c.kind == TicketKind.COMPLAINT.value
    joined = _H.join(_T, _T.c.id == _H.c.ticket_id)
    # ticket -> (deadline, end of the overdue time)
    cases: dict[int, tuple[datetime, datetime]] = {}
    with ctx.engine.connect() as conn:
        late_closures = conn.execute(
            select(_H.c.ticket_id, _H.c.deadline, _H.c.at)
            .select_from(joined)
            .where(*_steps(_CLOSURES, p), _H.c.at > _H.c.deadline, complaint)
            .order_by(_H.c.at)
        ).all()
        for tid, deadline, at in late_closures:
            cases[tid] = (deadline, at)
        open_late: list[Any] = list(
            conn.execute(
                select(_H.c.ticket_id, _H.c.deadline)
                .select_from(joined)
                .where(*_ended_late_after(as_of), complaint)
            ).all()
        )
        open_late += conn.execute(
            select(_T.c.id, _T.c.deadline).where(
                complaint,
                _T.c.status.in_(_OPEN),
                _T.c.deadline < as_of,
                _T.c.state_since < as_of,
            )
        ).all()
        for tid, deadline in open_late:
            cases[tid] = (deadline, as_of)
        paid: dict[int, int] = defaultdict(int)
        for tid, params in conn.execute(
            select(_H.c.ticket_id, _H.c.params)
            .select_from(joined)
            .where(_H.c.action == Action.COMPENSATE.value, _in(_H.c.at, p), _H.c.at < as_of)
            .where(complaint)
        ):
            paid[tid] += int((params or {}).get("fen", 0))
        paid_only = sorted(set(paid) - set(cases))
        rows = {
            row.id: row
            for row in conn.execute(
                select(
                    _T.c.id,
                    _T.c.category,
                    _T.c.branch,
                    _T.c.registered_at,
                    _T.c.deadline,
                    _T.c.closed_at,
                ).where(_T.c.id.in_(sorted({*cases, *paid_only})))
            )
        }
    for tid in paid_only:
        row = rows[tid]
        cases[tid] = (row.deadline, row.closed_at or as_of)
    r = pb.OvertimeReport(period=p.pb, revision=1)
    for tid in sorted(cases):
        deadline, end = cases[tid]
        row = rows[tid]
        # A case open for months appears in every period's report; each payment is counted
        # once, in the period it was made.
        fen = paid.get(tid, 0)
        r.cases.append(
            pb.OvertimeCase(
                ticket_id=str(tid),
                category=row.category,
                branch=row.branch or "",
                limit_hours=int((deadline - row.registered_at).total_seconds() // 3600),
                overdue_hours=max(0, int((end - deadline).total_seconds() // 3600)),
                compensation_fen=fen,
            )
        )
        r.total_compensation_fen += fen
    return r
