"""Reports the city sends up — statistics, QA and overtime — built from the store by SQL,
drafted, approved by the center leader, then queued in the outbox.

Figures (mission.md "KPIs"); a period is [start, end) in the federation's zone, and "as of"
is the period's end, or now for a period still running. Events are counted from the
append-only ticket history, each by the values its step recorded, never by the ticket's
current columns (which the next step overwrites):

- *received* (complaints, suggestions, enquiries; by category and channel; repeat
  complaints; per-operator ``registered``): tickets **registered** in the period;
- *closed*, *closed in time* (at or before the deadline in force at that step), *complaints
  closed*, per-operator ``closed`` (who closed): **closure steps** (answer, close) in the
  period — a ticket closed, reopened and closed again counts each closure in its period;
- *handled*: distinct tickets an operator (junior, senior, manager hotline) acted on;
- *overtime open*: tickets that, as of "as of" (every step before it taken, none after),
  were open and past the deadline in force then — whatever happened to them later;
- *escalations raised*: **escalation steps** to the province in the period;
- *satisfaction*: **survey steps** in the period, each with the outcome it recorded (a
  dissatisfied survey that reopened the ticket stays counted when a later one says
  satisfied); "unreachable" is counted apart and kept out of ``surveyed``.

So a past period's figures change only if its own steps change (they never do: the history
is append-only), and the figures that count events add up: a week's are the sum of its
days'. Every figure comes from a handful of ``GROUP BY`` queries that the indexes of
:mod:`city_node.store` answer by range scans; Python only folds the (small) grouped rows.

Lifecycle of a report row: ``draft`` → ``approved`` (queued in the outbox in the same
transaction) or ``rejected``; a newer draft for the same period ``supersedes`` an
unapproved one. Each draft takes the next revision number of its period, so a correction
after sending is a new, higher revision (the province counts the latest).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from sqlalchemy import (
    Connection,
    Table,
    and_,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from city_node import domain
from city_node.context import (
    Actor,
    CityContext,
    CityError,
    Conflict,
    NotFound,
    check_city_note,
    existing_id,
)
from city_node.domain import Action, ReportStatus, Role, Satisfaction, TicketKind
from city_node.store import (
    FIGURE_ACTIONS,
    HistoryRow,
    QaSample,
    Report,
    TicketRow,
    figure_steps_sql,
    late_stretch_ends_sql,
)
from sync import outbox
from sync.db import UnitOfWork
from sync.envelopes import body_kind
from sync.limits import report_date_problem
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import PeriodError, period_end, period_start_for
from sync.validation import broken_rule
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
        raise CityError(f"period {kind!r} is not one of: {', '.join(PERIOD_KINDS)}")
    if isinstance(start, str):
        try:
            start = date.fromisoformat(start)
        except ValueError:
            raise CityError(f"start {start!r} is not a YYYY-MM-DD date") from None
    problem = report_date_problem(start, "start")
    if problem:
        raise CityError(problem)
    code = PERIOD_KINDS[kind]
    try:
        if period_start_for(code, start) != start:
            raise CityError(
                f"start {start} is not the first day of a {kind} "
                f"(that {kind} starts {period_start_for(code, start)})"
            )
        end = period_end(code, start)
    except PeriodError as exc:
        raise CityError(str(exc)) from None

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

    surveys = conn.execute(
        select(_H.c.outcome, func.count()).where(*_steps([Action.SURVEY], p)).group_by(_H.c.outcome)
    )
    for outcome, n in surveys:
        field = _SATISFACTION_FIELD.get(outcome or "")
        if field is None:
            continue
        setattr(r.satisfaction, field, getattr(r.satisfaction, field) + n)
        if outcome != Satisfaction.UNREACHABLE.value:
            r.satisfaction.surveyed += n

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
            select(_Q.c.operator, _Q.c.score_centi, _Q.c.defects, _Q.c.finding, _Q.c.ticket_id)
            .where(_in(_Q.c.scored_at, p))
            .order_by(_Q.c.id)
        ).all()
    r = pb.QaReport(period=p.pb, revision=1, inspector=inspector)
    defects: dict[str, int] = defaultdict(int)
    operators: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # sampled, passed, sum
    findings = []
    for operator, score, defect_text, finding, ticket_id in rows:
        kinds = [d for d in defect_text.split(",") if d]
        stats = operators[operator]
        stats[0] += 1
        stats[1] += 0 if kinds else 1
        stats[2] += score or 0
        for d in kinds:
            defects[d] += 1
        if finding.strip():
            findings.append(f"ticket {ticket_id} ({operator}): {finding.strip()}")
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
    with the compensation paid on them in the period. One case per ticket: open at the end
    if it is, else its last late closure in the period."""
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
        rows = {
            row.id: row
            for row in conn.execute(
                select(
                    _T.c.id,
                    _T.c.category,
                    _T.c.branch,
                    _T.c.registered_at,
                    _T.c.compensation_fen,
                    _T.c.compensated_at,
                ).where(_T.c.id.in_(sorted(cases)))
            )
        }
    r = pb.OvertimeReport(period=p.pb, revision=1)
    for tid in sorted(cases):
        deadline, end = cases[tid]
        row = rows[tid]
        # A case open for months appears in every period's report; its compensation is
        # counted once, in the period it was paid.
        paid_at = row.compensated_at
        fen = row.compensation_fen if paid_at is not None and _within(paid_at, p) else 0
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


