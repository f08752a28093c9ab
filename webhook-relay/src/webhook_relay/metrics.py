"""Prometheus metrics of the relay; every metric lives on the registry passed in."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook_relay import __version__
from webhook_relay.outbox import TargetStats

log = logging.getLogger(__name__)

DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class RelayMetrics:
    """All `webhook_relay_*` metrics. Labels are route / target names from the config and fixed words."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.received = Counter(
            "webhook_relay_webhooks_received",
            "Alertmanager webhooks received, by route and result.",
            ["route", "result"],
            registry=registry,
        )
        self.delivered = Counter(
            "webhook_relay_messages_delivered",
            "Messages accepted by the chat API.",
            ["target", "channel"],
            registry=registry,
        )
        self.failed = Counter(
            "webhook_relay_messages_failed",
            "Delivery attempts that failed, by reason.",
            ["target", "channel", "reason"],
            registry=registry,
        )
        self.retries = Counter(
            "webhook_relay_delivery_retries",
            "Deliveries scheduled for another attempt.",
            ["target", "channel"],
            registry=registry,
        )
        self.dead_letters_total = Counter(
            "webhook_relay_dead_letters",
            "Notifications moved to the dead-letter table, by reason.",
            ["target", "reason"],
            registry=registry,
        )
        self.delivery_duration = Histogram(
            "webhook_relay_delivery_duration_seconds",
            "Time from receiving a notification to the chat API accepting its last message.",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.rate_limit_waits = Counter(
            "webhook_relay_rate_limit_waits",
            "Sends that had to wait for the target's rate limit.",
            ["target"],
            registry=registry,
        )
        self.heartbeat_last_seen = Gauge(
            "webhook_relay_heartbeat_last_seen_timestamp_seconds",
            "When a webhook last reached a heartbeat route (0 until the first one).",
            ["route"],
            registry=registry,
        )
        self.outbox_writable = Gauge(
            "webhook_relay_outbox_writable",
            "1 when the last durable test write to the outbox succeeded (checked every few seconds).",
            registry=registry,
        )
        self.outbox_writable.set(1)
        self.task_restarts = Counter(
            "webhook_relay_task_restarts",
            "Background tasks restarted by the supervisor after they crashed or ended.",
            ["task"],
            registry=registry,
        )
        self.heartbeat_forwards = Counter(
            "webhook_relay_heartbeat_forwards",
            "Heartbeats passed on to the external push monitor, by result (ok, failed, unhealthy).",
            ["route", "result"],
            registry=registry,
        )
        self.heartbeat_forward_success = Gauge(
            "webhook_relay_heartbeat_forward_last_success_timestamp_seconds",
            "When the external push monitor last accepted a heartbeat (process start until then).",
            ["route"],
            registry=registry,
        )
        self.compacted = Counter(
            "webhook_relay_notifications_compacted",
            "Notifications shortened to fit the per-notification message budget, by mode "
            "(compact: one line per alert; truncated: some alerts only counted).",
            ["target", "mode"],
            registry=registry,
        )
        self.build_info = Gauge(
            "webhook_relay_build_info",
            "Build information.",
            ["version"],
            registry=registry,
        )
        self.build_info.labels(version=__version__).set(1)

    def init_target(self, target: str, channel: str, reasons: Iterable[str]) -> None:
        """Create the series of a target at zero so rates and absence alerts work from the start.

        Every failure reason of the channel starts at zero too: a counter that only appears on the
        first failure hides that failure from rate() and increase().
        """
        self.delivered.labels(target=target, channel=channel)
        self.retries.labels(target=target, channel=channel)
        self.rate_limit_waits.labels(target=target)
        self.delivery_duration.labels(channel=channel)
        for reason in reasons:
            self.failed.labels(target=target, channel=channel, reason=reason)
        for mode in ("compact", "truncated"):
            self.compacted.labels(target=target, mode=mode)

    def init_heartbeat_forward(self, route: str, started: float) -> None:
        for result in ("ok", "failed", "unhealthy"):
            self.heartbeat_forwards.labels(route=route, result=result)
        self.heartbeat_forward_success.labels(route=route).set(started)

    def init_tasks(self, tasks: Iterable[str]) -> None:
        for task in tasks:
            self.task_restarts.labels(task=task)

    def watch_outbox(self, stats: Callable[[], dict[str, TargetStats]], channels: dict[str, str]) -> None:
        """Report outbox depth, oldest age, dead letters and failing targets, read at scrape time."""
        self._registry.register(_OutboxCollector(stats, channels))

    def watch_components(self, components: Callable[[], dict[str, bool]]) -> None:
        """Report whether each supervised part of the relay is running, read at scrape time."""
        self._registry.register(_ComponentCollector(components))


class _OutboxCollector(Collector):
    """Gauges read from the outbox at scrape time, so they are right even right after a restart.

    No `describe()`: the dead-letter gauge shares its family name with the `_total` counter (names
    fixed by the shared contract), which the registry's duplicate check would refuse.
    """

    def __init__(self, stats: Callable[[], dict[str, TargetStats]], channels: dict[str, str]) -> None:
        self._stats = stats
        self._channels = channels

    def collect(self) -> Iterable[Metric]:
        pending = GaugeMetricFamily(
            "webhook_relay_outbox_pending", "Notifications waiting for delivery.", labels=["target"]
        )
        age = GaugeMetricFamily(
            "webhook_relay_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered notification (0 when none).",
            labels=["target"],
        )
        dead = GaugeMetricFamily(
            "webhook_relay_dead_letters", "Dead letters currently stored.", labels=["target"]
        )
        failing = GaugeMetricFamily(
            "webhook_relay_target_failing",
            "1 while the target has a pending message whose last attempt failed (read from the "
            "outbox, so it holds during backoff waits and across restarts).",
            labels=["target", "channel"],
        )
        try:
            stats = self._stats()
        except Exception:
            log.warning("outbox stats unavailable for this scrape", exc_info=True)
            return []
        empty = TargetStats(0, 0.0, 0, 0)
        for target in sorted(set(self._channels) | set(stats)):
            row = stats.get(target, empty)
            pending.add_metric([target], row.pending)
            age.add_metric([target], row.oldest_pending_age)
            dead.add_metric([target], row.dead)
            failing.add_metric([target, self._channels.get(target, "unknown")], 1 if row.failing else 0)
        return [pending, age, dead, failing]


class _ComponentCollector(Collector):
    def __init__(self, components: Callable[[], dict[str, bool]]) -> None:
        self._components = components

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "webhook_relay_component_up",
            "1 while a supervised part of the relay runs (outbox_writer, sender, heartbeat_watch).",
            labels=["component"],
        )
        for name, running in sorted(self._components().items()):
            up.add_metric([name], 1 if running else 0)
        return [up]
