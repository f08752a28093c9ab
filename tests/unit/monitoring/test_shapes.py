"""The series generators of tests/support/shapes.py reproduce the services' real retry schedules."""

from __future__ import annotations

import pytest
from ofa_ve.loading import LOAD_RETRY_MAX_S, MODEL_STATES

from tests.support.shapes import (
    JITTER_LONGEST,
    JITTER_SHORTEST,
    SCRAPE_INTERVAL_S,
    STALE,
    Series,
    crash_loop,
    model_load_shape,
    relay_failure_times,
    relay_retry_shape,
    replica_series,
)


def test_scrape_interval_is_the_committed_one() -> None:
    """Series are generated at prometheus.yml's 15 s scrape interval."""
    assert SCRAPE_INTERVAL_S == 15


def test_relay_schedule_without_jitter_is_the_documented_one() -> None:
    """Mid-jitter, failures come at 0, 2, 6 ... 510, 1022, 1622 s: 2 s doubling, capped at 600 s."""
    attempts, _ = relay_failure_times(0, 2000, 0.5)
    assert [round(a) for a in attempts] == [0, 2, 6, 14, 30, 62, 126, 254, 510, 1022, 1622]


@pytest.mark.parametrize(("rand", "longest"), [(JITTER_SHORTEST, 480), (JITTER_LONGEST, 720)])
def test_relay_jitter_extremes_stretch_the_capped_wait_by_twenty_percent(rand: float, longest: float) -> None:
    """At the 600 s cap the waits are 480 s with the shortest jitter and 720 s with the longest."""
    shape = relay_retry_shape(start_s=0, fixed_s=7200, end_s=7800, rand=rand)
    assert shape.longest_wait_s == pytest.approx(longest)


def test_relay_gauge_holds_through_backoff_waits_and_counter_counts_attempts() -> None:
    """target_failing is 1 from the first failure to the delivering attempt; the counter starts at 0."""
    shape = relay_retry_shape(start_s=300, fixed_s=3900, end_s=5400, rand=0.5)
    failing, failed = (dict(zip(_times(s), s.values, strict=True)) for s in shape.series)
    assert failing[0] == 0 and failing[285] == 0
    assert all(failing[t] == 1 for t in failing if 300 <= t < shape.recovered_s)
    assert all(failing[t] == 0 for t in failing if t >= shape.recovered_s)
    assert failed[0] == 0 and failed[300] == 1
    assert failed[5400] == len(shape.attempts)


def test_model_load_shape_follows_the_services_retry_schedule() -> None:
    """Failures are one attempt plus ofa_ve.loading's wait apart; the state gauges are one-hot."""
    shape = model_load_shape(attempt_s=30, fixed_s=3600, end_s=5400)
    gaps = [b - a for a, b in zip(shape.failures, shape.failures[1:], strict=False)]
    assert gaps[:3] == [30 + 10, 30 + 20, 30 + 40]
    assert shape.longest_gap_s == 30 + LOAD_RETRY_MAX_S
    states = [s for s in shape.series if s.name == "ofa_ve_model_state"]
    assert {s.labels["state"] for s in states} == set(MODEL_STATES)
    assert all(sum(values) == 1 for values in zip(*(s.values for s in states), strict=True))
    (ready,) = [s for s in shape.series if s.name == "ofa_ve_model_ready"]
    assert ready.values[-1] == 1 and ready.values[0] == 0


def test_a_stuck_load_never_fails_or_finishes() -> None:
    """An attempt longer than the shape leaves the replica loading, with no failure counted."""
    shape = model_load_shape(attempt_s=36000, fixed_s=0, end_s=3600)
    assert shape.failures == () and shape.ready_s == float("inf")


def test_a_vanished_replica_gets_one_stale_marker_then_no_samples() -> None:
    """Gone from discovery: a stale marker at the next scrape, then nothing, then scraped again."""
    up, expected = replica_series("10.0.0.5:8000", expected=3, end_s=120, gaps=[(30, 75)])
    assert up.values == (1, 1, STALE, None, None, 1, 1, 1, 1)
    assert expected.values == (3, 3, STALE, None, None, 3, 3, 3, 3)
    assert up.promtool()["values"] == "1 1 stale _ _ 1 1 1 1"


def test_crash_loop_alternates_up_and_down() -> None:
    """A replica up 60 s, gone 90 s, from 0 to 400 s."""
    assert crash_loop(0, 400, up_s=60, down_s=90) == [(60, 150), (210, 300), (360, 400)]


def test_series_renders_as_a_promtool_input_series() -> None:
    """Labels in order, integers without a decimal point, fractions kept."""
    series = Series("m", {"a": "x", "b": "y"}, (0.0, 1.5, None, STALE))
    assert series.promtool() == {"series": 'm{a="x",b="y"}', "values": "0 1.5 _ stale"}


def _times(series: Series) -> list[float]:
    return [i * SCRAPE_INTERVAL_S for i in range(len(series.values))]
