"""ServiceMetrics values, read back from a fresh registry."""

from __future__ import annotations

import platform

import pytest
from ofa_ve import __version__
from ofa_ve.metrics import REQUEST_BUCKETS, ServiceMetrics, result_for
from prometheus_client import CollectorRegistry


@pytest.fixture
def metrics() -> ServiceMetrics:
    """Metrics on a fresh registry."""
    return ServiceMetrics(CollectorRegistry())


@pytest.mark.parametrize(
    ("status", "result"),
    [(200, "success"), (400, "client_error"), (413, "client_error"), (429, "client_error"),
     (500, "server_error"), (503, "server_error"), (504, "server_error")],
)
def test_result_classes(status: int, result: str) -> None:
    """4xx are client errors, 5xx (503 and 504 included) are server errors."""
    assert result_for(status) == result


def test_record_request_counts_and_times(metrics: ServiceMetrics) -> None:
    """A recorded request increments its counter and lands in the latency histogram."""
    metrics.record_request("entailment", 415, 0.02)
    metrics.record_request("entailment", 200, 0.2)
    get = metrics.registry.get_sample_value
    assert get("ofa_ve_requests_total",
               {"endpoint": "entailment", "status_code": "415", "result": "client_error"}) == 1
    assert get("ofa_ve_requests_total",
               {"endpoint": "entailment", "status_code": "200", "result": "success"}) == 1
    assert get("ofa_ve_request_duration_seconds_count", {"endpoint": "entailment"}) == 2
    assert get("ofa_ve_request_duration_seconds_bucket", {"endpoint": "entailment", "le": "0.025"}) == 1


def test_request_buckets_span_10ms_to_30s() -> None:
    """The latency buckets are the contract's: 10 ms to 30 s."""
    assert REQUEST_BUCKETS[0] == 0.01
    assert REQUEST_BUCKETS[-1] == 30


def test_rejections_are_errors_too(metrics: ServiceMetrics) -> None:
    """queue_full increments both the error and the rejection counters; client errors only the first."""
    metrics.record_error("queue_full")
    metrics.record_error("corrupt_image")
    get = metrics.registry.get_sample_value
    assert get("ofa_ve_rejected_total", {"reason": "queue_full"}) == 1
    assert get("ofa_ve_errors_total", {"type": "queue_full", "cause": ""}) == 1
    assert get("ofa_ve_errors_total", {"type": "corrupt_image", "cause": ""}) == 1
    assert get("ofa_ve_rejected_total", {"reason": "not_ready"}) == 0


def test_known_label_values_start_at_zero(metrics: ServiceMetrics) -> None:
    """Rejection reasons and error types exist at 0 before anything happens."""
    get = metrics.registry.get_sample_value
    for reason in ("queue_full", "deadline_exceeded", "not_ready"):
        assert get("ofa_ve_rejected_total", {"reason": reason}) == 0
    assert get("ofa_ve_errors_total", {"type": "image_too_many_pixels", "cause": ""}) == 0


def test_build_info_and_process_metrics(metrics: ServiceMetrics) -> None:
    """Build info carries the version and Python; process metrics are on the same registry."""
    get = metrics.registry.get_sample_value
    assert get("ofa_ve_build_info", {"version": __version__, "python": platform.python_version()}) == 1
    assert get("process_resident_memory_bytes") > 0
    assert get("python_info", {"implementation": platform.python_implementation(),
                               "major": "3", "minor": platform.python_version_tuple()[1],
                               "patchlevel": platform.python_version_tuple()[2],
                               "version": platform.python_version()}) == 1


def test_two_registries_do_not_clash() -> None:
    """ServiceMetrics can be built twice in one process on separate registries."""
    a, b = ServiceMetrics(CollectorRegistry()), ServiceMetrics(CollectorRegistry())
    a.in_flight.inc()
    assert b.registry.get_sample_value("ofa_ve_in_flight_requests") == 0


def test_model_state_starts_loading_with_all_states_present(metrics: ServiceMetrics) -> None:
    """All three state series exist from the start, one-hot on loading, and model_ready is 0."""
    get = metrics.registry.get_sample_value
    assert [get("ofa_ve_model_state", {"state": s}) for s in ("loading", "ready", "failed")] == [1, 0, 0]
    assert get("ofa_ve_model_ready") == 0


@pytest.mark.parametrize(("state", "ready"), [("loading", 0), ("ready", 1), ("failed", 0)])
def test_set_model_state_is_one_hot(metrics: ServiceMetrics, state: str, ready: int) -> None:
    """Setting a state lights exactly its series; model_ready is 1 only for ready."""
    metrics.set_model_state("ready")
    metrics.set_model_state(state)
    get = metrics.registry.get_sample_value
    values = {s: get("ofa_ve_model_state", {"state": s}) for s in ("loading", "ready", "failed")}
    assert values == {s: (1 if s == state else 0) for s in values}
    assert get("ofa_ve_model_ready") == ready


def test_unknown_model_state_is_refused(metrics: ServiceMetrics) -> None:
    """A state outside loading/ready/failed raises instead of growing the label set."""
    with pytest.raises(ValueError, match="unknown model state"):
        metrics.set_model_state("warming")
