"""Windowed aggregates of the per-revision recorded series (prometheus/rules/revision.rules.yml).

One range query per family returns, for every window (an hour for the daily snapshot), one value per
replica, model, revision and the family's own labels:
- rates (requests, errors, histogram buckets, batch items and passes) become counts: the integral of
  the recorded 5-minute rate over the window, `sum_over_time(...) * rule interval`; a replica that
  served half the hour counts half an hour of requests;
- gauges (queue depth, GPU memory and utilisation) become their mean and their maximum.
Each window is (end - length, end], so consecutive windows split the samples exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from metrics_snapshot.promapi import PromClient

# Every family is grouped by these, then by its own labels.
REVISION_LABELS = ("instance", "model", "revision")


@dataclass(frozen=True)
class Family:
    """One recorded series and how a window is summarised."""

    key: str
    metric: str
    over_time: str  # "count" (a rate integrated over the window), "avg" or "max"
    labels: tuple[str, ...] = ()


FAMILIES = (
    Family("requests", "instance_revision_result:ofa_ve_requests:rate5m", "count", ("result",)),
    Family("errors", "instance_revision_type:ofa_ve_errors:rate5m", "count", ("type",)),
    Family("latency", "instance_revision_endpoint_le:ofa_ve_request_duration_seconds_bucket:rate5m", "count",
           ("endpoint", "le")),
    Family("stages", "instance_revision_stage_le:ofa_ve_stage_duration_seconds_bucket:rate5m", "count",
           ("stage", "le")),
    Family("batch_items", "instance_revision:ofa_ve_batch_size_sum:rate5m", "count"),
    Family("batches", "instance_revision:ofa_ve_batch_size_count:rate5m", "count"),
    Family("queue_depth_mean", "instance_revision:ofa_ve_queue_depth:max", "avg"),
    Family("queue_depth_max", "instance_revision:ofa_ve_queue_depth:max", "max"),
    Family("gpu_memory_mean", "instance_revision_gpu:ofa_ve_gpu_memory_used_bytes:max", "avg", ("gpu",)),
    Family("gpu_memory_max", "instance_revision_gpu:ofa_ve_gpu_memory_used_bytes:max", "max", ("gpu",)),
    Family("gpu_utilization_mean", "instance_revision_gpu:ofa_ve_gpu_utilization_ratio:max", "avg", ("gpu",)),
    Family("gpu_utilization_max", "instance_revision_gpu:ofa_ve_gpu_utilization_ratio:max", "max", ("gpu",)),
)  # fmt: skip

Key = tuple[str, ...]


def promql(family: Family, window_s: int, matchers: str = "") -> str:
    """The query for one family: one value per window and label set."""
    selection = f"{family.metric}{{{matchers}}}[{window_s}s]"
    by = ", ".join((*REVISION_LABELS, *family.labels))
    if family.over_time == "count":
        return f"sum by ({by}) (sum_over_time({selection}))"
    # One series per label set; max folds duplicates written by two Prometheus servers.
    return f"max by ({by}) ({family.over_time}_over_time({selection}))"


@dataclass
class Windows:
    """Per family, label set (instance, model, revision, own labels) and window end: the window's value."""

    length_s: int
    ends: list[int]
    values: dict[str, dict[Key, dict[int, float]]] = field(default_factory=dict)

    def family(self, key: str) -> dict[Key, dict[int, float]]:
        """The values of one family ({} when it had no data)."""
        return self.values.get(key, {})


def collect(
    client: PromClient, start: datetime, end: datetime, window_s: int, rule_interval_s: float,
    matchers: str = "", families: tuple[Family, ...] = FAMILIES,
) -> Windows:
    """Query every family over [start, end) cut into windows of `window_s` (a partial last window is
    dropped). `matchers` are label matchers added to every selection (model, revision, environment)."""
    if window_s <= 0:
        raise ValueError(f"window must be positive, got {window_s}")
    first_end = int(start.timestamp()) + window_s
    count = (int(end.timestamp()) - int(start.timestamp())) // window_s
    if count < 1:
        raise ValueError(f"range {start} .. {end} is shorter than one {window_s}s window")
    ends = [first_end + i * window_s for i in range(count)]
    out = Windows(window_s, ends)
    for family in families:
        scale = rule_interval_s if family.over_time == "count" else 1.0
        values: dict[Key, dict[int, float]] = {}
        for series in client.query_range(promql(family, window_s, matchers), ends[0], ends[-1], window_s):
            key = tuple(series.labels.get(label, "") for label in (*REVISION_LABELS, *family.labels))
            values[key] = {round(t): v * scale for t, v in series.points}
        out.values[family.key] = values
    return out
