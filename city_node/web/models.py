"""What the console's JSON API and its pages share: request models, the path and value
types they are read with, and the presenters both edges call (register and act on a ticket,
show and find tickets masked for the reader, search standard answers, draw QA samples,
record a receipt, the link's state).

Request models are strict where a loose value would be read as something else: an integer
is a JSON integer (``true`` is not 1 fen), a date is ``YYYY-MM-DD`` text (``0`` is not
1970-01-01), a bool is a JSON bool; a misspelt field is refused. Ids in paths are
1..2^63-1.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Self, Unpack

from fastapi import Path
from pydantic import BaseModel, Field, WithJsonSchema, model_validator

from city_node import commands, personal_data, qa, services, suggestions, tickets
from city_node.context import Actor, CityContext, CityError
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    FollowUp,
    Satisfaction,
    TicketKind,
)
from city_node.link_view import SILENT_AFTER, LinkView, link_view
from city_node.staff import StaffMember
from city_node.tickets import Filters
from city_node.views import (
    TicketDetail,
    TicketSummary,
    ticket_detail,
    ticket_summary,
)
from city_node.web.i18n import DEFAULT_LANG, Lang
from sync.limits import INT64_MAX, MAX_NOTE_CHARS, MAX_STEP_NOTE_CHARS
from sync.outbox import Outbox
from sync.vocabulary import PeriodKind, ReceiptAction, ReportKind
from sync.web.params import DayText, Flag, RequestModel, Whole

#: A stored row's id in a path: what no store can hold is refused before any query.
RowId = Annotated[int, Path(ge=1, le=INT64_MAX)]


#: A date given as ``YYYY-MM-DD`` text (a number would be read as seconds since 1970, a
#: date-time at midnight as its day).
DateText = DayText


Note = Annotated[str, Field(max_length=MAX_NOTE_CHARS)]
#: A note on a ticket step or a QA finding: the services' shorter limit, declared as it is.
StepNote = Annotated[str, Field(max_length=MAX_STEP_NOTE_CHARS)]


def actor_of(user: StaffMember) -> Actor:
    return Actor(user.id, user.role)


class TicketIn(RequestModel):
    """A ticket to register, with the operator's follow-up in the same request."""

    kind: TicketKind
    category: str = Field(description="a code of the category tree (/api/v1/categories)")
    channel: Channel
    customer_phone: str
    customer_name: str = ""
    tier: CustomerTier = CustomerTier.ORDINARY
    content: str
    then: FollowUp | None = Field(None, description="answer, dispatch, hand to a senior…")
    branch: str = Field("", description="the branch to dispatch to (then=dispatch only)")
    note: StepNote = ""

    @model_validator(mode="after")
    def _branch_needs_dispatch(self) -> Self:
        if self.branch.strip() and self.then != "dispatch":
            raise CityError("ticket.branch_then_dispatch")
        return self


class ActionIn(RequestModel):
    """One step on a ticket; which fields matter depends on the action."""

    # Any action word is read (a word that is no ticket step is refused naming the steps);
    # the schema offers the steps alone.
    action: Annotated[
        Action,
        WithJsonSchema(
            {"type": "string", "enum": [a.value for a in commands.StepAction], "title": "Action"}
        ),
    ]
    note: StepNote = ""
    branch: str | None = Field(None, description="dispatch: the branch (dispatch only)")
    outcome: Satisfaction | None = Field(None, description="survey: the customer's answer")
    reopen: Flag = Field(False, description="survey: a dissatisfied customer reopens it")
    days: Whole | None = Field(
        None, ge=1, le=commands.MAX_EXTENSION_DAYS, description="request_extension: working days"
    )
    reason: StepNote | None = Field(None, description="request_extension: why")

    @model_validator(mode="after")
    def _branch_needs_dispatch(self) -> Self:
        if self.branch and self.branch.strip() and self.action is not Action.DISPATCH:
            raise CityError("ticket.branch_action_dispatch")
        return self


class CompensationIn(RequestModel):
    fen: Whole = Field(
        ge=1, le=tickets.MAX_COMPENSATION_FEN, description="compensation paid, in fen (1/100 yuan)"
    )
    note: StepNote


def register_ticket(ctx: CityContext, user: StaffMember, body: TicketIn) -> int:
    """Register (and follow up) a ticket; shared by the API and the register form."""
    stored = tickets.register(
        ctx,
        actor_of(user),
        tickets.NewTicket(
            kind=body.kind.value,
            category=body.category,
            channel=body.channel.value,
            customer_phone=body.customer_phone,
            customer_name=body.customer_name,
            tier=body.tier.value,
            content=body.content,
        ),
        then=Action(body.then) if body.then else None,
        branch=body.branch,
        note=body.note,
    )
    return stored.id


def act_on_ticket(ctx: CityContext, user: StaffMember, ticket_id: int, body: ActionIn) -> None:
    command = commands.command_of(body)
    tickets.perform(ctx, actor_of(user), ticket_id, command)


def show_ticket(
    ctx: CityContext, user: StaffMember, ticket_id: int, lang: Lang = DEFAULT_LANG
) -> TicketDetail:
    """A ticket as ``user`` may see it (masked for roles that never call customers), its
    history in ``lang``; an unmasked read goes to the access log."""
    detail = ticket_detail(ctx, ticket_id, user.role, lang)
    personal_data.ticket_read(ctx, actor_of(user), detail.id)
    return detail


