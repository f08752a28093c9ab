"""From per-round measurements to verdicts: the metric catalogue, the per-metric decision, the SLO checks.

A metric regresses when BOTH hold (peak RSS: the first alone, see metric_specs):
- the candidate's centre (median over rounds; mean for the error ratio) is worse than the baseline's
  by more than the profile's threshold (relative, or absolute for the error ratio), and
- the one-sided Mann-Whitney U test over the per-round values says the candidate is worse at the
  profile's alpha. When the round counts cannot reach alpha at all (too few rounds), the test falls
  back to requiring that every candidate round be worse than every baseline round.
Improvements are found the same way in the other direction and reported, never failed.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from perf_gate.load import StepRun
from perf_gate.profile import Profile, SloClass
from perf_gate.stats import mann_whitney_greater, percentile

REGRESSION, IMPROVEMENT, OK, NOT_MEASURED = "regression", "improvement", "ok", "not measured"
UNCONFIRMED = "not confirmed"  # a regression in one run of two (--confirm): passes
PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))


@dataclass(frozen=True)
class MetricSpec:
    key: str
    step: str | None
    stat: str  # p50 p95 p99 throughput error_ratio peak_rss
    unit: str
    higher_is_worse: bool
    threshold: float
    relative: bool = True
    center: str = "median"  # median | mean | max
    tested: bool = True  # False: the threshold alone decides (no U test), see peak RSS


def metric_specs(profile: Profile) -> list[MetricSpec]:
    """Every metric the A/B compares, in report order."""
    t = profile.thresholds
    specs: list[MetricSpec] = []
    for step in profile.steps:
        for stat, _ in PERCENTILES:
            threshold = getattr(t, f"latency_{stat}")
            specs.append(MetricSpec(f"{step.name} {stat}", step.name, stat, "s", True, threshold))
        unit = "items/s" if step.kind == "batch" else "calls/s"
        specs.append(MetricSpec(f"{step.name} throughput", step.name, "throughput", unit, False,
                                t.throughput))
    specs.append(MetricSpec("error ratio", None, "error_ratio", "ratio", True, t.error_ratio, relative=False,
                            center="mean"))
    # A process's peak RSS only grows, so its per-round values are one high-water mark read eight
    # times, not eight samples: no U test. What varies is the process (the A/A spread is in the
    # README), so the threshold alone decides, set above that spread.
    specs.append(MetricSpec("peak RSS", None, "peak_rss", "bytes", True, t.peak_rss, center="max",
                            tested=False))
    return specs


@dataclass
class StepTotals:
    """One step of one build over all rounds, for the report's detail section."""

    calls: int = 0
    outcomes: int = 0
    unexpected: int = 0
    transport_errors: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    example: str = ""


