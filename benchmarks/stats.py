"""Summaries the latency harnesses share, so their p95s mean the same thing."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1): the smallest sample with at least
    ``q`` of the samples at or below it (p95 of 200 samples: the 190th smallest)."""
    if not samples:
        raise ValueError("no samples")
    if not 0 < q <= 1:
        raise ValueError(f"q {q} must be in (0, 1]")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency_summary(samples_ms: Sequence[float], digits: int = 2) -> dict[str, float]:
    """``p50_ms`` (median), ``p95_ms`` (nearest rank) and ``max_ms`` of millisecond samples."""
    return {
        "p50_ms": round(statistics.median(samples_ms), digits),
        "p95_ms": round(percentile(samples_ms, 0.95), digits),
        "max_ms": round(max(samples_ms), digits),
    }
