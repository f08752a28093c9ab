"""perf_gate.live: the PromQL over the recording rules, and the verdicts from Prometheus's answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from perf_gate.gate import run_live
from perf_gate.live import Prometheus, queries, window_seconds
from perf_gate.profile import load_profile

from tests.support.env import ROOT
from tests.support.promql import rule_files

SEL = 'service="ofa-ve",instance="canary:8000"'
SERVICE = 'service="ofa-ve"'


def _recorded_names() -> set[str]:
    import yaml

    names = set()
    for path in rule_files(ROOT):
        for group in yaml.safe_load(Path(path).read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    return names


def test_queries_read_the_bundle_recording_rules() -> None:
    """Every recorded series the live mode reads is defined in prometheus/rules/."""
    recorded = _recorded_names()
    text = " ".join(queries(SEL, "30m").values())
    used = {name for name in recorded if name in text}
    assert {"instance_endpoint_le:ofa_ve_request_duration_seconds_bucket:rate5m",
            "instance:ofa_ve_requests:rate5m", "instance_result:ofa_ve_requests:rate5m"} <= used


def test_queries_apply_the_selector_and_window() -> None:
    """The selector and the endpoint matcher land inside every selector, the window in every range."""
    qs = queries(SEL, "15m")
    assert '{endpoint="entailment",service="ofa-ve",instance="canary:8000"}[15m]' in qs["p95_s"]
    assert "histogram_quantile(0.99" in qs["p99_s"]
    assert 'result="server_error"' in qs["error_ratio"]
    assert qs["requests"].endswith("* 900")
    assert all("[15m]" in q for q in qs.values())


@pytest.mark.parametrize(("window", "seconds"), [("30s", 30), ("30m", 1800), ("2h", 7200), ("1d", 86400)])
def test_window_durations(window: str, seconds: int) -> None:
    """Prometheus durations of one unit are understood."""
    assert window_seconds(window) == seconds


def test_bad_window_is_refused() -> None:
    """A window such as 1h30m or 10 is refused with an example."""
    with pytest.raises(ValueError, match="30m"):
        window_seconds("1h30m")


def _prometheus(values: dict[str, float | None]) -> Callable[[httpx.Request], httpx.Response]:
    qs = queries('service="ofa-ve"', "30m")

    def handler(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        name = next(n for n, q in qs.items() if q == query)
        value = values[name]
        result = [] if value is None else [{"metric": {}, "value": [1700000000, str(value)]}]
        data = {"resultType": "vector", "result": result}
        return httpx.Response(200, json={"status": "success", "data": data})

    return handler


def _live(handler: Callable[[httpx.Request], httpx.Response], slo_class: str = "gpu-large"):
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return run_live("default", slo_class, "http://prom:9090", SERVICE, "30m", 1.7e9, None, client)


GOOD = {"requests": 5000, "throughput_rps": 2.8, "p95_s": 0.3, "p99_s": 0.7, "error_ratio": 0.001,
        "peak_rss_bytes": 4e9}


def test_within_limits_passes() -> None:
    """Window values under every gpu-large limit: exit 0, each check listed."""
    result = _live(_prometheus(GOOD))
    assert result.exit_code == 0
    assert {c.name for c in result.slo} == {"p95_s", "p99_s", "error_ratio"}
    assert all(c.passed for c in result.slo)


def test_slow_window_fails_naming_the_limit() -> None:
    """A window P95 over the class's limit: exit 1 on that check alone."""
    result = _live(_prometheus({**GOOD, "p95_s": 0.9}))
    assert result.exit_code == 1
    assert [c.name for c in result.slo_breaches] == ["p95_s"]


def test_too_little_traffic_is_no_evidence() -> None:
    """Fewer requests than the class's min_requests: could not measure (exit 2), not pass."""
    result = _live(_prometheus({**GOOD, "requests": 12}))
    assert result.exit_code == 2
    assert result.error is not None and "fewer than the 300" in result.error.reason


def test_a_limit_without_a_value_is_not_a_pass() -> None:
    """Enough requests but no P95 (no latency histogram under the selector): exit 2 naming it, not a pass."""
    result = _live(_prometheus({**GOOD, "p95_s": None}))
    assert result.exit_code == 2
    assert result.error is not None and "no value for p95_s" in result.error.reason


def test_missing_series_are_not_measured() -> None:
    """No recorded series (rules not loaded, selector matching nothing) is exit 2."""
    result = _live(_prometheus(dict.fromkeys(GOOD)))
    assert result.exit_code == 2


def test_query_error_and_unreachable_prometheus_are_exit_2() -> None:
    """A 400 from Prometheus or a refused connection cannot be a pass."""

    def bad_query(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"status": "error", "error": "parse error"})

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert _live(bad_query).error is not None
    assert "parse error" in _live(bad_query).error.reason
    assert _live(down).exit_code == 2


def test_unknown_class_is_exit_2() -> None:
    """A class the profile does not state is refused, listing the ones it has."""
    result = _live(_prometheus(GOOD), slo_class="tpu-huge")
    assert result.exit_code == 2 and "cpu-tiny" in result.error.reason


def test_bearer_token_is_sent() -> None:
    """--bearer-token-file's token goes in the Authorization header."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "scalar",
                                                                       "result": [1.7e9, "1"]}})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        assert Prometheus("http://p", client, "s3cret").scalar("vector(1)", 1.7e9) == 1.0
    assert seen == ["Bearer s3cret"]


def test_profile_classes_state_both_limits_for_live() -> None:
    """Both bundled classes state a P95 limit and a minimum of traffic for live use."""
    for slo in load_profile().slo_classes.values():
        assert slo.p95_s and slo.min_requests >= 100
