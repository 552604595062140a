"""The ticket list's paging: which page is shown and the page links (the total is
:func:`city_node.tickets.count` over the list's filters), and whether a listed ticket is
overtime (open past its deadline now)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table

from city_node import domain
from city_node.store import TicketRow

_T: Table = TicketRow.__table__  # type: ignore[assignment]
_OPEN = frozenset(s.value for s in domain.OPEN_STATUSES)
PAGE_SIZE = 50


@dataclass(frozen=True)
class Paging:
    total: int
    page: int
    pages: int
    #: (page number, offset) to link, with None for a gap ("…").
    links: list[tuple[int, int] | None]


def paging(total: int, offset: int, size: int = PAGE_SIZE) -> Paging:
    pages = max(1, -(-total // size))
    page = min(pages, offset // size + 1)
    wanted = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    links: list[tuple[int, int] | None] = []
    for n in wanted:
        if links and links[-1] is not None and n - links[-1][0] > 1:
            links.append(None)
        links.append((n, (n - 1) * size))
    return Paging(total, page, pages, links)


def is_overtime(row: Any, now: datetime | None = None) -> bool:
    deadline = row.deadline if row.deadline.tzinfo else row.deadline.replace(tzinfo=UTC)
    return row.status in _OPEN and deadline < (now or datetime.now(UTC))
