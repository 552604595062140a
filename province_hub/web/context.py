"""What the supervisor web reads from: the hub's store, its roster and its time zone."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy import Engine

from province_hub.deadlines import Deadlines
from sync.calendar import WorkCalendar
from sync.categories import CategoryTree
from sync.roster import City


@dataclass(frozen=True)
class HubWeb:
    engine: Engine
    roster: tuple[City, ...]
    zone: ZoneInfo
    #: The clock (tests and the demo pass their own); pages default to periods before now.
    now: Callable[[ZoneInfo], datetime] = field(default=datetime.now)
    #: The report deadlines (timeliness, late and missing reports); None: not judged.
    deadlines: Deadlines | None = None
    #: Working days an escalation may stay open before the desk marks it overdue.
    escalation_limit_days: int = 5
    #: Wakes the notice streams of these cities after a notice is committed (the hub's
    #: broker when the web runs inside the hub; else the streams' polling finds it).
    on_notice: Callable[[Iterable[str]], None] | None = None
    #: The category tree whose names the pages and exports show beside the codes cities
    #: send (``--categories``; default: the packaged tree the cities start with).
    categories: CategoryTree = field(default_factory=CategoryTree.load)

    @property
    def roster_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.roster)

    def city(self, code: str) -> City:
        """The roster city ``code`` (one the caller has checked is on the roster)."""
        return next(c for c in self.roster if c.code == code)

    def names(self, lang: str) -> dict[str, str]:
        return {c.code: c.name_zh if lang == "zh" else c.name_en for c in self.roster}

    def category_names(self, lang: str) -> dict[str, str]:
        """Category code → its name in ``lang`` (codes the tree lacks are not in it)."""
        return {
            c.code: (c.name_zh if lang == "zh" else c.name_en) or c.code for c in self.categories
        }

    def today(self) -> date:
        return self.now(self.zone).date()

    def local_now(self) -> datetime:
        return self.now(self.zone)

    @property
    def calendar(self) -> WorkCalendar:
        """The working-day calendar (the deadlines' holidays; weekends only without)."""
        if self.deadlines is not None:
            return self.deadlines.calendar
        return WorkCalendar(tz_name=self.zone.key)


def hub_of(request: Request) -> HubWeb:
    hub: HubWeb = request.app.state.hub
    return hub
