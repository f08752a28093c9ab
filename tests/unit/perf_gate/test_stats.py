"""perf_gate.stats: the U test against scipy and hand-counted distributions, and percentiles against numpy."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from perf_gate.stats import EXACT_MAX_N, mann_whitney_greater, mid_ranks, percentile
from scipy.stats import mannwhitneyu


def _brute_force_p(x: list[float], y: list[float]) -> float:
    """P(U >= observed) over every way of splitting the pooled values into groups of len(x) and len(y)."""
    pooled = [*x, *y]

    def u_of(ys: list[float], xs: list[float]) -> float:
        return sum((b > a) + 0.5 * (b == a) for a in xs for b in ys)

    observed = u_of(y, x)
    hits = total = 0
    for chosen in itertools.combinations(range(len(pooled)), len(y)):
        ys = [pooled[i] for i in chosen]
        xs = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        total += 1
        hits += u_of(ys, xs) >= observed - 1e-9
    return hits / total


def test_complete_separation_of_eight_rounds_gives_one_over_12870() -> None:
    """Every candidate round above every baseline round: p = 1 / C(16, 8), the smallest possible."""
    result = mann_whitney_greater([1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 16])
    assert result.u == 64
    assert result.p_value == pytest.approx(1 / 12870)
    assert result.min_p_value == pytest.approx(1 / 12870)
    assert result.method == "exact"


def test_exact_p_values_match_scipy_without_ties() -> None:
    """On 200 random pairs of samples (1..12 values each) U and p equal scipy's exact method."""
    rng = random.Random(5)
    for _ in range(200):
        x = [rng.random() for _ in range(rng.randint(1, 12))]
        y = [rng.random() + rng.choice([0, 0.2, 0.5]) for _ in range(rng.randint(1, 12))]
        ours = mann_whitney_greater(x, y)
        theirs = mannwhitneyu(y, x, alternative="greater", method="exact")
        assert ours.u == pytest.approx(theirs.statistic)
        assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-12)


def test_exact_p_values_with_ties_match_enumeration() -> None:
    """With tied values (e.g. error ratios of 0) the exact tail equals a brute-force count of all splits."""
    rng = random.Random(9)
    for _ in range(60):
        x = [float(rng.randint(0, 3)) for _ in range(rng.randint(1, 6))]
        y = [float(rng.randint(0, 4)) for _ in range(rng.randint(1, 6))]
        assert mann_whitney_greater(x, y).p_value == pytest.approx(_brute_force_p(x, y), abs=1e-12)


def test_all_values_tied_is_never_significant() -> None:
    """Identical error ratios on both sides (all zero) give p = 1."""
    result = mann_whitney_greater([0.0] * 8, [0.0] * 8)
    assert result.p_value == pytest.approx(1.0)
    assert result.min_p_value == pytest.approx(1.0)


def test_normal_approximation_matches_scipy_for_large_samples() -> None:
    """Past EXACT_MAX_N values the tie- and continuity-corrected normal tail equals scipy's asymptotic one."""
    rng = random.Random(3)
    for _ in range(30):
        x = [float(rng.randint(0, 20)) for _ in range(rng.randint(26, 40))]
        y = [float(rng.randint(1, 22)) for _ in range(rng.randint(26, 40))]
        assert len(x) + len(y) > EXACT_MAX_N
        ours = mann_whitney_greater(x, y)
        theirs = mannwhitneyu(y, x, alternative="greater", method="asymptotic", use_continuity=True)
        assert ours.method == "normal"
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-15)


def test_exact_and_normal_agree_at_the_switch_over() -> None:
    """At 25 + 25 values the exact tail is within 0.002 of the normal approximation used beyond it."""
    rng = random.Random(1)
    x = [rng.gauss(0, 1) for _ in range(25)]
    y = [rng.gauss(0.4, 1) for _ in range(25)]
    exact = mann_whitney_greater(x, y)
    normal = mannwhitneyu(y, x, alternative="greater", method="asymptotic")
    assert exact.method == "exact"
    assert abs(exact.p_value - normal.pvalue) < 0.002


def test_mid_ranks_share_ties() -> None:
    """Tied values get the mean of the ranks they occupy."""
    assert mid_ranks([10, 20, 20, 5, 20]) == [2, 4, 4, 1, 4]


def test_empty_or_nan_samples_are_refused() -> None:
    """An empty sample or a NaN is a caller bug, reported at once."""
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney_greater([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        mann_whitney_greater([1.0, math.nan], [1.0])


@pytest.mark.parametrize("q", [0, 1, 50, 95, 99, 100])
def test_percentile_matches_numpy_linear(q: float) -> None:
    """Percentiles interpolate like numpy's default method."""
    values = [0.031, 0.029, 0.2, 0.044, 0.05, 0.033, 0.041, 0.5, 0.03, 0.035, 0.036]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_refuses_nonsense() -> None:
    """No values, or a percentile outside 0..100, raise ValueError."""
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
