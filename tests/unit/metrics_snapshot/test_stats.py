"""The Mann-Whitney U test against scipy's values."""

from __future__ import annotations

import random

import pytest
from metrics_snapshot.stats import mann_whitney_u, smallest_p
from scipy.stats import mannwhitneyu


def _cases() -> list[tuple[list[float], list[float]]]:
    rng = random.Random(7)
    cases = [([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]), ([1.0, 1.0, 2.0, 2.0], [2.0, 3.0, 3.0]),
             ([0.5] * 5, [0.5] * 6)]
    for n1, n2, ties in ((5, 19, False), (8, 400, False), (30, 25, False), (24, 24, True), (12, 40, True)):
        draw = (lambda: float(rng.randint(0, 5))) if ties else rng.random
        cases.append(([draw() for _ in range(n1)], [draw() + rng.choice((0, 0.3)) for _ in range(n2)]))
    return cases


@pytest.mark.parametrize(("x", "y"), _cases())
def test_statistic_and_two_sided_p_equal_scipys(x: list[float], y: list[float]) -> None:
    """U and p match scipy.stats.mannwhitneyu (method auto: exact without ties when a side has <= 8)."""
    ours = mann_whitney_u(x, y)
    theirs = mannwhitneyu(x, y, alternative="two-sided")
    assert ours.u == pytest.approx(float(theirs.statistic))
    assert ours.p == pytest.approx(float(theirs.pvalue), rel=1e-9, abs=1e-15)


def test_identical_samples_give_p_one_and_separated_ones_a_tiny_p() -> None:
    """The same windows on both sides are no evidence; 24 hours all slower are overwhelming evidence."""
    hours = [0.5 + i / 100 for i in range(24)]
    assert mann_whitney_u(hours, hours).p == 1.0
    assert mann_whitney_u(hours, [h * 1.3 + 0.2 for h in hours]).p < 1e-6


def test_smallest_possible_p_depends_on_the_sample_sizes() -> None:
    """Four windows a side never reach p < 0.01, five can; the asymptotic bound is that of full separation."""
    assert smallest_p(4, 4) == pytest.approx(2 / 70)
    assert smallest_p(5, 5) == pytest.approx(2 / 252)
    assert smallest_p(24, 24) == pytest.approx(float(mannwhitneyu(range(24), range(24, 48)).pvalue))


def test_empty_or_nan_samples_are_refused() -> None:
    """A side without values or with NaN is a ValueError, not a p-value."""
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney_u([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        mann_whitney_u([float("nan")], [1.0])
