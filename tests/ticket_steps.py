"""Working a ticket in a test by action name, the way a person's request arrives: the typed
command :func:`city_node.commands.command_from` builds, carried out by
:func:`city_node.tickets.perform`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from city_node import commands, tickets
from city_node.context import Actor, CityContext
from city_node.domain import Action, Ticket


def act(
    ctx: CityContext,
    actor: Actor,
    ticket_id: int,
    action: Action | str,
    *,
    at: datetime | None = None,
    **fields: Any,
) -> Ticket:
    """``action`` with its ``fields`` (note, branch, outcome, reopen, days, reason) on a ticket."""
    return tickets.perform(ctx, actor, ticket_id, commands.command_from(action, **fields), at=at)
