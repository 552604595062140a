"""Reports the city sends up — statistics, QA and overtime — built from the store by SQL
(:mod:`city_node.report_figures`), drafted, approved by the center leader, then queued in
the outbox.

Figures (docs/domain.md "KPIs"); a period is [start, end) in the federation's zone, and "as of"
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
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from sqlalchemy import (
    Connection,
    and_,
    func,
    insert,
    select,
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
from city_node.domain import Action, ReportStatus, Role
from city_node.report_figures import (
    REPORT_KINDS,
    Period,
    build_overtime,
    build_qa,
    build_statistics,
    complete_periods,
    period,
)
from city_node.store import (
    Report,
)
from sync import outbox
from sync.db import UnitOfWork
from sync.envelopes import body_kind
from sync.limits import blank
from sync.masking import mask_text
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.validation import broken_rule
from sync.vocabulary import PeriodKind, ReportKind

# --- drafts and approval -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportView:
    id: int
    kind: ReportKind
    period_kind: PeriodKind
    period_start: date
    revision: int
    status: ReportStatus
    drafted_at: datetime
    drafted_by: str
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None
    outbox_seq: int | None
    figures: dict[str, Any]
    #: Why the hub refused it (its REJECTION's reason); None while not refused.
    hub_rejection: str | None = None


_BODY: dict[str, Any] = {
    ReportKind.STATISTICS: pb.StatisticsReport,
    ReportKind.QA: pb.QaReport,
    ReportKind.OVERTIME: pb.OvertimeReport,
}


#: 64-bit integer fields, which protobuf's JSON mapping writes as strings.
_WIDE_INTS = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def _numbers(message: Any, figures: dict[str, Any]) -> dict[str, Any]:
    """``figures`` with its 64-bit counts (compensation in fen…) as JSON numbers, as every
    other count is: the API's readers add them up."""
    for field in message.DESCRIPTOR.fields:
        if field.name not in figures:
            continue
        repeated = field.is_repeated
        if field.type in _WIDE_INTS:
            value = figures[field.name]
            figures[field.name] = [int(v) for v in value] if repeated else int(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(
            figures[field.name], dict | list
        ):
            held = getattr(message, field.name)
            if repeated:
                for item, part in zip(held, figures[field.name], strict=True):
                    _numbers(item, part)
            elif isinstance(figures[field.name], dict):
                _numbers(held, figures[field.name])
    return figures


def _view(row: Any) -> ReportView:
    body = _BODY[row.kind].FromString(row.payload)
    figures = _numbers(
        body,
        MessageToDict(
            body, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        ),
    )
    return ReportView(
        id=row.id,
        kind=ReportKind(row.kind),
        period_kind=PeriodKind(row.period_kind),
        period_start=date.fromisoformat(row.period_start),
        revision=row.revision,
        status=ReportStatus(row.status),
        drafted_at=row.drafted_at,
        drafted_by=row.drafted_by,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        # The reports area's roles (leader, statistician, QA inspector) never call
        # customers: a phone-like number a leader typed in a note is shown masked.
        decision_note=mask_text(row.decision_note) if row.decision_note else row.decision_note,
        outbox_seq=row.outbox_seq,
        figures=figures,
        hub_rejection=row.hub_rejection,
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
        raise CityError("report.kind", value=kind, allowed=", ".join(REPORT_KINDS))
    if role is not None:
        domain.check_may(role, Action.DRAFT_REPORT)
        if (kind == ReportKind.QA) != (role is Role.QA_INSPECTOR) and role is not Role.LEADER:
            if kind == ReportKind.QA:
                raise domain.PermissionDenied(
                    "report.inspectors_draft", role=role, action=Action.DRAFT_REPORT, kind=kind
                )
            raise domain.PermissionDenied(
                "report.statisticians_draft", role=role, action=Action.DRAFT_REPORT, kind=kind
            )
    moment = now or ctx.now()
    p = period(ctx, period_kind, start)
    if p.start > ctx.today(moment):
        raise CityError("report.not_begun", kind=period_kind, start=p.start)
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
        raise Conflict("report.draft_race", kind=kind, start=p.start) from None
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
        last, floor = uow.conn.execute(
            select(func.max(Report.revision), func.max(Report.hub_next_revision)).where(same_period)
        ).one()
        # A REJECTION may have said the hub holds later revisions than this store does (it
        # was restored from an older copy): start there, not at a number it would refuse.
        revision = max((last or 0) + 1, floor or 0)
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


def renumber_drafts(conn: Connection, rejected_seq: int, next_revision: int) -> int:
    """A REJECTION said the hub holds the period of the report sent as ``rejected_seq`` up to
    ``next_revision - 1``: the period's draft waiting for the leader, drafted before the
    rejection came under a lower number, takes ``next_revision`` (sent as it was, it would
    be refused for the same reason). How many drafts were renumbered (0 or 1)."""
    rejected = conn.execute(
        select(Report.kind, Report.period_kind, Report.period_start).where(
            Report.outbox_seq == rejected_seq
        )
    ).first()
    if rejected is None:
        return 0
    drafts = conn.execute(
        select(Report.id, Report.kind, Report.payload).where(
            Report.kind == rejected.kind,
            Report.period_kind == rejected.period_kind,
            Report.period_start == rejected.period_start,
            Report.status == ReportStatus.DRAFT,
            Report.revision < next_revision,
        )
    ).all()
    for draft in drafts:
        body = _BODY[draft.kind].FromString(draft.payload)
        body.revision = next_revision
        conn.execute(
            update(Report)
            .where(Report.id == draft.id)
            .values(revision=next_revision, payload=body.SerializeToString(deterministic=True))
        )
    return len(drafts)


def get(ctx: CityContext, report_id: int) -> ReportView:
    existing_id(report_id, "report")
    with ctx.engine.connect() as conn:
        row = conn.execute(select(Report).where(Report.id == report_id)).first()
    if row is None:
        raise NotFound("report.not_found", report=report_id)
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
    if blank(note):
        raise CityError("report.reject_needs_note")
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
            raise NotFound("report.not_found", report=report_id)
        if row.status != ReportStatus.DRAFT:
            raise Conflict("report.decided", report=report_id, status=row.status)
        if (
            decision == ReportStatus.APPROVED
            and ctx.approver_not_drafter
            and row.drafted_by == actor.id
        ):
            raise domain.PermissionDenied(
                "report.own_draft",
                role=actor.role,
                action=Action.APPROVE_REPORT,
                actor=actor.id,
                report=report_id,
            )
        seq = None
        sent: dict[str, Any] = {}
        if decision == ReportStatus.APPROVED:
            body = _BODY[row.kind].FromString(row.payload)
            if row.kind == ReportKind.STATISTICS:
                body.approved_by = actor.id
                body.approved_at.FromDatetime(moment)
                # The report as sent: the city's view of its figures says who approved it,
                # as the province's does.
                sent["payload"] = body.SerializeToString(deterministic=True)
            problem = broken_rule(body_kind(body), body, tz_name=ctx.tz_name, now=moment)
            if problem:
                raise CityError("report.cannot_send", report=report_id, problem=problem)
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
                **sent,
            )
        )
        uow.commit()
    return get(ctx, report_id)


def figures_json(view: ReportView) -> str:
    return json.dumps(view.figures, ensure_ascii=False, indent=2, sort_keys=True)


# Drafting reads the figures' builders from here too (city_node.report_figures).
__all__ = [
    "REPORT_KINDS",
    "Period",
    "ReportView",
    "approve",
    "build_overtime",
    "build_qa",
    "build_statistics",
    "complete_periods",
    "draft",
    "figures_json",
    "get",
    "pending",
    "period",
    "recent",
    "reject",
]