@dataclass
class Summary:
    """What one build measured: per-round metric values, the SLO quantities, per-step totals."""

    series: dict[str, list[float | None]]
    slo: dict[str, float | None]
    steps: dict[str, StepTotals]

    def to_json(self) -> dict[str, object]:
        return {
            "series": {k: [_finite(v) for v in vs] for k, vs in self.series.items()},
            "slo": {k: _finite(v) for k, v in self.slo.items()},
            "steps": {k: {**asdict(v), "statuses": dict(v.statuses)} for k, v in self.steps.items()},
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def summarize(profile: Profile, rounds: Sequence[dict[str, StepRun]]) -> Summary:
    """Per-round metric values and the SLO quantities of one build's rounds (each: step name -> run)."""
    series: dict[str, list[float | None]] = {s.key: [] for s in metric_specs(profile)}
    steps = {s.name: StepTotals() for s in profile.steps}
    slo_steps = [s.name for s in profile.steps if s.slo]
    round_p95: list[float] = []
    round_p99: list[float] = []
    outcomes = unexpected = 0
    peak: float | None = None
    for runs in rounds:
        for step in profile.steps:
            run = runs[step.name]
            for stat, q in PERCENTILES:
                value = percentile(run.latencies_s, q) if run.latencies_s else math.inf
                series[f"{step.name} {stat}"].append(value)
            series[f"{step.name} throughput"].append(run.throughput)
            totals = steps[step.name]
            totals.calls += run.calls
            totals.outcomes += run.outcomes
            totals.unexpected += run.unexpected
            totals.transport_errors += run.transport_errors
            totals.statuses.update(run.statuses)
            totals.example = totals.example or run.example
        round_outcomes = sum(r.outcomes for r in runs.values())
        round_unexpected = sum(r.unexpected for r in runs.values())
        outcomes += round_outcomes
        unexpected += round_unexpected
        series["error ratio"].append(round_unexpected / round_outcomes if round_outcomes else 1.0)
        samples = [v for r in runs.values() for v in r.rss_bytes]
        series["peak RSS"].append(max(samples) if samples else None)
        if samples:
            peak = max(samples) if peak is None else max(peak, max(samples))
        pooled = [v for name in slo_steps for v in runs[name].latencies_s]
        round_p95.append(percentile(pooled, 95) if pooled else math.inf)
        round_p99.append(percentile(pooled, 99) if pooled else math.inf)
    slo = {
        "p95_s": statistics.median(round_p95) if round_p95 else None,
        "p99_s": statistics.median(round_p99) if round_p99 else None,
        "error_ratio": unexpected / outcomes if outcomes else None,
        "peak_rss_bytes": peak,
    }
    return Summary(series, slo, steps)


@dataclass(frozen=True)
class Comparison:
    key: str
    unit: str
    baseline: float | None  # centre over rounds
    candidate: float | None
    change: float | None  # relative (candidate/baseline - 1) or absolute difference
    relative: bool
    threshold: float
    higher_is_worse: bool
    p_worse: float | None
    p_better: float | None
    test: str
    verdict: str


def _center(values: Sequence[float], how: str) -> float:
    if how == "max":
        return max(values)
    return statistics.fmean(values) if how == "mean" else statistics.median(values)


def compare(spec: MetricSpec, baseline: Sequence[float | None], candidate: Sequence[float | None],
            alpha: float) -> Comparison:
    """The verdict on one metric from its per-round values (see the module docstring)."""
    if not baseline or not candidate or any(v is None for v in (*baseline, *candidate)):
        return Comparison(spec.key, spec.unit, None, None, None, spec.relative, spec.threshold,
                          spec.higher_is_worse, None, None, "", NOT_MEASURED)
    base = [float(v) for v in baseline if v is not None]
    cand = [float(v) for v in candidate if v is not None]
    b, c = _center(base, spec.center), _center(cand, spec.center)
    if spec.relative:
        if b == c:
            change = 0.0
        elif b == 0 or math.isinf(b) or math.isinf(c):
            change = math.inf if c > b else -math.inf
        else:
            change = c / b - 1
    else:
        change = c - b
    # "worse" = larger for latency/errors/memory, smaller for throughput.
    lower, upper = (base, cand) if spec.higher_is_worse else (cand, base)
    worse = mann_whitney_greater(lower, upper)
    better = mann_whitney_greater(upper, lower)
    worse_by = change if spec.higher_is_worse else -change
    test = f"U {worse.method}"

    def significant(p: float, min_p: float) -> bool:
        # Too few rounds to ever reach alpha: demand complete separation instead (asv's fallback idea).
        return p < alpha if min_p < alpha else p <= min_p

    if not spec.tested:
        test = "threshold only"
    elif worse.min_p_value >= alpha:
        test += ", separation"
    if worse_by > spec.threshold and (not spec.tested or significant(worse.p_value, worse.min_p_value)):
        verdict = REGRESSION
    elif -worse_by > spec.threshold and (not spec.tested or significant(better.p_value, better.min_p_value)):
        verdict = IMPROVEMENT
    else:
        verdict = OK
    return Comparison(spec.key, spec.unit, b, c, change, spec.relative, spec.threshold, spec.higher_is_worse,
                      worse.p_value if spec.tested else None, better.p_value if spec.tested else None, test,
                      verdict)


def undecided(comparisons: Sequence[Comparison]) -> list[str]:
    """Metrics worse than their threshold without significance yet: more rounds can settle them."""
    return [c.key for c in comparisons
            if c.verdict == OK and c.p_worse is not None and c.change is not None
            and (c.change if c.higher_is_worse else -c.change) > c.threshold]


def compare_all(profile: Profile, baseline: Summary, candidate: Summary) -> list[Comparison]:
    return [compare(spec, baseline.series.get(spec.key, []), candidate.series.get(spec.key, []),
                    profile.thresholds.alpha) for spec in metric_specs(profile)]


@dataclass(frozen=True)
class SloCheck:
    name: str  # p95_s p99_s error_ratio peak_rss_bytes
    limit: float
    candidate: float | None
    baseline: float | None
    passed: bool | None  # None: not measured (no value), or not confirmed
    note: str = ""


SLO_FIELDS = ("p95_s", "p99_s", "error_ratio", "peak_rss_bytes")


def slo_checks(slo: SloClass, candidate: dict[str, float | None],
               baseline: dict[str, float | None] | None = None) -> list[SloCheck]:
    """Each limit the class states against the candidate's value (and the baseline's, for context)."""
    checks = []
    for name in SLO_FIELDS:
        limit = getattr(slo, name)
        if limit is None:
            continue
        value = candidate.get(name)
        passed = None if value is None else value <= limit
        checks.append(SloCheck(name, float(limit), value, (baseline or {}).get(name), passed))
    return checks
