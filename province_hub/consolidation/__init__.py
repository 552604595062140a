"""The province's consolidated picture, read from the figure tables (never from record blobs,
except the suggestion browser, whose texts are only in the records).

How consolidation works:

- a city's figures for a period are its **latest** accepted revision of that period (highest
  revision; the later record when a revision number came twice); quarantined records never
  landed figures, so they cannot count;
- province totals are the **sums** of the reporting cities' counts; a roster city without
  a report for the period is listed as ``missing`` (never as zeros) and adds nothing;
- every KPI is ``{"numerator", "denominator", "rate"}`` computed from the summed numerator
  and denominator — never an average of city percentages — with ``rate`` ``None`` when the
  denominator is 0. ``overtime_open`` is a count at the period's end: its KPI carries the
  count as numerator and no denominator.

Every function takes keyword arguments and returns plain dicts / lists of JSON-ready values
(dates as ISO strings), for the CLI, the HTTP API and the exports alike.
"""

from __future__ import annotations

from province_hub.consolidation.core import (
    HIGHER_IS_BETTER,
    KPI_DEFINITIONS,
    FiguresError,
    PeriodRef,
    clear_cache,
    period_ref,
)
from province_hub.consolidation.hotspots import early_warnings, enquiry_hotspots
from province_hub.consolidation.period_figures import figures, operators, revisions
from province_hub.consolidation.qa import overtime_summary, qa_picture
from province_hub.consolidation.records import quarantined_records, suggestion_batches
from province_hub.consolidation.trends import comparison, trend, trends

__all__ = [
    "HIGHER_IS_BETTER",
    "KPI_DEFINITIONS",
    "FiguresError",
    "PeriodRef",
    "clear_cache",
    "comparison",
    "early_warnings",
    "enquiry_hotspots",
    "figures",
    "operators",
    "overtime_summary",
    "period_ref",
    "qa_picture",
    "quarantined_records",
    "revisions",
    "suggestion_batches",
    "trend",
    "trends",
]
