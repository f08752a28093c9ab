"""Bucket quantiles computed as Prometheus' histogram_quantile does."""

from __future__ import annotations

import math

import pytest
from metrics_snapshot.histogram import merge, parse_le, quantile, total

from tests.support.vmdata import LATENCY_QUANTILES, LATENCY_SHAPE, STAGE_SHAPE

INF = math.inf


def _shape(shape: dict[str, float], n: float) -> dict[float, float]:
    return {parse_le(le): fraction * n for le, fraction in shape.items()}


def test_interpolates_linearly_inside_the_bucket_holding_the_rank() -> None:
    """Half the requests under 0.25 s and all under 0.5 s put the P75 half-way through (0.25, 0.5]."""
    assert quantile(0.75, {0.25: 50, 0.5: 100, INF: 100}) == pytest.approx(0.375)
    assert quantile(0.25, {0.25: 50, 0.5: 100, INF: 100}) == pytest.approx(0.125)  # from 0 below the first


def test_synthetic_shapes_give_the_quantiles_the_integration_tests_expect() -> None:
    """The test data's latency and stage shapes produce exactly the documented P50/P90/P95/P99."""
    got = [quantile(q, _shape(LATENCY_SHAPE, 4096)) for q in (0.5, 0.9, 0.95, 0.99)]
    assert got == pytest.approx(list(LATENCY_QUANTILES.values()))
    assert quantile(0.95, _shape(STAGE_SHAPE, 64)) == pytest.approx(0.095)


def test_a_rank_in_the_inf_bucket_gives_the_highest_finite_bound() -> None:
    """When more requests than the rank lie above the last finite bound, the answer is that bound."""
    assert quantile(0.99, {1.0: 90, 2.0: 95, INF: 100}) == 2.0


def test_empty_histograms_have_no_quantile_and_bad_input_is_refused() -> None:
    """No observations: None; a quantile outside [0, 1] or buckets without +Inf: ValueError."""
    assert quantile(0.5, {0.5: 0, INF: 0}) is None
    with pytest.raises(ValueError, match="within"):
        quantile(1.5, {0.5: 1, INF: 1})
    with pytest.raises(ValueError, match="Inf"):
        quantile(0.5, {0.5: 1, 1.0: 2})


def test_decreasing_counts_are_lifted_to_the_running_maximum() -> None:
    """A bucket scraped mid-update (lower than the one below it) counts as the one below, as in Prometheus."""
    lifted = quantile(0.5, {0.25: 60, 0.5: 60, 1.0: 100, INF: 100})
    assert quantile(0.5, {0.25: 60, 0.5: 40, 1.0: 100, INF: 100}) == lifted


def test_merge_sums_bucket_by_bucket_and_total_reads_inf() -> None:
    """Merging two replicas' histograms adds counts per bound; the total is the +Inf bucket."""
    merged = merge([{0.5: 1, INF: 2}, {0.5: 3, INF: 4}])
    assert merged == {0.5: 4, INF: 6}
    assert total(merged) == 6
    assert parse_le("+Inf") == INF and parse_le("1.0") == 1.0
