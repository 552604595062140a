"""Working-day arithmetic, re-exported: the calendar moved to :mod:`sync.calendar` so that the
province hub counts report deadlines on the same holiday rules as the cities (the hub must
not import ``city_node``)."""

from __future__ import annotations

from sync.calendar import DEFAULT_TZ, WorkCalendar, load_holidays

__all__ = ["DEFAULT_TZ", "WorkCalendar", "load_holidays"]
