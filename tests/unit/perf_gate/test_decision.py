"""perf_gate.decision: regression = beyond the threshold AND significant; SLO limits; per-round summaries."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from perf_gate.decision import (
    IMPROVEMENT,
    NOT_MEASURED,
    OK,
    REGRESSION,
    UNCONFIRMED,
    Comparison,
    MetricSpec,
    SloCheck,
    compare,
    metric_specs,
    slo_checks,
    summarize,
    undecided,
)
from perf_gate.gate import confirmed
from perf_gate.load import StepRun
from perf_gate.profile import SloClass, load_profile

LATENCY = MetricSpec("s p50", "s", "p50", "s", higher_is_worse=True, threshold=0.10)
THROUGHPUT = MetricSpec("s throughput", "s", "throughput", "calls/s", higher_is_worse=False, threshold=0.10)
ERRORS = MetricSpec("error ratio", None, "error_ratio", "ratio", True, 0.01, relative=False, center="mean")
ALPHA = 0.005


def _noisy(center: float, n: int = 8, spread: float = 0.03, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def test_consistent_slowdown_beyond_threshold_is_a_regression() -> None:
    """Every candidate round 20 % slower than every baseline round: regression, p at its floor."""
    c = compare(LATENCY, _noisy(0.040), _noisy(0.048, seed=1), ALPHA)
    assert c.verdict == REGRESSION
    assert c.change == pytest.approx(0.2, abs=0.04)
    assert c.p_worse is not None and c.p_worse < 1e-3


def test_consistent_slowdown_within_threshold_passes() -> None:
    """A significant 5 % slowdown is under the 10 % threshold: not a regression."""
    c = compare(LATENCY, _noisy(0.040, spread=0.005), _noisy(0.042, spread=0.005, seed=1), ALPHA)
    assert c.p_worse is not None and c.p_worse < ALPHA
    assert c.verdict == OK


def test_large_but_noisy_difference_is_not_significant() -> None:
    """A 30 % gap in the medians that one noisy round makes is not enough evidence."""
    base = [0.040, 0.041, 0.039, 0.040, 0.120, 0.041, 0.040, 0.039]
    cand = [0.052, 0.039, 0.041, 0.060, 0.040, 0.058, 0.038, 0.055]
    c = compare(LATENCY, base, cand, ALPHA)
    assert c.p_worse is not None and c.p_worse > ALPHA
    assert c.verdict == OK


def test_throughput_regresses_downwards() -> None:
    """Lower throughput is worse; higher is reported as an improvement, never as a regression."""
    assert compare(THROUGHPUT, _noisy(50), _noisy(40, seed=1), ALPHA).verdict == REGRESSION
    faster = compare(THROUGHPUT, _noisy(50), _noisy(60, seed=1), ALPHA)
    assert faster.verdict == IMPROVEMENT
    assert faster.change == pytest.approx(0.2, abs=0.04)


def test_error_ratio_uses_an_absolute_threshold_on_the_mean() -> None:
    """0 -> 2 % unexpected outcomes in every round regresses; one stray error in one round does not."""
    zeros = [0.0] * 8
    assert compare(ERRORS, zeros, [0.02] * 8, ALPHA).verdict == REGRESSION
    assert compare(ERRORS, zeros, [0.0] * 7 + [0.03], ALPHA).verdict == OK
    assert compare(ERRORS, zeros, zeros, ALPHA).verdict == OK


def test_too_few_rounds_fall_back_to_complete_separation() -> None:
    """With 3 rounds a side alpha is unreachable (min p = 0.05): only total separation counts."""
    separated = compare(LATENCY, [0.040, 0.041, 0.042], [0.050, 0.051, 0.052], ALPHA)
    assert separated.verdict == REGRESSION and "separation" in separated.test
    overlapping = compare(LATENCY, [0.040, 0.041, 0.052], [0.050, 0.051, 0.049], ALPHA)
    assert overlapping.verdict == OK


def test_missing_values_are_not_measured() -> None:
    """A metric a build could not report (no RSS from a url: build) is neither pass nor fail."""
    c = compare(MetricSpec("peak RSS", None, "peak_rss", "bytes", True, 0.15), [1e9] * 8, [None] * 8, ALPHA)
    assert c.verdict == NOT_MEASURED


def test_candidate_that_never_answers_regresses_latency() -> None:
    """A step whose valid calls all failed has infinite latency, which is worse than any threshold."""
    c = compare(LATENCY, _noisy(0.04), [math.inf] * 8, ALPHA)
    assert c.verdict == REGRESSION and c.change == math.inf


def _round(profile, latency: float, rss: float, unexpected: int = 0) -> dict[str, StepRun]:
    runs = {}
    for step in profile.steps:
        n = step.requests
        runs[step.name] = StepRun(step=step.name, batch=step.kind == "batch", wall_s=n * latency, calls=n,
                                  outcomes=n * max(1, step.batch_items), unexpected=unexpected,
                                  latencies_s=[latency * (1 + i / 1000) for i in range(n)], rss_bytes=[rss])
    return runs


def test_summarize_gives_one_value_per_round_and_the_slo_quantities() -> None:
    """Per round: percentiles, throughput, error ratio and peak RSS; SLO values pooled over the SLO steps."""
    profile = load_profile()
    rounds = [_round(profile, 0.05, 1e9), _round(profile, 0.06, 1.2e9, unexpected=1)]
    summary = summarize(profile, rounds)
    assert set(summary.series) == {s.key for s in metric_specs(profile)}
    assert all(len(v) == 2 for v in summary.series.values())
    assert summary.series["peak RSS"] == [1e9, 1.2e9]
    assert summary.series["error ratio"][0] == 0 and summary.series["error ratio"][1] > 0
    assert summary.slo["peak_rss_bytes"] == 1.2e9
    assert 0.05 < summary.slo["p95_s"] < 0.065
    assert summary.steps["single-c1"].calls == 2 * profile.step("single-c1").requests


def test_slo_checks_only_what_the_class_states() -> None:
    """Limits the class leaves out are not checked; a missing value is 'not measured' (None)."""
    slo = SloClass(description="t", p95_s=0.5, error_ratio=0.01)
    measured = {"p95_s": 0.7, "error_ratio": None, "p99_s": 0.1}
    checks = {c.name: c for c in slo_checks(slo, measured, {"p95_s": 0.4})}
    assert set(checks) == {"p95_s", "error_ratio"}
    assert checks["p95_s"].passed is False and checks["p95_s"].baseline == 0.4
    assert checks["error_ratio"].passed is None


def test_confirmation_keeps_only_failures_seen_twice() -> None:
    """--confirm: a regression or SLO breach fails only when both runs have it; the rest is not confirmed."""

    def run(p50: str, p95: str, breach: bool) -> tuple[list[Comparison], list[SloCheck]]:
        comps = []
        for key, verdict in (("p50", p50), ("p95", p95)):
            slower = 0.06 if verdict == REGRESSION else 0.04
            comps.append(replace(compare(LATENCY, _noisy(0.04), _noisy(slower, seed=2), ALPHA), key=key))
        return comps, [SloCheck("p95_s", 0.5, 0.7 if breach else 0.1, 0.1, not breach)]

    comparisons, slo = confirmed(run(REGRESSION, OK, True), run(REGRESSION, REGRESSION, False))
    assert {c.key: c.verdict for c in comparisons} == {"p50": REGRESSION, "p95": UNCONFIRMED}
    assert slo[0].passed is True
    _, slo = confirmed(run(OK, OK, False), run(OK, OK, True))
    assert slo[0].passed is None and slo[0].note == UNCONFIRMED


def test_undecided_lists_metrics_beyond_threshold_without_significance() -> None:
    """Only a metric that is worse than its threshold yet not significant asks for more rounds."""
    noisy_base = [0.040, 0.041, 0.042, 0.043, 0.070, 0.039, 0.038, 0.072]
    noisy_cand = [0.048, 0.049, 0.050, 0.047, 0.036, 0.037, 0.075, 0.046]
    suspicious = replace(compare(LATENCY, noisy_base, noisy_cand, ALPHA), key="suspicious")
    clear = compare(LATENCY, _noisy(0.040), _noisy(0.060, seed=1), ALPHA)
    fine = compare(LATENCY, _noisy(0.040), _noisy(0.040, seed=1), ALPHA)
    assert suspicious.verdict == OK and suspicious.change > LATENCY.threshold
    assert undecided([suspicious, clear, fine]) == ["suspicious"]
