"""The one table of what evidence is asked of Prometheus, how it is shown and what it is taken to mean.

Three parts, read top to bottom like the README's copy of them:
- QUERIES: one PromQL query per fact, over ofa-ve's recording rules. `$sel` is the alert's instance
  (the `enrichment.match` labels plus `instance`), `$svc` the service (the match labels alone), `$expr`
  the alert's own expression without its threshold (from its generatorURL).
- LINES: the lines of live numbers under an alert, as format templates over the facts.
- DIAGNOSES: conclusions drawn from the facts, first match first; each is a condition and a sentence
  in both languages. A row with `each` is stated once per item of that fact (one line per error type);
  a `fallback` row only when no other row holds.
- CHART: the series of the one PNG (the last hour, one line per instance).

Format specs in the templates: `s` seconds, `pct` a ratio as a percentage, `rate` per second, `n` a
count, `x` a factor, `t` a time (shown in each target's time zone), `by_s` / `by_pct` / `by_rate` the
largest three of a breakdown. A fact that is missing shows as `–`; a line whose `needs` fact is missing
is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# ofa-ve's server error codes (ofa_ve.errors.SERVER_ERROR_CODES; a test keeps the two equal), and the
# ones that are load shedding rather than failures.
SERVER_ERRORS = (
    "overloaded", "queue_full", "deadline_exceeded", "not_ready", "gpu_out_of_memory", "device_fault",
    "inference_failed", "internal_error",
)
SHED_ERRORS = ("overloaded", "queue_full", "not_ready")
_SERVER = "|".join(SERVER_ERRORS)


@dataclass(frozen=True)
class Query:
    """One fact. `by`: one value per value of this label; `at`: now, an hour ago, or the last hour
    (`range`, one point a minute)."""

    name: str
    promql: str
    by: str | None = None
    at: str = "now"


QUERIES: tuple[Query, ...] = (
    Query("value", "$expr"),
    Query("value_hour_ago", "$expr", at="hour_ago"),
    Query("up", "min(up{$sel})"),
    Query("qps", "sum(instance:ofa_ve_requests:rate5m{$sel})"),
    # `or vector(0)`: no server error ever counted is a ratio of 0, not a missing one.
    Query("error_ratio", "(sum(instance_result:ofa_ve_requests:rate5m"
                         '{$sel,result="server_error"}) or vector(0))'
                         " / sum(instance:ofa_ve_requests:rate5m{$sel})"),
    Query("errors_by_type", f'sum by (type) (rate(ofa_ve_errors_total{{$sel,type=~"{_SERVER}"}}[5m]))'
                            " / on () group_left () sum(instance:ofa_ve_requests:rate5m{$sel})", by="type"),
    Query("errors_since", f'sum by (type) (increase(ofa_ve_errors_total{{$sel,type=~"{_SERVER}"}}[2m]))',
          by="type", at="range"),
    Query("p95", "max(instance_endpoint_quantile:ofa_ve_request_duration_seconds:histogram_quantile"
                 '{$sel,endpoint="entailment",quantile="0.95"})'),
    Query("p95_stage", "max by (stage) (instance_stage_quantile:ofa_ve_stage_duration_seconds:"
                       'histogram_quantile{$sel,quantile="0.95"})', by="stage"),
    Query("p95_wait", "histogram_quantile(0.95, sum by (le) "
                      "(rate(ofa_ve_request_wait_seconds_bucket{$sel}[5m])))"),
    Query("queue_depth", "sum(ofa_ve_queue_depth{$sel})"),
    Query("queue_capacity", "sum(ofa_ve_queue_capacity{$sel})"),
    Query("rejected", "sum by (reason) (rate(ofa_ve_rejected_total{$sel}[5m]))", by="reason"),
    Query("gpu_memory", "max by (gpu) (instance_gpu:ofa_ve_gpu_memory:ratio{$sel})", by="gpu"),
    Query("gpu_util", "max by (gpu) (ofa_ve_gpu_utilization_ratio{$sel})", by="gpu"),
    Query("revision", "max by (revision) (ofa_ve_model_info{$sel})", by="revision"),
    Query("replicas", "count(ofa_ve_model_ready{$svc})"),
    Query("replicas_ready", "sum(ofa_ve_model_ready{$svc})"),
    Query("replicas_expected", "max(service:ofa_ve_replicas_expected:max{$svc})"),
)


@dataclass(frozen=True)
class LineSpec:
    """One line of live numbers: shown when the fact `needs` is there."""

    needs: str
    en: str
    zh: str


LINES: tuple[LineSpec, ...] = (
    LineSpec("value", "**Alert value**: {value:v} now · {value_hour_ago:v} an hour ago",
             "**告警值**：当前 {value:v} · 1 小时前 {value_hour_ago:v}"),
    LineSpec("qps", "**Traffic**: {qps:rate} · server errors {error_ratio:pct}{errors_by_type:by_pct}",
             "**流量**：{qps:rate} · 服务端错误 {error_ratio:pct}{errors_by_type:by_pct}"),
    LineSpec("p95", "**P95 by stage**: {p95:s} in all{p95_parts:by_s}",
             "**分阶段 P95**：总计 {p95:s}{p95_parts:by_s}"),
    LineSpec("queue_depth", "**Queue**: {queue_depth:n} of {queue_capacity:n} · rejected {rejected_rate:rate}"
                            "{rejected:by_rate}",
             "**队列**：{queue_depth:n}/{queue_capacity:n} · 拒绝 {rejected_rate:rate}{rejected:by_rate}"),
    LineSpec("gpu_memory_max", "**GPU**: memory {gpu_memory_max:pct} · utilisation {gpu_util_max:pct}",
             "**GPU**：显存 {gpu_memory_max:pct} · 利用率 {gpu_util_max:pct}"),
    LineSpec("revision",
             "**Model**: revision {revision} · ready on {replicas_ready:n} of {replicas_total:n} replicas",
             "**模型**：版本 {revision} · {replicas_total:n} 个副本中 {replicas_ready:n} 个就绪"),
)


Facts = Mapping[str, Any]


def at_least(facts: Facts, name: str, limit: float) -> bool:
    value = facts.get(name)
    return isinstance(value, int | float) and value >= limit


def at_most(facts: Facts, name: str, limit: float) -> bool:
    value = facts.get(name)
    return isinstance(value, int | float) and value <= limit


@dataclass(frozen=True)
class Diagnosis:
    """A conclusion: stated when `when(facts)` holds (for `each`: once per item of that fact, whose
    key and value are then `item` and `since` / the item's own facts)."""

    key: str
    when: Callable[[Facts], bool]
    en: str
    zh: str
    each: str | None = None
    fallback: bool = False


DIAGNOSES: tuple[Diagnosis, ...] = (
    Diagnosis("down", lambda f: f.get("up") == 0,
              "the instance is not scraped (up = 0): its numbers below are stale or missing",
              "该实例抓取失败（up = 0）：下列数据可能过时或缺失"),
    Diagnosis("not_ready", lambda f: at_least(f, "not_ready", 1),
              "model not ready on {not_ready:n} of {replicas_total:n} replicas",
              "{replicas_total:n} 个副本中有 {not_ready:n} 个模型未就绪"),
    Diagnosis("errors", lambda f: True,
              "{item} errors since {since:t} ({ratio:pct} of requests now)",
              "自 {since:t} 起出现 {item} 错误（当前占请求 {ratio:pct}）",
              each="failures_since"),
    Diagnosis("saturated", lambda f: at_least(f, "queue_share", 0.5)
              and (at_least(f, "queue_fill", 0.25) or at_least(f, "rejected_rate", 0.01)),
              "queue wait is {queue_share:pct} of P95: saturated, not slow inference",
              "排队等待占 P95 的 {queue_share:pct}：容量饱和，而不是推理变慢"),
    Diagnosis("batching", lambda f: at_least(f, "queue_share", 0.5)
              and at_most(f, "queue_fill", 0.25) and not at_least(f, "rejected_rate", 0.01),
              "queue wait is {queue_share:pct} of P95 with the queue nearly empty: the batching window "
              "or long forward passes, not load",
              "排队等待占 P95 的 {queue_share:pct} 但队列几乎为空：来自攒批等待或单次推理过长，而不是负载"),
    Diagnosis("slow_inference",
              lambda f: at_least(f, "inference_share", 0.5) and at_most(f, "queue_share", 0.2),
              "inference is {inference_share:pct} of P95 with an empty queue: the model itself is slow "
              "(GPU, input sizes, batch size)",
              "推理占 P95 的 {inference_share:pct} 且队列不积压：模型本身变慢（GPU、输入尺寸、批大小）"),
    Diagnosis("event_loop", lambda f: at_least(f, "wait_share", 0.3),
              "waiting for the event loop is {wait_share:pct} of P95: the process is blocked, not the GPU",
              "等待事件循环占 P95 的 {wait_share:pct}：进程被阻塞，而不是 GPU 慢"),
    Diagnosis("shedding", lambda f: at_least(f, "rejected_rate", 0.01),
              "shedding load: {rejected_rate:rate} refused{rejected:by_rate}",
              "正在限流：拒绝 {rejected_rate:rate}{rejected:by_rate}"),
    Diagnosis("gpu_memory", lambda f: at_least(f, "gpu_memory_max", 0.9),
              "GPU memory {gpu_memory_max:pct} full: out-of-memory splits and errors are next",
              "GPU 显存已用 {gpu_memory_max:pct}：接下来会出现显存不足的拆分和错误"),
    Diagnosis("new", lambda f: at_least(f, "value_change", 2),
              "{value_change:x} the value of an hour ago: it started within the hour",
              "是 1 小时前的 {value_change:x}：问题在最近 1 小时内出现"),
    Diagnosis("old", lambda f: at_least(f, "value_change", 0.8) and at_most(f, "value_change", 1.25),
              "about the same an hour ago: not new, look further back",
              "与 1 小时前相近：不是新问题，请查看更早的数据"),
    Diagnosis("idle", lambda f: f.get("qps") == 0,
              "no requests in the last 5 minutes",
              "最近 5 分钟没有请求"),
    Diagnosis("none", lambda f: f.get("qps") is not None,
              "no known pattern in these numbers (queue, stages, errors, GPU, replicas): follow the runbook",
              "这些数据不符合已知模式（队列、阶段、错误、GPU、副本）：请按处理手册排查",
              fallback=True),
)


@dataclass(frozen=True)
class Series:
    """One panel of the chart: a PromQL expression with one line per instance."""

    title: str
    promql: str
    unit: str  # s | pct | rate | n


CHART: tuple[Series, ...] = (
    Series("P95 latency", "max by (instance) (instance_endpoint_quantile:ofa_ve_request_duration_seconds:"
                          'histogram_quantile{$sel,endpoint="entailment",quantile="0.95"})', "s"),
    Series("Requests per second", "sum by (instance) (instance:ofa_ve_requests:rate5m{$sel})", "rate"),
    Series("Server error ratio",
           "max by (instance) (instance:ofa_ve_request_errors:ratio_rate5m{$sel})", "pct"),
    Series("Queue depth", "sum by (instance) (ofa_ve_queue_depth{$sel})", "n"),
)
