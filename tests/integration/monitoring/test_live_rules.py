"""The recording rules over what the real ofa-ve metrics module exposes, scraped by a real Prometheus.

The promtool tests feed hand-written series; this checks the same rules against client_python's
actual exposition (label values such as `le="1.0"`, counter suffixes, the GPU collector's families).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server

from tests.integration.monitoring.conftest import Server, start_prometheus, stop
from tests.support.env import free_port
from tests.support.fake_nvml import make_fake_nvml, make_fake_torch

pytestmark = pytest.mark.integration

WAIT_S = 90
FAST_S, SLOW_S, INFERENCE_S, LAG_S = 0.3, 1.5, 0.2, 0.2


@dataclass
class Live:
    prometheus: Server
    metrics: Any


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """ofa-ve's metrics served over HTTP and scraped every second by Prometheus with the bundle's rules."""
    from ofa_ve.gpu import GpuCollector
    from ofa_ve.metrics import ServiceMetrics

    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, process_collectors=False)
    registry.register(GpuCollector(nvml=make_fake_nvml(gpu_count=1), torch_module=make_fake_torch()))
    port = free_port()
    httpd, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "ofa-ve",
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                "relabel_configs": [{"source_labels": ["job"], "target_label": "service"}],
            }
        ],
    }
    prometheus = start_prometheus(tmp_path_factory.mktemp("live-prometheus"), config)
    yield Live(prometheus, metrics)
    stop(prometheus)
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _values(prometheus: Server, expr: str) -> list[float]:
    reply = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10).json()
    return [float(r["value"][1]) for r in reply["data"]["result"]]


def test_recording_rules_compute_from_real_exposition(live: Live) -> None:
    """Half the requests slow and failing gives SLO ratios near 0.5, a P50 between the two, a stage mean;
    a steady 200 ms loop lag gives a lag P99 in its bucket."""
    checks = {
        'service:ofa_ve_slo_latency_errors:ratio_rate5m{service="ofa-ve"}': (0.3, 0.7),
        'service:ofa_ve_slo_availability_errors:ratio_rate5m{service="ofa-ve"}': (0.3, 0.7),
        'instance:ofa_ve_request_errors:ratio_rate5m{service="ofa-ve"}': (0.3, 0.7),
        'instance_quantile:ofa_ve_request_duration_seconds:histogram_quantile{quantile="0.5"}': (0.25, 1.5),
        'instance_stage:ofa_ve_stage_duration_seconds:mean5m{stage="inference"}': (0.19, 0.21),
        "instance_gpu:ofa_ve_gpu_memory:ratio": (2 / 24 - 0.001, 2 / 24 + 0.001),
        'instance_quantile:ofa_ve_event_loop_lag_seconds:histogram_quantile{quantile="0.99"}': (0.1, 0.25),
    }
    deadline = time.monotonic() + WAIT_S
    values: dict[str, list[float]] = {}
    while time.monotonic() < deadline:
        live.metrics.record_request("entailment", 200, FAST_S)
        live.metrics.record_request("entailment", 500, SLOW_S)
        live.metrics.observe_stage("inference", INFERENCE_S)
        live.metrics.loop_lag.observe(LAG_S)
        values = {expr: _values(live.prometheus, expr) for expr in checks}
        if all(len(v) == 1 and not math.isnan(v[0]) for v in values.values()):
            break
        time.sleep(0.5)
    for expr, (low, high) in checks.items():
        assert len(values[expr]) == 1, f"{expr}: {values[expr]}"
        assert low <= values[expr][0] <= high, f"{expr} = {values[expr][0]}"
