"""What a ticket and a report look like to a person or a script: the city API's response
models, and the builders both the API (and its pages) and ``fedsync city … --json`` use, so
the console, the API and the shell show the same data.

Customers' phones and names are masked here, the one presenter every edge uses, for roles
that never call customers (:mod:`city_node.personal_data`).

Plain pydantic, no web framework: the CLI imports it without the console's stack.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Row

from city_node import domain, personal_data, reports, rules, tickets
from city_node.context import CityContext
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    HistoryEntry,
    NoteCode,
    ReportStatus,
    Role,
    Satisfaction,
    Status,
    TicketKind,
)
from city_node.history_text import entry_text
from sync.masking import mask_name, mask_phone
from sync.vocabulary import PeriodKind, ReportKind
from sync.web.i18n import DEFAULT_LANG, Lang

# --- tickets -----------------------------------------------------------------------------------


class TicketSummary(BaseModel):
    id: int
    kind: TicketKind
    category: str
    channel: Channel
    status: Status
    tier: CustomerTier
    customer_phone: str
    customer_name: str
    registered_at: datetime
    deadline: datetime
    operator: str | None
    branch: str | None
    closed_at: datetime | None
    is_repeat: bool


class HistoryOut(BaseModel):
    at: datetime
    actor: str
    role: Role
    action: Action
    note: str = Field(description="the person's own words (may be empty)")
    from_status: Status | None
    to_status: Status | None
    code: NoteCode = Field(description="what the step recorded, with ``params``")
    params: dict[str, str | int | bool]
    text: str = Field(description="code, parameters and note in the reader's language")


class ExtensionOut(BaseModel):
    days: int
    reason: str
    requested_by: str
    requested_at: datetime


class TicketDetail(TicketSummary):
    content: str
    satisfaction: Satisfaction | None
    surveyed_at: datetime | None
    surveyed_by: str | None
    reopen_count: int
    chase_count: int
    pending_extension: ExtensionOut | None
    overtime: bool
    registered_by: str
    closed_by: str | None
    compensation_fen: int
    compensation_note: str | None
    suggestion_class: str | None = Field(description="the materials clerk's class (suggestions)")
    escalated_at: datetime | None
    history: list[HistoryOut]
    allowed_actions: list[Action] = Field(
        description="what the caller's role may do now (the rules still check each request)"
    )


def ticket_detail(
    ctx: CityContext, ticket_id: int, role: Role | None, lang: Lang = DEFAULT_LANG
) -> TicketDetail:
    """A ticket as the API, the ticket page and the CLI show it, with the actions ``role``
    may take (none when no one signed in asks: ``fedsync city ticket show``), its history
    in ``lang``; phone and name masked unless ``role`` calls customers."""
    record = tickets.stored(ctx, ticket_id)
    ticket = record.ticket
    ext = ticket.pending_extension
    detail = TicketDetail(
        id=ticket.id,
        kind=ticket.kind,
        category=ticket.category,
        channel=ticket.channel,
        status=ticket.status,
        tier=ticket.tier,
        customer_phone=ticket.customer_phone,
        customer_name=ticket.customer_name,
        registered_at=ticket.registered_at,
        deadline=ticket.deadline,
        operator=ticket.operator,
        branch=ticket.branch,
        closed_at=ticket.closed_at,
        is_repeat=record.is_repeat,
        content=ticket.content,
        satisfaction=ticket.satisfaction,
        surveyed_at=ticket.surveyed_at,
        surveyed_by=ticket.surveyed_by,
        reopen_count=ticket.reopen_count,
        chase_count=ticket.chase_count,
        pending_extension=ExtensionOut(**vars(ext)) if ext else None,
        overtime=rules.is_overtime(ticket, ctx.now()),
        registered_by=record.registered_by,
        closed_by=record.closed_by,
        compensation_fen=record.compensation_fen,
        compensation_note=record.compensation_note,
        suggestion_class=record.suggestion_class,
        escalated_at=record.escalated_at,
        history=[_history_out(h, lang, ctx) for h in ticket.history],
        allowed_actions=sorted(domain.allowed_actions(ticket, role)) if role is not None else [],
    )
    return _masked(detail, role)


def _history_out(h: HistoryEntry, lang: Lang, ctx: CityContext) -> HistoryOut:
    return HistoryOut(**vars(h), text=entry_text(h, lang, ctx.zone))


_T = TypeVar("_T", bound=TicketSummary)


def _masked(view: _T, role: Role | None) -> _T:
    if personal_data.sees_customers(role):
        return view
    update: dict[str, Any] = {
        "customer_phone": mask_phone(view.customer_phone),
        "customer_name": mask_name(view.customer_name),
    }
    if isinstance(view, TicketDetail):
        # The customer's words and the staff's notes may repeat the name or a number.
        def hide(text: str) -> str:
            return personal_data.shown_text(
                role, text, name=view.customer_name, phone=view.customer_phone
            )

        def hide_label(text: str) -> str:
            return personal_data.shown_label(
                role, text, name=view.customer_name, phone=view.customer_phone
            )

        update["content"] = hide(view.content)
        if view.compensation_note:
            update["compensation_note"] = hide(view.compensation_note)
        if view.suggestion_class:
            update["suggestion_class"] = hide_label(view.suggestion_class)
        if view.pending_extension is not None:
            update["pending_extension"] = view.pending_extension.model_copy(
                update={"reason": hide(view.pending_extension.reason)}
            )
        # A step's parameters are words too: the province's resolution, a class label.
        update["history"] = [
            h.model_copy(
                update={
                    "note": hide(h.note),
                    "text": hide(h.text),
                    "params": {
                        k: (hide_label if k == "label" else hide)(v) if isinstance(v, str) else v
                        for k, v in h.params.items()
                    },
                }
            )
            for h in view.history
        ]
    return view.model_copy(update=update)


def ticket_summary(row: Row[Any], role: Role | None = None) -> TicketSummary:
    """A row of ``tickets.search`` as the ticket list shows it to ``role`` (None: the
    administrator at the shell); phone and name masked unless ``role`` calls customers."""
    return _masked(TicketSummary.model_validate(dict(row._mapping)), role)


# --- reports -----------------------------------------------------------------------------------


class ReportOut(BaseModel):
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
    outbox_seq: int | None = Field(description="the seq it was queued under for the province")
    figures: dict[str, Any]
    hub_rejection: str | None = Field(
        None, description="why the hub refused it (its REJECTION's reason); null: not refused"
    )


def report_out(view: reports.ReportView) -> ReportOut:
    return ReportOut.model_validate(view, from_attributes=True)
