"""How the figures judge a ticket: overtime, closed in time, repeat complaints and the
survey tally, each defined once here.

The report queries (:mod:`city_node.reports`) count the same things in SQL over the
ticket history; ``tests/integration/test_rule_parity.py`` holds each SQL version to the
definition here over random tickets, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from city_node.domain import REPEAT_WINDOW_DAYS, Ticket, require_aware
from city_node.vocabulary import Satisfaction, TicketKind


def is_overtime(ticket: Ticket, now: datetime) -> bool:
    """Not closed within its limit: closed after the deadline, or still open past it."""
    require_aware("now", now)
    if ticket.closed_at is not None and not ticket.is_open:
        return ticket.closed_at > ticket.deadline
    return now > ticket.deadline


def closed_in_time(ticket: Ticket) -> bool:
    """Closed (answered, closed or surveyed) at or before its deadline; False while open."""
    if ticket.is_open or ticket.closed_at is None:
        return False
    return ticket.closed_at <= ticket.deadline


def is_repeat(
    new: Ticket, previous: Iterable[Ticket], window_days: int = REPEAT_WINDOW_DAYS
) -> bool:
    """A repeat complaint (重复投诉): a complaint from the same phone on the same category
    registered strictly before ``new`` and at most ``window_days`` calendar days (24 h each)
    earlier — a complaint exactly on the window's edge is still a repeat."""
    if new.kind is not TicketKind.COMPLAINT:
        return False
    window = timedelta(days=window_days)
    for old in previous:
        # A ticket never repeats itself: its own (or a copy's) age is zero, outside the window.
        if old.kind is not TicketKind.COMPLAINT:
            continue
        if old.customer_phone != new.customer_phone or old.category != new.category:
            continue
        age = new.registered_at - old.registered_at
        if timedelta(0) < age <= window:
            return True
    return False


@dataclass(frozen=True)
class SurveyTally:
    """Survey outcomes counted; ``surveyed`` excludes unreachable customers."""

    counts: dict[Satisfaction, int]

    @property
    def surveyed(self) -> int:
        """Customers who gave an answer: the denominator of every satisfaction rate."""
        return sum(n for s, n in self.counts.items() if s is not Satisfaction.UNREACHABLE)

    @property
    def unreachable(self) -> int:
        """Customers the surveyor could not reach (reported, never in a denominator)."""
        return self.counts.get(Satisfaction.UNREACHABLE, 0)

    @property
    def satisfaction_rate(self) -> float | None:
        """(very satisfied + satisfied) / surveyed; None when nobody answered."""
        if self.surveyed == 0:
            return None
        good = self.counts.get(Satisfaction.VERY_SATISFIED, 0) + self.counts.get(
            Satisfaction.SATISFIED, 0
        )
        return good / self.surveyed


def tally_surveys(tickets: Iterable[Ticket]) -> SurveyTally:
    """Count the satisfaction outcomes recorded on ``tickets`` (unsurveyed ones are skipped)."""
    counts = Counter(t.satisfaction for t in tickets if t.satisfaction is not None)
    return SurveyTally(counts={s: counts[s] for s in Satisfaction})
