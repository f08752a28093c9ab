"""perf_gate.report: exit codes, the Markdown a PR comment shows, and JSON without infinities."""

from __future__ import annotations

import json
import math

from perf_gate.decision import OK, REGRESSION, Comparison, SloCheck
from perf_gate.errors import CouldNotMeasure
from perf_gate.report import GateResult, fmt, markdown, to_json_text


def _comparison(key: str, verdict: str, change: float = 0.0, candidate: float = 0.05) -> Comparison:
    p_worse = 0.0001 if verdict == REGRESSION else 0.4
    return Comparison(key, "s", 0.04, candidate, change, True, 0.10, True, p_worse, 0.9, "U exact", verdict)


def _result(**kwargs) -> GateResult:
    defaults = {"mode": "ab", "profile": {"name": "default", "sha256": "ab" * 32}, "rounds": 8,
                "alpha": 0.005,
                "builds": [{"role": "baseline", "source": "ref:main", "detail": "main = 1234", "url": ""},
                           {"role": "candidate", "source": "path:.", "detail": "/src", "url": ""}]}
    return GateResult(**{**defaults, **kwargs})


def test_pass_is_exit_0_and_says_so() -> None:
    """No regression and the SLO met: exit 0, a PASS headline and the table."""
    result = _result(comparisons=[_comparison("single-c1 p50", OK, 0.01)], slo_class="cpu-tiny",
                     slo=[SloCheck("p95_s", 0.5, 0.1, 0.1, True)])
    assert result.exit_code == 0
    text = markdown(result)
    assert text.startswith("### perf-gate (ab): PASS: no regression, SLO `cpu-tiny` met")
    assert "| single-c1 p50 | 40.0 ms | 50.0 ms | +1.0 % | +10 % | 0.40 | ok |" in text
    assert "`ref:main` (main = 1234)" in text


def test_regression_is_exit_1_and_listed_first() -> None:
    """A regression gives exit 1, a FAIL headline and a bullet with the change, threshold and p-value."""
    result = _result(comparisons=[_comparison("single-c1 p50", REGRESSION, 0.25)])
    assert result.exit_code == 1
    text = markdown(result)
    assert text.startswith("### perf-gate (ab): FAIL: 1 regression")
    assert "- `single-c1 p50`: 40.0 ms → 50.0 ms (+25.0 %, threshold +10 %, p = 0.0001)" in text
    assert "**REGRESSION**" in text


def test_slo_breach_alone_fails() -> None:
    """The candidate over an absolute limit fails even when it is no slower than the baseline."""
    result = _result(comparisons=[_comparison("single-c1 p50", OK)], slo_class="cpu-tiny",
                     slo=[SloCheck("p95_s", 0.5, 0.7, 0.69, False)])
    assert result.exit_code == 1
    assert "SLO `cpu-tiny` breached (P95 latency)" in markdown(result)


def test_could_not_measure_is_exit_2_with_the_log_tail() -> None:
    """A measurement failure is exit 2; the reason heads the summary and the log tail follows."""
    result = _result(error=CouldNotMeasure("candidate exited with code 1", "Traceback: boom"))
    assert result.exit_code == 2
    text = markdown(result)
    assert "COULD NOT MEASURE: candidate exited with code 1" in text
    assert "Traceback: boom" in text


def test_json_has_no_infinity_and_carries_the_verdict() -> None:
    """An infinite latency (no answer) becomes null, so any JSON reader can load the file."""
    result = _result(comparisons=[_comparison("single-c1 p50", REGRESSION, math.inf, math.inf)])
    data = json.loads(to_json_text(result))
    assert data["exit_code"] == 1 and data["verdict"] == "regression"
    assert data["comparisons"][0]["candidate"] is None
    assert "Infinity" not in to_json_text(result)


def test_units_are_shown_for_people() -> None:
    """Latency in ms under a second, memory in MiB, ratios in %."""
    assert fmt(0.0421, "s") == "42.1 ms"
    assert fmt(1.5, "s") == "1.50 s"
    assert fmt(3 * 2**20, "bytes") == "3 MiB"
    assert fmt(0.005, "ratio") == "0.50 %"
    assert fmt(None, "s") == "-"
    assert fmt(math.inf, "s") == "no answer"
