"""A fake Prometheus query API (httpx.MockTransport) answering the snapshot's range queries with constant
per-window values, for unit tests of the exporter, the service and the comparison."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx

RULE_INTERVAL_S = 15.0
_METRIC = re.compile(r"(instance_revision\w*:[\w:]+)\{([^}]*)\}\[(\d+)s\]")
_MATCHER = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class FakeQueryApi:
    """series: metric name -> [(labels, value per window)]: a rate, or a gauge's mean/max (same value).
    `fail` decides, per (expr, start, end), whether to answer 503 instead."""

    series: dict[str, list[tuple[dict[str, str], float]]]
    fail: Callable[[str, float, float], bool] = lambda expr, start, end: False
    queries: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        expr, start, end, step = form["query"], float(form["start"]), float(form["end"]), float(form["step"])
        self.queries.append(expr)
        if self.fail(expr, start, end):
            return httpx.Response(503, json={"status": "error", "error": "fake outage"})
        found = _METRIC.search(expr)
        assert found, expr
        metric, matchers, window = found.group(1), dict(_MATCHER.findall(found.group(2))), int(found.group(3))
        scale = window / RULE_INTERVAL_S if "sum_over_time" in expr else 1.0
        stamps = [start + i * step for i in range(int((end - start) // step) + 1)]
        result = []
        for labels, value in self.series.get(metric, []):
            if all(labels.get(k) == v for k, v in matchers.items()):
                result.append({"metric": labels, "values": [[t, str(value * scale)] for t in stamps]})
        data = {"resultType": "matrix", "result": result}
        return httpx.Response(200, json={"status": "success", "data": data})


def revision_series(instance: str, revision: str, qps: float = 2.0) -> dict[str, list[tuple[dict, float]]]:
    """A replica serving `revision` at `qps` (10 % server errors), latencies shaped as in vmdata."""
    from tests.support.vmdata import LATENCY_SHAPE, STAGE_SHAPE

    base = {"instance": instance, "model": "damo/ofa_large", "revision": revision}
    return {
        "instance_revision_result:ofa_ve_requests:rate5m": [
            ({**base, "result": "success"}, qps * 0.9), ({**base, "result": "server_error"}, qps * 0.1)],
        "instance_revision_type:ofa_ve_errors:rate5m": [({**base, "type": "inference_failed"}, qps * 0.1)],
        "instance_revision_endpoint_le:ofa_ve_request_duration_seconds_bucket:rate5m": [
            ({**base, "endpoint": "entailment", "le": le}, qps * f) for le, f in LATENCY_SHAPE.items()],
        "instance_revision_stage_le:ofa_ve_stage_duration_seconds_bucket:rate5m": [
            ({**base, "stage": "inference", "le": le}, qps * f) for le, f in STAGE_SHAPE.items()],
        "instance_revision:ofa_ve_batch_size_sum:rate5m": [(base, qps)],
        "instance_revision:ofa_ve_batch_size_count:rate5m": [(base, qps / 4)],
        "instance_revision:ofa_ve_queue_depth:max": [(base, 3.0)],
        "instance_revision_gpu:ofa_ve_gpu_memory_used_bytes:max": [({**base, "gpu": "0"}, 8e9)],
        "instance_revision_gpu:ofa_ve_gpu_utilization_ratio:max": [({**base, "gpu": "0"}, 0.5)],
    }  # fmt: skip
