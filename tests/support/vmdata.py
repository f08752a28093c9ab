"""Synthetic per-revision series (the recording rules' output), backfilled through VictoriaMetrics' import
API, with known hourly values: what the snapshot's tables must read back.

A value meant for hour [H, H+1h) is written at H+15 s, H+30 s, ... H+3600 s: the samples a window
(H, H+1h] holds, at the rule evaluation interval (15 s).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

import httpx

STEP_S = 15
HOUR_S = 3600
SERVICE = "ofa-ve"

# Cumulative fractions of requests at or under each bound (the rest up to +Inf: none). Every rank of
# P50/P90/P95/P99 falls strictly inside a bucket, so the interpolated quantiles are exact:
# P50 = 0.25 + 0.25 * 0.25 / 0.5 = 0.375, P90 = 0.75 + 0.25 * 0.025 / 0.0625 = 0.85,
# P95 = 1 + 0.5 * 0.0125 / 0.03125 = 1.2, P99 = 1.5 + 0.5 * 0.02125 / 0.03125 = 1.84.
LATENCY_SHAPE = {"0.1": 0.0, "0.25": 0.25, "0.5": 0.75, "0.75": 0.875, "1.0": 0.9375, "1.5": 0.96875,
                 "2.0": 1.0, "3.0": 1.0, "+Inf": 1.0}  # fmt: skip
LATENCY_QUANTILES = {"p50_seconds": 0.375, "p90_seconds": 0.85, "p95_seconds": 1.2, "p99_seconds": 1.84}
# Inference stage: half under 50 ms, all under 100 ms: P50 = 0.05, P95 = 0.05 + 0.05 * 0.45 / 0.5 = 0.095.
STAGE_SHAPE = {"0.025": 0.0, "0.05": 0.5, "0.1": 1.0, "+Inf": 1.0}


@dataclass
class Replica:
    """One replica's traffic: which revision it serves in which hours, its rates and gauges."""

    instance: str
    revision_of_hour: Callable[[int], str]
    success_rate: Callable[[int], float]  # requests/s in hour h
    server_error_rate: float = 0.125
    latency_scale: float = 1.0  # every request this many times slower (a slower model), same buckets
    model: str = "damo/ofa_large"
    queue_depth: tuple[float, float] = (2.0, 4.0)  # alternating within every hour: mean 3, max 4
    gpu_memory_bytes: float = 8e9
    gpu_utilization: float = 0.5
    batch_size: float = 4.0


def stretched(bound: str, scale: float) -> float:
    """The fraction of requests under `bound` when every latency of LATENCY_SHAPE is `scale` times longer:
    the shape's cumulative fraction (linear between its bounds) at bound / scale."""
    if bound == "+Inf":
        return 1.0
    x = float(bound) / scale
    knots = [(0.0, 0.0)] + [(float(b), f) for b, f in LATENCY_SHAPE.items() if b != "+Inf"]
    for (x0, f0), (x1, f1) in pairwise(knots):
        if x <= x1:
            return f0 + (f1 - f0) * (x - x0) / (x1 - x0)
    return 1.0


@dataclass
class SyntheticDay:
    """Series for `hours` hours from `start` (unix seconds), for every replica."""

    start: int
    hours: int
    replicas: list[Replica]
    extra_labels: dict[str, str] = field(default_factory=dict)

    def _labels(self, replica: Replica, hour: int, name: str, **more: str) -> dict[str, str]:
        return {"__name__": name, "service": SERVICE, "instance": replica.instance, "model": replica.model,
                "revision": replica.revision_of_hour(hour), **self.extra_labels, **more}

    def hourly(self, replica: Replica, hour: int) -> Iterator[tuple[dict[str, str], list[float]]]:
        """(labels, the 240 values of the hour) of every series of one replica in one hour."""
        n = HOUR_S // STEP_S
        ok, bad = replica.success_rate(hour), replica.server_error_rate
        everything = ok + bad

        def flat(value: float) -> list[float]:
            return [value] * n

        requests = "instance_revision_result:ofa_ve_requests:rate5m"
        yield self._labels(replica, hour, requests, result="success"), flat(ok)
        yield self._labels(replica, hour, requests, result="server_error"), flat(bad)
        errors = "instance_revision_type:ofa_ve_errors:rate5m"
        yield self._labels(replica, hour, errors, type="inference_failed"), flat(bad)
        for bound in LATENCY_SHAPE:
            name = "instance_revision_endpoint_le:ofa_ve_request_duration_seconds_bucket:rate5m"
            fraction = stretched(bound, replica.latency_scale)
            labels = self._labels(replica, hour, name, endpoint="entailment", le=bound)
            yield labels, flat(everything * fraction)
        for bound, fraction in STAGE_SHAPE.items():
            name = "instance_revision_stage_le:ofa_ve_stage_duration_seconds_bucket:rate5m"
            passes = everything * fraction / replica.batch_size
            yield self._labels(replica, hour, name, stage="inference", le=bound), flat(passes)
        yield self._labels(replica, hour, "instance_revision:ofa_ve_batch_size_sum:rate5m"), flat(everything)
        yield (self._labels(replica, hour, "instance_revision:ofa_ve_batch_size_count:rate5m"),
               flat(everything / replica.batch_size))
        low, high = replica.queue_depth
        yield (self._labels(replica, hour, "instance_revision:ofa_ve_queue_depth:max"),
               [low if i % 2 else high for i in range(n)])
        yield (self._labels(replica, hour, "instance_revision_gpu:ofa_ve_gpu_memory_used_bytes:max", gpu="0"),
               flat(replica.gpu_memory_bytes))
        yield (self._labels(replica, hour, "instance_revision_gpu:ofa_ve_gpu_utilization_ratio:max", gpu="0"),
               flat(replica.gpu_utilization))

    def lines(self) -> Iterator[str]:
        """Import lines (JSON, one series-hour each)."""
        for hour in range(self.hours):
            stamps = [(self.start + hour * HOUR_S + (i + 1) * STEP_S) * 1000 for i in range(HOUR_S // STEP_S)]
            for replica in self.replicas:
                for labels, values in self.hourly(replica, hour):
                    yield json.dumps({"metric": labels, "values": values, "timestamps": stamps})


def import_lines(vm_url: str, lines: Iterator[str], chunk: int = 2000) -> int:
    """POST JSON lines to /api/v1/import in chunks, then flush so queries see them; the lines sent."""
    sent, batch = 0, []
    with httpx.Client(base_url=vm_url, timeout=120) as client:
        for line in lines:
            batch.append(line)
            if len(batch) >= chunk:
                client.post("/api/v1/import", content="\n".join(batch)).raise_for_status()
                sent += len(batch)
                batch = []
        if batch:
            client.post("/api/v1/import", content="\n".join(batch)).raise_for_status()
            sent += len(batch)
        client.get("/internal/force_flush").raise_for_status()
    return sent


def expected_count(rate: float) -> float:
    """Requests in an hour at `rate` per second, as the snapshot computes it (15 s samples x 240)."""
    return rate * HOUR_S


def close(a: float, b: float) -> bool:
    """Equal to the snapshot's 6 decimals."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
