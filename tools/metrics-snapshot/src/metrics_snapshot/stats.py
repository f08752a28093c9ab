"""The two-sided Mann-Whitney U test, as scipy.stats.mannwhitneyu computes it (tests check its values).

Why this test for histogram data: Prometheus keeps no individual request, only bucket counts per
window. A test over requests (a bootstrap or a t-test on bucket counts) would take every request as an
independent draw; they are not (a slow minute slows every request in it), and with millions of them any
difference, however small, comes out "significant". Instead each time window (an hour by default)
gives one estimate of the metric (its P95 from that window's buckets, its error ratio, ...), and the
test asks whether the windows of one side tend to be higher than those of the other. It is rank-based,
so it needs no normality and is unmoved by a few extreme windows (a restart, a burst) or by the
bucket interpolation's granularity (estimates falling in the same bucket become ties, which it
corrects for). Its assumptions: windows are independent and identically distributed within each side,
which hourly windows over whole days approximate well (diurnal traffic affects both sides alike when
each covers whole days).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

# With at most this many values on one side and no ties, the exact distribution of U is used (as
# scipy's method="auto" does); otherwise the normal approximation with tie and continuity corrections.
EXACT_MAX = 8


@dataclass(frozen=True)
class MannWhitney:
    """U of the first sample (the number of pairs where it is larger, ties counting one half) and the
    two-sided p-value."""

    u: float
    p: float
    method: str


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based, ties averaged) and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


@lru_cache(maxsize=256)
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many of the C(n1+n2, n1) orderings give each U = 0 .. n1*n2 (no ties): the coefficients of
    the Gaussian binomial prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), m = min(n1, n2), n = max."""
    m, n = sorted((n1, n2))
    size = m * n + 1
    poly = [1] + [0] * (size - 1)
    for i in range(1, m + 1):
        for k in range(size - 1, n + i - 1, -1):  # times (1 - q^(n+i))
            poly[k] -= poly[k - n - i]
        for k in range(i, size):  # divided by (1 - q^i), as a power series
            poly[k] += poly[k - i]
    return tuple(poly)


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U test of x against y."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    if any(math.isnan(v) for v in (*x, *y)):
        raise ValueError("samples must not contain NaN")
    ranks, ties = _ranks([*x, *y])
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    big = max(u1, u2)
    has_ties = any(t > 1 for t in ties)
    if min(n1, n2) <= EXACT_MAX and not has_ties:
        counts = _u_counts(n1, n2)
        tail = sum(counts[math.ceil(big):]) / math.comb(n1 + n2, n1)
        return MannWhitney(u1, min(1.0, 2 * tail), "exact")
    n = n1 + n2
    mu = n1 * n2 / 2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
    if sigma == 0:  # every value equal: no evidence of any difference
        return MannWhitney(u1, 1.0, "asymptotic")
    z = (big - mu - 0.5) / sigma
    p = math.erfc(z / math.sqrt(2))  # two-sided: 2 * (1 - Phi(z))
    return MannWhitney(u1, min(1.0, max(0.0, p)), "asymptotic")


def smallest_p(n1: int, n2: int) -> float:
    """The smallest two-sided p-value the test can give for these sample sizes (complete separation,
    no ties): below the significance level, or the comparison cannot show anything."""
    if n1 == 0 or n2 == 0:
        return 1.0
    if min(n1, n2) <= EXACT_MAX:
        return min(1.0, 2 / math.comb(n1 + n2, n1))
    return mann_whitney_u([float(i) for i in range(n1)], [float(n1 + i) for i in range(n2)]).p
