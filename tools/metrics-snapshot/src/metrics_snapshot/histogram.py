"""Quantiles of cumulative histogram buckets, exactly as Prometheus' histogram_quantile computes them.

Computed here rather than in PromQL so one query per family gives every quantile, the request count
(the +Inf bucket) and buckets that can be summed over hours, replicas or windows first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def parse_le(value: str) -> float:
    """A bucket bound as client_python writes it ("0.25", "1.0", "+Inf")."""
    return math.inf if value in ("+Inf", "Inf", "inf") else float(value)


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of cumulative `buckets` {upper bound: count}; None when there is no observation.

    Linear interpolation inside the bucket holding the rank; below the first bound from 0; a rank in the
    +Inf bucket gives the highest finite bound. Counts that decrease with the bound (a scrape between
    bucket updates) are lifted to the running maximum, as Prometheus does.
    """
    if not 0 <= q <= 1 or math.isnan(q):
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        raise ValueError("buckets need a +Inf bound")
    counts, running = [], 0.0
    for bound in bounds:
        running = max(running, buckets[bound])
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return None
    if len(bounds) < 2:
        return None
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0 if index == 0 else bounds[index - 1]
    below = 0.0 if index == 0 else counts[index - 1]
    in_bucket = counts[index] - below
    if in_bucket <= 0:
        return bounds[index]
    return start + (bounds[index] - start) * (rank - below) / in_bucket


def total(buckets: Mapping[float, float]) -> float:
    """Observations in cumulative buckets (the +Inf bucket)."""
    return buckets.get(math.inf, 0.0)


def merge(parts: Iterable[Mapping[float, float]]) -> dict[float, float]:
    """Bucket-wise sum of several cumulative histograms (replicas, hours, windows)."""
    out: dict[float, float] = {}
    for part in parts:
        for bound, count in part.items():
            out[bound] = out.get(bound, 0.0) + count
    return out
