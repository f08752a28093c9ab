"""Rank statistics for a handful of noisy rounds: the one-sided Mann-Whitney U test and percentiles.

The U test is computed exactly (the permutation distribution of the rank sum, ties kept as mid-ranks)
for the sample sizes a gate uses, and by the normal approximation with tie and continuity
corrections beyond them. Pure Python on purpose: the gate installs on any CI runner without scipy;
tests/unit/perf_gate/test_stats.py checks it against scipy and against hand-counted distributions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Exact up to this many values in both samples together (20 rounds a side); the DP then costs a few
# milliseconds. Past it the normal approximation is within 1e-3 of the exact tail.
EXACT_MAX_N = 50


@dataclass(frozen=True)
class UTest:
    """Result of a one-sided U test: is `y` stochastically greater than `x`?"""

    u: float  # pairs (x_i, y_j) with y_j > x_i, a tie counting one half
    p_value: float  # chance of a U this large or larger when both samples come from one distribution
    min_p_value: float  # the smallest p-value these sample sizes (and ties) could give at all
    method: str  # "exact" or "normal"


def mid_ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n of `values` in their order, tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        rank = (start + end) / 2 + 1
        for k in range(start, end + 1):
            ranks[order[k]] = rank
        start = end + 1
    return ranks


def _upper_tail_counts(doubled_ranks: Sequence[int], size: int) -> list[int]:
    """ways[s] = how many subsets of `size` of the doubled ranks sum to exactly s."""
    total = sum(doubled_ranks)
    ways = [[0] * (total + 1) for _ in range(size + 1)]
    ways[0][0] = 1
    for i, r in enumerate(doubled_ranks):
        for k in range(min(i + 1, size), 0, -1):
            row, prev = ways[k], ways[k - 1]
            ways[k] = row[:r] + [a + b for a, b in zip(row[r:], prev, strict=False)]
    return ways[size]


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> UTest:
    """One-sided Mann-Whitney U test of H1 "y tends to be larger than x" (H0: one distribution)."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    if any(math.isnan(v) for v in (*x, *y)):
        raise ValueError("NaN in a sample")
    n = n1 + n2
    ranks = mid_ranks([*x, *y])
    rank_sum_y = sum(ranks[n1:])
    u = rank_sum_y - n2 * (n2 + 1) / 2
    if n <= EXACT_MAX_N:
        doubled = [round(2 * r) for r in ranks]  # mid-ranks are multiples of 1/2
        ways = _upper_tail_counts(doubled, n2)
        total = math.comb(n, n2)
        observed = round(2 * rank_sum_y)
        best = sum(sorted(doubled)[-n2:])
        return UTest(u, sum(ways[observed:]) / total, sum(ways[best:]) / total, "exact")
    ties = _tie_term(ranks)
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return UTest(u, 1.0, 1.0, "normal")
    sd = math.sqrt(variance)
    mean = n1 * n2 / 2
    p = _normal_sf((u - mean - 0.5) / sd)
    return UTest(u, min(1.0, p), _normal_sf((n1 * n2 - mean - 0.5) / sd), "normal")


def _tie_term(ranks: Sequence[float]) -> float:
    counts: dict[float, int] = {}
    for r in ranks:
        counts[r] = counts.get(r, 0) + 1
    return float(sum(t**3 - t for t in counts.values()))


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated linearly between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
