"""After deploy: the SLO class's limits checked against what Prometheus (or VictoriaMetrics) recorded.

Every quantity comes from the bundle's recording rules (prometheus/rules/ofa-ve.rules.yml), averaged
over the window: the average of a 5-minute rate over the window is the window's rate, so the P95 is
the window's P95 of the single-pair endpoint, not the worst 5 minutes of it. Peak RSS is the raw
`process_resident_memory_bytes` maximum (no rule records it). The selector picks the replicas to
judge, e.g. a canary's `instance`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import httpx

from perf_gate.decision import SloCheck, slo_checks
from perf_gate.errors import CouldNotMeasure
from perf_gate.profile import SloClass

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
BUCKETS = "instance_endpoint_le:ofa_ve_request_duration_seconds_bucket:rate5m"
REQUESTS = "instance:ofa_ve_requests:rate5m"
RESULTS = "instance_result:ofa_ve_requests:rate5m"


def window_seconds(window: str) -> int:
    """Seconds of a Prometheus duration such as 30m (one unit only)."""
    found = _DURATION.match(window)
    if not found:
        raise ValueError(f"window {window!r}: expected a number and one of s, m, h, d (e.g. 30m)")
    return int(found.group(1)) * _SECONDS[found.group(2)]


def _with(selector: str, extra: str = "") -> str:
    parts = [p for p in (extra, selector.strip().strip("{}")) if p]
    return "{" + ",".join(parts) + "}"


def queries(selector: str, window: str) -> dict[str, str]:
    """The PromQL per quantity (selector: label matchers such as `service="ofa-ve"`)."""
    w = window_seconds(window)
    single = _with(selector, 'endpoint="entailment"')
    every = _with(selector)
    failed = _with(selector, 'result="server_error"')

    def quantile(q: str) -> str:
        return f"histogram_quantile({q}, sum by (le) (avg_over_time({BUCKETS}{single}[{window}])))"

    return {
        "requests": f"sum(avg_over_time({REQUESTS}{every}[{window}])) * {w}",
        "throughput_rps": f"sum(avg_over_time({REQUESTS}{every}[{window}]))",
        "p95_s": quantile("0.95"),
        "p99_s": quantile("0.99"),
        "error_ratio": (
            f"(sum(avg_over_time({RESULTS}{failed}[{window}])) or vector(0))"
            f" / sum(avg_over_time({REQUESTS}{every}[{window}]))"
        ),
        "peak_rss_bytes": f"max(max_over_time(process_resident_memory_bytes{every}[{window}]))",
    }


@dataclass(frozen=True)
class LiveResult:
    at: str
    values: dict[str, float | None]
    checks: list[SloCheck]
    queries: dict[str, str]


class Prometheus:
    """The instant-query API of Prometheus or VictoriaMetrics."""

    def __init__(self, url: str, client: httpx.Client, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def scalar(self, query: str, at: float) -> float | None:
        """The single value of `query` at `at`, None when it has no sample (or is NaN)."""
        try:
            reply = self.client.get(f"{self.url}/api/v1/query", params={"query": query, "time": f"{at:.3f}"},
                                    headers=self.headers, timeout=30)
        except httpx.TransportError as exc:
            raise CouldNotMeasure(f"Prometheus at {self.url} unreachable: {exc}") from exc
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.status_code != 200 or body.get("status") != "success":
            raise CouldNotMeasure(f"Prometheus answered {reply.status_code} to {query!r}: "
                                  f"{body.get('error') or reply.text[:300]}")
        result = body["data"]["result"]
        if body["data"].get("resultType") == "scalar":
            value = float(result[1])
        elif not result:
            return None
        elif len(result) > 1:
            raise CouldNotMeasure(f"{query!r} gave {len(result)} series, expected one")
        else:
            value = float(result[0]["value"][1])
        return None if value != value else value  # NaN: no traffic (0/0)


def check_live(prom: Prometheus, slo: SloClass, selector: str, window: str, at: float) -> LiveResult:
    """Reads every quantity over the window ending at `at` and checks the class's limits."""
    qs = queries(selector, window)
    values = {name: prom.scalar(q, at) for name, q in qs.items()}
    requests = values["requests"] or 0.0
    stamp = dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")
    if requests < slo.min_requests:
        raise CouldNotMeasure(
            f"only {requests:.0f} requests matched {selector or '(all)'} in the {window} before {stamp}, "
            f"fewer than the {slo.min_requests} the class needs as evidence (or the recording rules are "
            "missing)")
    checks = slo_checks(slo, values)
    # A limit nothing could be compared with is not met: e.g. requests counted but no latency histogram
    # under the selector (another endpoint, rules of another version), or no RSS series.
    unmeasured = [c.name for c in checks if c.candidate is None]
    if unmeasured:
        raise CouldNotMeasure(
            f"{requests:.0f} requests matched {selector or '(all)'} in the {window} before {stamp}, but "
            f"Prometheus gave no value for {', '.join(unmeasured)}: that limit cannot be checked")
    return LiveResult(stamp, values, checks, qs)
