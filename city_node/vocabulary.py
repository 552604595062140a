"""The city's words, one ``StrEnum`` each: ticket kinds, channels, tiers, statuses, roles,
actions, survey outcomes, report statuses, follow-ups and history codes.

A value is the word stored in SQL, accepted by argparse ``choices`` and pydantic fields, and
the key of its label in the console's zh/en table (:mod:`city_node.labels`). Words both
tiers use (report and period kinds, receipt actions, link states) are in
:mod:`sync.vocabulary`. :mod:`city_node.domain` re-exports these, so ``from
city_node.domain import Status`` keeps working.
"""

from __future__ import annotations

from enum import StrEnum


class TicketKind(StrEnum):
    """What the customer came for."""

    COMPLAINT = "complaint"  # 投诉
    SUGGESTION = "suggestion"  # 建议
    ENQUIRY = "enquiry"  # 咨询
    HELP_REQUEST = "help_request"  # 求助
    PRAISE = "praise"  # 表扬


class Channel(StrEnum):
    """How the ticket reached the center."""

    PHONE = "phone"
    WEB = "web"
    WALK_IN = "walk_in"
    LETTER = "letter"
    OTHER = "other"


class CustomerTier(StrEnum):
    """Customer tier; every tier but ordinary is served by senior operators."""

    ORDINARY = "ordinary"
    VIP = "vip"
    IMPORTANT = "important"  # 重要客户
    LEASED_LINE = "leased_line"  # 专线客户


class Status(StrEnum):
    """Where a ticket is in its lifecycle."""

    REGISTERED = "registered"
    ANSWERED = "answered"  # answered on the spot: closed without a branch
    DISPATCHED = "dispatched"
    WITH_SENIOR = "with_senior"
    IN_PROGRESS = "in_progress"
    RETURNED = "returned"  # 回单: the branch reported back, awaiting the operator's close
    CLOSED = "closed"
    SURVEYED = "surveyed"
    ESCALATED_MANAGER = "escalated_manager"
    ESCALATED_PROVINCE = "escalated_province"


class Role(StrEnum):
    """City-side roles (docs/domain.md, "Who uses it")."""

    OPERATOR_JUNIOR = "operator_junior"
    OPERATOR_SENIOR = "operator_senior"
    MANAGER_HOTLINE = "manager_hotline"
    SURVEYOR = "surveyor"
    QA_INSPECTOR = "qa_inspector"
    MATERIALS_CLERK = "materials_clerk"
    STATISTICIAN = "statistician"
    LEADER = "leader"
    #: The province itself, acting through its notices (an escalation's resolution). No
    #: staff account has this role, so no person at the city can fake the province.
    PROVINCE = "province"


#: The roles a staff account may have (every role but the province's).
STAFF_ROLES = tuple(r for r in Role if r is not Role.PROVINCE)


class Action(StrEnum):
    """Everything that can happen to a ticket; the name recorded in its history."""

    REGISTER = "register"
    ANSWER = "answer"
    DISPATCH = "dispatch"  # 派单
    HAND_TO_SENIOR = "hand_to_senior"
    START = "start"  # the branch accepted the work
    BRANCH_RETURN = "branch_return"  # 回单
    CLOSE = "close"
    SURVEY = "survey"
    CHASE = "chase"  # 追单
    REWORK = "rework"  # 退单
    ESCALATE_MANAGER = "escalate_manager"
    ESCALATE_PROVINCE = "escalate_province"
    PROVINCE_RESOLVED = "province_resolved"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    REJECT_EXTENSION = "reject_extension"
    # Recorded in the history but not lifecycle steps (no status change, not in TRANSITIONS):
    COMPENSATE = "compensate"  # the manager hotline paid compensation for overtime
    CLASSIFY = "classify"  # the materials clerk classified a suggestion
    # Not steps of one ticket at all, but the same "who may" table answers them:
    DRAFT_REPORT = "draft_report"  # a statistician (QA: an inspector) drafts a report
    APPROVE_REPORT = "approve_report"  # the leader approves or rejects a drafted report
    SCORE_QA = "score_qa"  # a QA inspector draws samples and scores them
    SEND_SUGGESTIONS = "send_suggestions"  # the materials clerk sends a suggestion batch
    MANAGE_STAFF = "manage_staff"  # the leader disables, enables, resets and re-roles accounts
    RECORD_RECEIPT = "record_receipt"  # the leader answers a province notice for the center
    SEARCH_BY_PHONE = "search_by_phone"  # find a customer's tickets by their phone number
    READ_ACCESS_LOG = "read_access_log"  # the leader sees who read customers' data unmasked


class ReportStatus(StrEnum):
    """Where a drafted report is: waiting for the leader, approved (queued for the province),
    rejected with a reason, or replaced by a newer draft of its period."""

    DRAFT = "draft"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class FollowUp(StrEnum):
    """What an operator may do in the same form as the registration (a subset of Action)."""

    ANSWER = Action.ANSWER.value
    DISPATCH = Action.DISPATCH.value
    HAND_TO_SENIOR = Action.HAND_TO_SENIOR.value
    ESCALATE_MANAGER = Action.ESCALATE_MANAGER.value


class Satisfaction(StrEnum):
    """A survey outcome; ``unreachable`` means no answer and is kept out of every rate."""

    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    NEUTRAL = "neutral"
    DISSATISFIED = "dissatisfied"
    UNREACHABLE = "unreachable"


class NoteCode(StrEnum):
    """What a history step records besides who did what: a code with its parameters
    (:attr:`HistoryEntry.params`), rendered in the reader's language when shown
    (:mod:`city_node.history_text`). The person's own words stay in ``note``."""

    NOTE = "note"  # nothing but the person's note
    DISPATCHED_TO = "dispatched_to"  # {"branch": str}
    SURVEYED = "surveyed"  # {"outcome": Satisfaction value, "reopened": bool}
    EXTENSION_REQUESTED = "extension_requested"  # {"days": int}; note: the reason
    DEADLINE_MOVED = "deadline_moved"  # {"from": ISO time, "to": ISO time}
    PROVINCE_RESOLUTION = "province_resolution"  # {"resolution": str}
    COMPENSATION = "compensation"  # {"fen": int}
    CLASSIFIED = "classified"  # {"label": str}


#: A history step's parameters: JSON-compatible scalars only.
NoteParams = dict[str, str | int | bool]

#: Steps recorded in a ticket's history that are not lifecycle transitions.
RECORD_ONLY_ACTIONS = frozenset(
    {
        Action.COMPENSATE,
        Action.CLASSIFY,
        Action.DRAFT_REPORT,
        Action.APPROVE_REPORT,
        Action.SCORE_QA,
        Action.SEND_SUGGESTIONS,
        Action.MANAGE_STAFF,
        Action.RECORD_RECEIPT,
        Action.SEARCH_BY_PHONE,
        Action.READ_ACCESS_LOG,
    }
)
#: The actions of the lifecycle table (TRANSITIONS) and register.
LIFECYCLE_ACTIONS = frozenset(Action) - RECORD_ONLY_ACTIONS

PRIORITY_TIERS = frozenset({CustomerTier.VIP, CustomerTier.IMPORTANT, CustomerTier.LEASED_LINE})
CLOSED_STATUSES = frozenset({Status.ANSWERED, Status.CLOSED, Status.SURVEYED})
OPEN_STATUSES = frozenset(Status) - CLOSED_STATUSES
