"""Input series with the shapes the running system produces over hours, for promtool rule tests.

Hand-typed series (`0+3x30`) test one event at a time. What goes wrong in production takes hours:
a robot that keeps failing is retried ever more rarely (2 s doubling to 10 minutes), a replica that
cannot load its model waits up to 5 minutes between attempts, a stopped replica's series simply
end. These generators replay that at Prometheus' scrape interval, one value per scrape from t = 0,
using the services' own retry code and defaults, so a change there reaches the alert tests.

Time compression: none. Every time here is real seconds; promtool evaluates them as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yaml
from ofa_ve.loading import load_retry_delay
from webhook_relay.config import Delivery
from webhook_relay.sender import backoff_delay

from tests.support.monitoring import PROMETHEUS_DIR
from tests.support.promql import duration_seconds

_GLOBAL = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))["global"]
# The committed scrape and rule-evaluation intervals: the generated series and tests use both.
SCRAPE_INTERVAL_S = duration_seconds(_GLOBAL["scrape_interval"])
EVALUATION_INTERVAL_S = duration_seconds(_GLOBAL["evaluation_interval"])

# The two extremes of the relay's jitter: `rand` 0 shortens every wait by jitter_ratio, the largest
# float below 1 lengthens it by as much.
JITTER_SHORTEST = 0.0
JITTER_LONGEST = math.nextafter(1.0, 0.0)

STALE = "stale"
# One scrape's value: a number, None for "no sample" (the target was not there), or STALE for the
# staleness marker Prometheus writes when a target vanishes from discovery.
Value = float | str | None

RELAY_LABELS = {"job": "webhook-relay", "service": "webhook-relay", "instance": "webhook-relay:8080"}
OFA_VE_LABELS = {"job": "ofa-ve", "service": "ofa-ve"}
MODEL_STATES = ("downloading", "loading", "ready", "failed")  # downloading: 0 here (a local model)


@dataclass(frozen=True)
class Series:
    """One input series: a metric, its labels, and one value per scrape from t = 0."""

    name: str
    labels: dict[str, str]
    values: tuple[Value, ...]

    def promtool(self) -> dict[str, str]:
        """The `input_series` entry of a promtool test file."""
        selector = ",".join(f'{key}="{value}"' for key, value in self.labels.items())
        return {"series": f"{self.name}{{{selector}}}", "values": " ".join(_text(v) for v in self.values)}


def _text(value: Value) -> str:
    if value is None:
        return "_"
    if value == STALE:
        return STALE
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def scrape_times(end_s: float) -> list[float]:
    """Every scrape from 0 up to and including end_s."""
    return [i * SCRAPE_INTERVAL_S for i in range(int(end_s // SCRAPE_INTERVAL_S) + 1)]


# --- webhook-relay: one message to a robot that keeps failing ------------------------------------


@dataclass(frozen=True)
class RelayRetries:
    """A robot failing from `attempts[0]` on, retried with the relay's backoff until it works again."""

    attempts: tuple[float, ...]  # times of the failed attempts
    recovered_s: float  # the first attempt after the fix: it delivers, the target stops failing
    end_s: float
    series: tuple[Series, ...]

    @property
    def first_failure_s(self) -> float:
        return self.attempts[0]

    @property
    def longest_wait_s(self) -> float:
        return max(b - a for a, b in zip(self.attempts, (*self.attempts[1:], self.recovered_s), strict=True))


def relay_failure_times(start_s: float, fixed_s: float, rand: float) -> tuple[list[float], float]:
    """Failed attempt times from start_s, and the time of the first attempt at or after fixed_s.

    The relay's own schedule: `backoff_delay` with the default `Delivery` settings after the n-th
    failure, the same `rand` every time (one jitter extreme). The sender pauses the whole target
    after a failure, so one message's schedule is the target's: the fewest failures, the longest
    quiet gaps.
    """
    cfg = Delivery()
    attempts: list[float] = []
    at = start_s
    while at < fixed_s:
        attempts.append(at)
        at += backoff_delay(cfg, len(attempts), rand)
    if at - start_s > cfg.give_up_after_seconds:
        raise ValueError("the message would be dead-lettered before the fix: shorten the outage")
    return attempts, at


def relay_retry_shape(
    *,
    start_s: float,
    fixed_s: float,
    end_s: float,
    rand: float,
    target: str = "dingtalk-ops",
    channel: str = "dingtalk",
    reason: str = "timeout",
) -> RelayRetries:
    """`webhook_relay_target_failing` and `webhook_relay_messages_failed_total` of one failing target.

    The gauge is 1 from the first failed attempt until the attempt that delivers (it holds through
    the backoff waits, as the relay reads it from its outbox); the counter exists at 0 from the
    first scrape (the relay initialises every reason) and grows by one per failed attempt.
    """
    attempts, recovered = relay_failure_times(start_s, fixed_s, rand)
    times = scrape_times(end_s)
    labels = {**RELAY_LABELS, "target": target, "channel": channel}
    failing = tuple(1.0 if attempts[0] <= t < recovered else 0.0 for t in times)
    failed = tuple(float(sum(1 for a in attempts if a <= t)) for t in times)
    return RelayRetries(
        attempts=tuple(attempts),
        recovered_s=recovered,
        end_s=end_s,
        series=(
            Series("webhook_relay_target_failing", labels, failing),
            Series("webhook_relay_messages_failed_total", {**labels, "reason": reason}, failed),
        ),
    )


