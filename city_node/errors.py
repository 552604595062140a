"""Every refusal a city node gives, as one tree.

Each message says what is wrong and, where it helps, what is allowed; nothing was written
when one is raised. The console and the API map them to HTTP statuses (in
:func:`city_node.web.app.status_for`), the CLI to exit status 2::

    CityError (ValueError)           a request that cannot be done           422
    ├── NotFound (LookupError)       the ticket, notice or report named      404
    │                                does not exist in this city's store
    ├── Conflict                     someone else changed the record since   409
    │                                it was read: reload and retry; or it is
    │                                decided already (a report, a QA score)
    └── DomainError                  the ticket rules refused (domain.py)
        ├── PermissionDenied         the role may not do this (to this       403
        │                            ticket); names who may
        ├── IllegalTransition        not allowed from the ticket's status;   409
        │                            names what is allowed from it
        └── InvalidTicket            malformed: naive time, time going       422
                                     backwards, no pending extension, …

Each is raised with a code of :data:`city_node.refusals.CITY` and its values
(``CityError("text.required", field="note")``): its message is the English sentence, and
the console's pages say it in the page's language (:class:`sync.refusals.Refusal`).

Apart from the tree, as their modules document: an unknown category code raises
:class:`sync.categories.UnknownCategory` (a LookupError; the console answers 422)
and a bad category file :class:`~sync.categories.CategoryError` at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from city_node.refusals import CITY
from city_node.vocabulary import Action, Role, Status
from sync.refusals import Catalogue, Refusal


class CityError(Refusal, ValueError):
    """A request a person made that cannot be done; the message says why (a code of
    :data:`~city_node.refusals.CITY`)."""

    catalogue: ClassVar[Catalogue] = CITY


class NotFound(CityError, LookupError):
    """The ticket, notice or report named does not exist in this city's store."""


class Conflict(CityError):
    """Someone else changed the record since it was read; read it again and retry."""


class DomainError(CityError):
    """Base of every refusal raised by the ticket rules (:mod:`city_node.domain`)."""


class PermissionDenied(DomainError):
    """The acting role may not perform this action, or not on this ticket; the sentence
    (``code``) says who may."""

    def __init__(self, code: str, /, *, role: Role, action: Action, **values: Any) -> None:
        super().__init__(code, role=role.value, action=action.value, **values)
        self.role = role
        self.action = action


class IllegalTransition(DomainError):
    """The action is not allowed from the ticket's current status."""

    def __init__(self, status: Status, action: Action, allowed: Iterable[Action]) -> None:
        allowed_names = sorted(a.value for a in allowed)
        said = {"status": status.value, "action": action.value}
        if allowed_names:
            super().__init__("ticket.illegal_transition", actions=", ".join(allowed_names), **said)
        else:
            super().__init__("ticket.nothing_allowed", **said)
        self.status = status
        self.action = action
        self.allowed = tuple(allowed_names)


class InvalidTicket(DomainError):
    """The request is malformed (naive time, time going backwards, nothing to approve…)."""
