"""Customers' personal data (phone, name): how phones are written, who sees them, and the
access log of unmasked reads.

- A phone is stored as digits only: spaces and dashes are dropped (``138 0000-0001`` is
  ``13800000001``), anything else is refused, and it has 5 to 20 digits. A name holds no
  control character (an ANSI escape would rewrite a terminal that prints it). One customer has one
  spelling, so repeat-complaint detection and phone search find them.
- Roles that call customers (``domain.CUSTOMER_CONTACT_ROLES``: operators, the manager
  hotline, surveyors) see phones and names in full and may search by phone; every other role
  sees ``138****5678`` and ``李*`` (:mod:`sync.masking`, the hub's desk uses it too, applied by the
  presenters in :mod:`city_node.views`, and to a suggestion's content by
  :mod:`city_node.suggestions`).
- Each unmasked read — a ticket's detail shown to such a role, a phone search — appends a row
  to the access log (who, role, when, which ticket, what); the leader reads it
  (``Action.READ_ACCESS_LOG``). Nothing updates or deletes those rows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from city_node import domain
from city_node.context import Actor, CityContext, CityError
from city_node.domain import Action, Role
from city_node.store import AccessLog
from sync.masking import mask_text

MIN_PHONE_DIGITS = 5
MAX_PHONE_DIGITS = 20
_SEPARATORS = re.compile(r"[ \-]")


def normalise_phone(value: str, field: str = "customer_phone") -> str:
    """``value`` as stored: digits only (spaces and dashes dropped); ``CityError`` naming
    ``field`` when anything else is in it or the number of digits is outside 5..20."""
    digits = _SEPARATORS.sub("", value.strip())
    if not digits.isascii() or not digits.isdigit():
        raise CityError("phone.digits", field=field)
    if not MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
        raise CityError(
            "phone.length",
            field=field,
            count=len(digits),
            low=MIN_PHONE_DIGITS,
            high=MAX_PHONE_DIGITS,
        )
    return digits


def check_name(value: str) -> str:
    """``value`` if it has no control character (an ANSI escape, a newline) nor a lone
    surrogate, else ``CityError``: a name is printed in lists and terminals."""
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise CityError("text.bad_char", field="customer_name", code=f"{ord(ch):04X}")
    return value


def sees_customers(role: Role | None) -> bool:
    """Whether ``role`` sees phones and names in full (None: the node's administrator at
    the shell, who holds the store itself)."""
    return role is None or role in domain.CUSTOMER_CONTACT_ROLES


def shown_text(role: Role | None, text: str, *, name: str, phone: str) -> str:
    """Free text about one customer (a ticket's content, a note) as ``role`` reads it: as
    written when the role sees customers, else with the customer's ``name`` and ``phone``
    and any phone-like number masked (:func:`sync.masking.mask_text`)."""
    return text if sees_customers(role) else mask_text(text, name=name, phone=phone)


def shown_label(role: Role | None, label: str, *, name: str, phone: str) -> str:
    """A materials clerk's class label as ``role`` reads it: masked like :func:`shown_text`
    but by the customer's full name only, as the batch the city sends carries it (a given
    name alone may be the label's own word)."""
    if sees_customers(role):
        return label
    return mask_text(label, name=name, phone=phone, given_names=False)


def record_access(
    engine: Engine, actor: Actor, ticket_ids: Iterable[int | None], what: str
) -> None:
    """Append one access-log row per ticket read unmasked by ``actor``."""
    moment = datetime.now(UTC)
    rows = [
        {"at": moment, "staff_id": actor.id, "role": actor.role.value, "ticket_id": t, "what": what}
        for t in ticket_ids
    ]
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(AccessLog), rows)


def ticket_read(ctx: CityContext, actor: Actor, ticket_id: int) -> None:
    """Log that ``actor`` was shown ticket ``ticket_id`` (when their role sees it unmasked)."""
    if sees_customers(actor.role):
        record_access(ctx.engine, actor, [ticket_id], "ticket detail")


@dataclass(frozen=True)
class AccessEntry:
    at: datetime
    staff_id: str
    role: str
    ticket_id: int | None
    what: str


def access_log(ctx: CityContext, actor: Actor, *, limit: int = 200) -> Sequence[AccessEntry]:
    """The latest unmasked reads, newest first (the leader's)."""
    domain.check_may(actor.role, Action.READ_ACCESS_LOG)
    limit = max(1, min(limit, 1000))
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(AccessLog).order_by(AccessLog.id.desc()).limit(limit)).all()
    return [AccessEntry(r.at, r.staff_id, r.role, r.ticket_id, r.what) for r in rows]