def _within(moment: datetime, p: Period) -> bool:
    return p.start_at <= moment < p.end_at


# --- drafts and approval -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportView:
    id: int
    kind: str
    period_kind: str
    period_start: date
    revision: int
    status: str
    drafted_at: datetime
    drafted_by: str
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None
    outbox_seq: int | None
    figures: dict[str, Any]


_BODY: dict[str, Any] = {
    ReportKind.STATISTICS: pb.StatisticsReport,
    ReportKind.QA: pb.QaReport,
    ReportKind.OVERTIME: pb.OvertimeReport,
}


def _view(row: Any) -> ReportView:
    body = _BODY[row.kind].FromString(row.payload)
    figures = MessageToDict(
        body, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return ReportView(
        id=row.id,
        kind=row.kind,
        period_kind=row.period_kind,
        period_start=date.fromisoformat(row.period_start),
        revision=row.revision,
        status=row.status,
        drafted_at=row.drafted_at,
        drafted_by=row.drafted_by,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        decision_note=row.decision_note,
        outbox_seq=row.outbox_seq,
        figures=figures,
    )


def draft(
    ctx: CityContext,
    kind: str,
    period_kind: str,
    start: date | str,
    *,
    by: str,
    role: Role | None = None,
    now: datetime | None = None,
) -> ReportView:
    """Build a report and store it as a draft for the leader (approved at once where the
    node is configured to auto-approve). An earlier unapproved draft of the same period is
    superseded.

    ``role`` is the drafting person's (None: the node's own schedule). Statistics and
    overtime reports are the statistician's (or the leader's), QA reports the inspector's.
    """
    if kind not in REPORT_KINDS:
        raise CityError(f"report kind {kind!r} is not one of: {', '.join(REPORT_KINDS)}")
    if role is not None:
        domain.check_may(role, Action.DRAFT_REPORT)
        if (kind == ReportKind.QA) != (role is Role.QA_INSPECTOR) and role is not Role.LEADER:
            owner = "a QA inspector" if kind == ReportKind.QA else "a statistician"
            raise domain.PermissionDenied(
                role, Action.DRAFT_REPORT, f"{kind} reports are {owner}'s"
            )
    moment = now or ctx.now()
    p = period(ctx, period_kind, start)
    if p.start > ctx.today(moment):
        raise CityError(f"the {period_kind} starting {p.start} has not begun yet")
    body: Message
    if kind == ReportKind.STATISTICS:
        body = build_statistics(ctx, period_kind, p.start, now=moment)
    elif kind == ReportKind.QA:
        body = build_qa(ctx, period_kind, p.start, inspector=by)
    else:
        body = build_overtime(ctx, period_kind, p.start, now=moment)
    same_period = and_(
        Report.kind == kind,
        Report.period_kind == period_kind,
        Report.period_start == p.start.isoformat(),
    )
    try:
        report_id = _store_draft(ctx, kind, period_kind, p, body, by, moment, same_period)
    except IntegrityError:
        # Someone drafted the same period at the same instant and took this revision.
        raise Conflict(
            f"another {kind} report for {p.start} was drafted meanwhile; retry"
        ) from None
    if ctx.auto_approve:
        return _decide(
            ctx,
            Actor("auto-approval", Role.LEADER),
            report_id,
            ReportStatus.APPROVED,
            "auto-approved (node setting)",
            moment,
        )
    return get(ctx, report_id)


def _store_draft(
    ctx: CityContext,
    kind: str,
    period_kind: str,
    p: Period,
    body: Any,
    by: str,
    moment: datetime,
    same_period: Any,
) -> int:
    with UnitOfWork(ctx.engine) as uow:
        last = uow.conn.execute(select(func.max(Report.revision)).where(same_period)).scalar()
        revision = (last or 0) + 1
        body.revision = revision
        uow.conn.execute(
            update(Report)
            .where(same_period, Report.status == ReportStatus.DRAFT)
            .values(
                status=ReportStatus.SUPERSEDED,
                decided_at=moment,
                decision_note=f"revision {revision} drafted",
            )
        )
        report_id = uow.conn.execute(
            insert(Report)
            .values(
                kind=kind,
                period_kind=period_kind,
                period_start=p.start.isoformat(),
                revision=revision,
                status=ReportStatus.DRAFT,
                payload=body.SerializeToString(deterministic=True),
                drafted_at=moment,
                drafted_by=by,
            )
            .returning(Report.id)
        ).scalar_one()
        uow.commit()
    return int(report_id)


def get(ctx: CityContext, report_id: int) -> ReportView:
    existing_id(report_id, "report")
    with ctx.engine.connect() as conn:
        row = conn.execute(select(Report).where(Report.id == report_id)).first()
    if row is None:
        raise NotFound(f"report {report_id} does not exist")
    return _view(row)


def pending(ctx: CityContext) -> list[ReportView]:
    """Drafts waiting for the leader, oldest first."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(Report).where(Report.status == ReportStatus.DRAFT).order_by(Report.id)
        ).all()
    return [_view(r) for r in rows]


def recent(ctx: CityContext, limit: int = 50) -> list[ReportView]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(Report).order_by(Report.id.desc()).limit(max(1, min(limit, 500)))
        ).all()
    return [_view(r) for r in rows]


def approve(
    ctx: CityContext,
    actor: Actor,
    report_id: int,
    note: str = "",
    *,
    now: datetime | None = None,
) -> ReportView:
    """The leader approves a draft: it is queued for the province in the same transaction.
    ``now`` is the approval's time (default: the clock), as a backfill gives its own."""
    return _decide(ctx, actor, report_id, ReportStatus.APPROVED, note, now)


def reject(
    ctx: CityContext,
    actor: Actor,
    report_id: int,
    note: str,
    *,
    now: datetime | None = None,
) -> ReportView:
    """The leader sends a draft back (say why); draft it again after correcting the data."""
    if not note.strip():
        raise CityError("a rejection needs the reason (note)")
    return _decide(ctx, actor, report_id, ReportStatus.REJECTED, note, now)


def _decide(
    ctx: CityContext,
    actor: Actor,
    report_id: int,
    decision: ReportStatus,
    note: str,
    now: datetime | None,
) -> ReportView:
    domain.check_may(actor.role, Action.APPROVE_REPORT)
    existing_id(report_id, "report")
    # The hub keeps decision notes only as long as its own limit; refuse, don't cut.
    check_city_note(note, "note")
    moment = now or ctx.now()
    with UnitOfWork(ctx.engine) as uow:
        row = uow.conn.execute(
            select(Report).where(Report.id == report_id).with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"report {report_id} does not exist")
        if row.status != ReportStatus.DRAFT:
            raise CityError(f"report {report_id} is {row.status}, not a draft awaiting approval")
        seq = None
        if decision == ReportStatus.APPROVED:
            body = _BODY[row.kind].FromString(row.payload)
            if row.kind == ReportKind.STATISTICS:
                body.approved_by = actor.id
                body.approved_at.FromDatetime(moment)
            problem = broken_rule(body_kind(body), body, tz_name=ctx.tz_name, now=moment)
            if problem:
                raise CityError(f"report {report_id} cannot be sent: {problem}")
            seq = outbox.append(uow.conn, body, now=moment)
        uow.conn.execute(
            update(Report)
            .where(Report.id == report_id)
            .values(
                status=decision,
                decided_at=moment,
                decided_by=actor.id,
                decision_note=note,
                outbox_seq=seq,
            )
        )
        uow.commit()
    return get(ctx, report_id)


def figures_json(view: ReportView) -> str:
    return json.dumps(view.figures, ensure_ascii=False, indent=2, sort_keys=True)