# --- ofa-ve: a replica retrying its model load ----------------------------------------------------


@dataclass(frozen=True)
class ModelLoad:
    """A replica that starts loading at t = 0, fails until `fixed_s`, then loads the model."""

    failures: tuple[float, ...]  # times of the failed attempts
    ready_s: float  # when the model became ready (inf: never, within end_s)
    end_s: float
    series: tuple[Series, ...]

    @property
    def longest_gap_s(self) -> float:
        """The longest time between two failures: what a failure window must outlast."""
        return max((b - a for a, b in zip(self.failures, self.failures[1:], strict=False)), default=0.0)


def model_load_shape(
    *, attempt_s: float, fixed_s: float, end_s: float, instance: str = "10.0.0.5:8000"
) -> ModelLoad:
    """The state gauges and failure counter of a replica retrying its model load.

    Each attempt takes attempt_s (`loading`); one that starts before fixed_s fails, the state turns
    `failed` for `load_retry_delay(n)` seconds (the service's own schedule and defaults), then the
    next attempt starts. The first attempt that starts at or after fixed_s succeeds: `ready`.
    """
    states: list[tuple[float, str]] = [(0.0, "loading")]
    failures: list[float] = []
    at = 0.0
    ready = math.inf
    while at <= end_s:
        done = at + attempt_s
        if done > end_s:
            break  # still loading when the shape ends: a stuck (or very slow) load
        if at >= fixed_s:
            ready = done
            states.append((done, "ready"))
            break
        failures.append(done)
        states.append((done, "failed"))
        at = done + load_retry_delay(len(failures))
        states.append((at, "loading"))
    times = scrape_times(end_s)

    def state_at(t: float) -> str:
        return [state for since, state in states if since <= t][-1]

    labels = {**OFA_VE_LABELS, "instance": instance}
    series = [
        Series("ofa_ve_model_ready", labels, tuple(1.0 if state_at(t) == "ready" else 0.0 for t in times)),
        Series(
            "ofa_ve_model_load_failures_total",
            labels,
            tuple(float(sum(1 for f in failures if f <= t)) for t in times),
        ),
    ]
    series.extend(
        Series(
            "ofa_ve_model_state",
            {**labels, "state": state},
            tuple(1.0 if state_at(t) == state else 0.0 for t in times),
        )
        for state in MODEL_STATES
    )
    return ModelLoad(failures=tuple(failures), ready_s=ready, end_s=end_s, series=tuple(series))


# --- targets that vanish --------------------------------------------------------------------------

Gap = tuple[float, float]  # [gone from, back at): the replica is not among the discovered targets


def crash_loop(start_s: float, stop_s: float, *, up_s: float, down_s: float) -> list[Gap]:
    """The gaps of a replica that runs up_s, is gone down_s, again and again from start_s to stop_s."""
    gaps = []
    at = start_s + up_s
    while at < stop_s:
        gaps.append((at, min(at + down_s, stop_s)))
        at += down_s + up_s
    return gaps


def replica_series(
    instance: str, *, expected: int, end_s: float, gaps: Sequence[Gap] = (), hung: Sequence[Gap] = ()
) -> tuple[Series, Series]:
    """`up` and `ofa_ve_expected_replicas` of one replica discovered through Docker's DNS.

    While the replica runs it is scraped (up 1, expected as configured). When it stops or restarts,
    DNS no longer returns it: Prometheus writes a stale marker at the next scrape and then has no
    sample at all (no `up == 0`) until it is back. A `hung` replica (its container runs, its process
    answers nothing) stays in DNS: every scrape times out, `up` is 0, and its other series go stale.
    """
    times = scrape_times(end_s)
    up: list[Value] = []
    exp: list[Value] = []
    for t in times:
        gone = any(start <= t < back for start, back in gaps)
        if any(start <= t < back for start, back in hung):
            up.append(0.0)
            exp.append(STALE if exp and exp[-1] not in (None, STALE) else None)
        elif not gone:
            up.append(1.0)
            exp.append(float(expected))
        elif up and up[-1] not in (None, STALE):
            up.append(STALE)
            exp.append(STALE)
        else:
            up.append(None)
            exp.append(None)
    labels = {**OFA_VE_LABELS, "instance": instance}
    return (
        Series("up", labels, tuple(up)),
        Series("ofa_ve_expected_replicas", labels, tuple(exp)),
    )


def replicas_shape(
    count: int,
    *,
    expected: int,
    end_s: float,
    gaps: dict[int, Sequence[Gap]] | None = None,
    hung: dict[int, Sequence[Gap]] | None = None,
) -> list[Series]:
    """Series of `count` replicas 10.0.0.5:8000, 10.0.0.6:8000 ...; `gaps` and `hung` by replica index."""
    gaps, hung = gaps or {}, hung or {}
    found: list[Series] = []
    for i in range(count):
        instance = f"10.0.0.{5 + i}:8000"
        found.extend(replica_series(
            instance, expected=expected, end_s=end_s, gaps=gaps.get(i, ()), hung=hung.get(i, ())
        ))
    return found


def input_series(shapes: Iterable[Series]) -> list[dict[str, str]]:
    """The `input_series` list of a promtool test."""
    return [series.promtool() for series in shapes]