def find_tickets(
    ctx: CityContext, user: StaffMember, *, limit: int, offset: int, **filters: Unpack[Filters]
) -> list[TicketSummary]:
    """Ticket rows for a list, masked for ``user``'s role; a phone search is only for roles
    that call customers, and logged (:func:`city_node.tickets.find_tickets`)."""
    rows = tickets.find_tickets(ctx, actor_of(user), limit=limit, offset=offset, **filters)
    return [ticket_summary(r, user.role) for r in rows]


class AnswerOut(BaseModel):
    notice_seq: int
    topic: str
    category: str
    answer: str
    published_at: datetime


def search_answers(ctx: CityContext, q: str, category: str | None) -> list[AnswerOut]:
    found = services.search_answers(ctx.engine, q, category=category or None)
    return [AnswerOut.model_validate(a, from_attributes=True) for a in found]


class DraftIn(RequestModel):
    kind: ReportKind
    period_kind: PeriodKind
    start: DateText = Field(
        description="first day of the period (local date, YYYY-MM-DD, years 2000..2100)"
    )


class DecisionIn(RequestModel):
    note: Note = Field(default="", description="the leader's note (required to reject)")


class DrawIn(RequestModel):
    count: Whole = Field(default=1, ge=1, le=1000, description="how many closed tickets to sample")


class ScoreIn(RequestModel):
    items: dict[str, Whole] = Field(description="points 0-100 for every scorecard item")
    defects: list[str] = Field([], max_length=len(qa.DEFECT_KINDS))
    finding: StepNote = ""


def draw_samples(ctx: CityContext, user: StaffMember, count: int) -> list[int]:
    return qa.draw(ctx, actor=actor_of(user), count=count, how="random")


class ClassifyIn(RequestModel):
    label: str = Field(
        max_length=suggestions.MAX_LABEL,
        description="the suggestion's class in the clerk's own words (1-64 characters)",
    )


class SuggestionOut(BaseModel):
    ticket_id: int
    category: str
    content: str
    registered_at: datetime
    label: str | None = Field(description="its class; None until classified")
    classified_by: str | None


class BatchOut(BaseModel):
    outbox_seq: int | None = Field(description="the batch's seq in the outbox; None: nothing sent")
    suggestions: int = Field(description="how many suggestions the batch carries (0: none waited)")


def send_suggestions(ctx: CityContext, user: StaffMember) -> BatchOut:
    """Send every classified, unsent suggestion as one batch; shared by the API and the page."""
    sent = suggestions.send_batch(ctx, actor_of(user))
    return (
        BatchOut(outbox_seq=sent[0], suggestions=sent[1])
        if sent
        else BatchOut(outbox_seq=None, suggestions=0)
    )


class ReceiptIn(RequestModel):
    action: ReceiptAction
    note: Note = Field("", description="done: what was done; objection: the reason (required)")


def record_receipt(
    ctx: CityContext, user: StaffMember, notice_seq: int, action: str, note: str
) -> int:
    # The service asks the domain whether the role may (the CLI gets the same answer).
    return services.record_receipt(
        ctx.engine, notice_seq=notice_seq, action=action, actor=actor_of(user), note=note
    )


class LinkOut(BaseModel):
    city_code: str
    state: str = Field(
        description="what is true now: connected (contact within three heartbeats), silent "
        "(since silent_since), never, or what stops the link until a person acts: conflict, "
        "revoked, hub-revoked, incompatible, stopped (the link client's own error)"
    )
    silent_since: datetime | None = Field(description="silent: the last contact with the hub")
    last_event: str = Field(
        description="the link's last event as stored: connected / backing-off / conflict / …"
    )
    error: str = Field(
        description="the error that is the matter now (empty when connected, or when a "
        "contact came after it); last_error keeps the last one as history"
    )
    backlog: int = Field(description="envelopes queued and not yet acknowledged by the hub")
    last_seq: int
    delivered_seq: int
    hub_acked_seq: int
    notice_cursor: int
    epoch: str
    last_push_at: datetime | None
    last_contact_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    last_rejection: str
    conflict_seq: int = Field(description="first seq the hub holds differently; 0 = none")
    oldest_unsent_at: datetime | None


def link_status(outbox: Outbox, silent: timedelta = SILENT_AFTER) -> LinkOut:
    return link_out(link_view(outbox.snapshot(), silent_after=silent))


def link_out(view: LinkView) -> LinkOut:
    """The API's link from the derived view (one read of the link row serves both)."""
    snap = view.snapshot
    return LinkOut(
        city_code=snap.city_code,
        state=view.state,
        silent_since=view.since,
        last_event=snap.state,
        error=view.error,
        backlog=snap.backlog,
        last_seq=snap.last_seq,
        delivered_seq=snap.delivered_seq,
        hub_acked_seq=snap.hub_acked_seq,
        notice_cursor=snap.notice_cursor,
        epoch=snap.epoch,
        last_push_at=snap.last_push_at,
        last_contact_at=snap.last_contact_at,
        last_error=snap.last_error,
        last_error_at=snap.last_error_at,
        last_rejection=snap.last_rejection,
        # 0 until the hub refused a push for a sequence conflict.
        conflict_seq=snap.conflict_seq,
        oldest_unsent_at=snap.oldest_unsent_at,
    )
