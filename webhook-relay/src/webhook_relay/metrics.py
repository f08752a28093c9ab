"""Prometheus metrics of the relay; every metric lives on the registry passed in."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook_relay import __version__

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
        self.build_info = Gauge(
            "webhook_relay_build_info",
            "Build information.",
            ["version"],
            registry=registry,
        )
        self.build_info.labels(version=__version__).set(1)

    def init_target(self, target: str, channel: str) -> None:
        """Create the series of a target at zero so rates and absence alerts work from the start."""
        self.delivered.labels(target=target, channel=channel)
        self.retries.labels(target=target, channel=channel)
        self.rate_limit_waits.labels(target=target)
        self.delivery_duration.labels(channel=channel)

    def watch_outbox(
        self, stats: Callable[[], dict[str, tuple[int, float, int]]], targets: list[str]
    ) -> None:
        """Report outbox depth, oldest age and dead letters, read from the database at scrape time."""
        self._registry.register(_OutboxCollector(stats, targets))


class _OutboxCollector(Collector):
    """Gauges read from the outbox at scrape time, so they are right even right after a restart.

    No `describe()`: the dead-letter gauge shares its family name with the `_total` counter (names
    fixed by the shared contract), which the registry's duplicate check would refuse.
    """

    def __init__(self, stats: Callable[[], dict[str, tuple[int, float, int]]], targets: list[str]) -> None:
        self._stats = stats
        self._targets = targets

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
        try:
            stats = self._stats()
        except Exception:
            log.warning("outbox stats unavailable for this scrape", exc_info=True)
            return []
        for target in sorted(set(self._targets) | set(stats)):
            n, oldest, dead_count = stats.get(target, (0, 0.0, 0))
            pending.add_metric([target], n)
            age.add_metric([target], oldest)
            dead.add_metric([target], dead_count)
        return [pending, age, dead]
