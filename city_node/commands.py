"""A ticket's actions as typed commands (what :func:`city_node.tickets.perform` carries out),
and the field checks they share with registration.

Each command checks its own fields when it is made, so one built directly (a script, a
benchmark) meets the same limits as one :func:`command_from` makes from a person's request;
refusals are ``CityError`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from city_node.context import CityError, refuse_characters
from city_node.domain import STEP_ACTIONS, Action, Satisfaction
from sync.limits import MAX_STEP_NOTE_CHARS, blank

MAX_EXTENSION_DAYS = 60
MAX_NOTE = MAX_STEP_NOTE_CHARS


def check_choice(enum: Any, value: Any, field: str) -> Any:
    """``enum(value)``, or ``CityError`` naming ``field`` and the words it takes."""
    choices = ", ".join(e.value for e in enum)
    if value is None or value == "":
        raise CityError("choice.missing", field=field, choices=choices)
    try:
        return enum(value)
    except ValueError:
        # A word of another choice (an Action that is no step) is named by its word.
        shown = value.value if isinstance(value, Enum) else value
        raise CityError("choice.not_one_of", field=field, value=shown, choices=choices) from None


def check_text(value: str, field: str, *, required: bool = False, limit: int = MAX_NOTE) -> str:
    """``value`` if it is text within ``limit`` (and not blank when ``required``)."""
    if not isinstance(value, str):
        raise CityError("text.not_text", field=field)
    if required and blank(value):
        raise CityError("text.required", field=field)
    if len(value) > limit:
        raise CityError("text.too_long", field=field, length=len(value), maximum=limit)
    refuse_characters(value, field)
    return value


@dataclass(frozen=True)
class Step:
    """An action that takes nothing but a note (answer, start, close, chase, escalate…)."""

    action: Action
    note: str = ""

    def __post_init__(self) -> None:  # each command checks its fields, however it is built
        check_text(self.note, "note")


@dataclass(frozen=True)
class Dispatch:
    """Send the ticket to ``branch`` (派单)."""

    branch: str
    note: str = ""

    def __post_init__(self) -> None:
        check_text(self.note, "note")
        check_text(self.branch, "branch", required=True, limit=200)


@dataclass(frozen=True)
class Survey:
    """The satisfaction callback; ``reopen`` with a dissatisfied outcome puts it back."""

    outcome: Satisfaction
    reopen: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        check_text(self.note, "note")
        check_choice(Satisfaction, self.outcome, "outcome")


@dataclass(frozen=True)
class RequestExtension:
    """Ask the leader for ``days`` more working days, saying why."""

    days: int
    reason: str

    def __post_init__(self) -> None:
        check_text(self.reason, "reason", required=True)
        if isinstance(self.days, bool) or not isinstance(self.days, int):
            raise CityError("number.not_whole", field="days", value=self.days)
        _whole(self.days, "days", low=1, high=MAX_EXTENSION_DAYS)


#: What can be done to a registered ticket, as a typed command (:func:`perform`).
Command = Step | Dispatch | Survey | RequestExtension


def _whole(value: Any, name: str, *, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CityError("number.not_whole", field=name, value=value) from None
    if not low <= number <= high:
        raise CityError("number.range", field=name, low=low, high=high, number=number)
    return number


#: The fields of a person's request a command is made from, named alike by the API's body and
#: the CLI's arguments (``command_of``).
REQUEST_FIELDS = ("note", "branch", "outcome", "reopen", "days", "reason")


#: The ticket steps as a choice (in the order of :class:`Action`), for naming them.
StepAction = StrEnum(  # type: ignore[misc]
    "StepAction", [(a.name, a.value) for a in Action if a in STEP_ACTIONS]
)


def command_of(request: Any) -> Command:
    """:func:`command_from` for an object carrying ``action`` and :data:`REQUEST_FIELDS` as
    attributes: the API's request body, the CLI's parsed arguments."""
    fields = {name: getattr(request, name) for name in REQUEST_FIELDS}
    return command_from(request.action, **fields)


def command_from(
    action: Action | str,
    *,
    note: str = "",
    branch: str | None = None,
    outcome: Satisfaction | str | None = None,
    reopen: bool = False,
    days: int | None = None,
    reason: str | None = None,
) -> Command:
    """A person's request (an action name and the fields it takes, as the API, the console
    and the CLI receive them) as a typed command: ``branch`` for dispatch; ``outcome`` and
    ``reopen`` for survey; ``days`` and ``reason`` (else the note) for an extension request.
    The values are converted here, and checked (naming the field) here and by the command
    itself, in the order a person reads them: the note first."""
    # The steps of a ticket only: the other actions (register, compensate, approve a
    # report…) are not done by ``act`` and are not offered.
    step = Action(check_choice(StepAction, action, "action").value)
    note = check_text(str(note or ""), "note")
    given = {
        "branch": (Action.DISPATCH, bool(branch and str(branch).strip())),
        "outcome": (Action.SURVEY, outcome not in (None, "")),
        "reopen": (Action.SURVEY, bool(reopen)),
        "days": (Action.REQUEST_EXTENSION, days is not None),
        "reason": (Action.REQUEST_EXTENSION, bool(reason and str(reason).strip())),
    }
    for name, (owner, present) in given.items():
        if present and step is not owner:
            # Not silently dropped: a value meant for another step is a mistake to say.
            raise CityError(
                "command.only_for", field=name, for_action=owner.value, action=step.value
            )
    if step is Action.DISPATCH:
        return Dispatch(branch=str(branch or ""), note=note)
    if step is Action.SURVEY:
        return Survey(
            outcome=check_choice(Satisfaction, outcome, "outcome"), reopen=bool(reopen), note=note
        )
    if step is Action.REQUEST_EXTENSION:
        why = check_text(str(reason or note), "reason", required=True)
        more = _whole(0 if days is None else days, "days", low=1, high=MAX_EXTENSION_DAYS)
        return RequestExtension(days=more, reason=why)
    return Step(action=step, note=note)
