"""The service's own metrics (prefix metrics_snapshot_), scraped by Prometheus as job metrics-snapshot.

What MetricsSnapshotFailed reads is derived from the snapshot folder at scrape time, not kept in
memory: a restart of the service changes nothing, and a day stays "behind" until a later day is
complete (or it is redone by hand).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from metrics_snapshot.schedule import Schedule
from metrics_snapshot.store import SnapshotStore

STAGES = ("query", "export", "write", "backup")
RESULTS = ("complete", "failed")


class StoreCollector(Collector):
    """Reads the snapshot folder at each scrape (a directory listing and one manifest)."""

    def __init__(self, store: SnapshotStore, schedule: Schedule, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._schedule = schedule
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        newest = self._store.newest_complete()
        installed = self._store.installed_at(now)
        behind = len(self._schedule.pending(now, installed, newest))
        yield GaugeMetricFamily(
            "metrics_snapshot_days_behind",
            "Days whose snapshot is due (SNAPSHOT_AT has passed) and not complete, counted after the newest "
            "complete day and from the install day: 0 when up to date.",
            value=behind,
        )
        yield GaugeMetricFamily(
            "metrics_snapshot_retained_days", "Day folders in the snapshot volume.",
            value=len(self._store.days()),
        )
        if newest is None:
            return
        manifest = self._store.manifest(newest) or {}
        start = self._schedule.day_start(newest)
        yield GaugeMetricFamily(
            "metrics_snapshot_newest_day_timestamp_seconds",
            "Start (local midnight) of the newest complete day.", value=start.timestamp(),
        )
        completed = manifest.get("completed_at")
        if completed:
            yield GaugeMetricFamily(
                "metrics_snapshot_last_success_timestamp_seconds",
                "When the newest complete day was completed (its export and the backup after it).",
                value=datetime.fromisoformat(completed).timestamp(),
            )
        backup = manifest.get("backup") or {}
        if backup.get("bytes") is not None:
            yield GaugeMetricFamily(
                "metrics_snapshot_backup_bytes", "Size of the vmbackup destination after the last backup.",
                value=backup["bytes"],
            )


class SnapshotMetrics:
    """Counters of the runs in this process plus the folder-derived gauges."""

    def __init__(
        self, registry: CollectorRegistry, store: SnapshotStore, schedule: Schedule,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.days = Counter(
            "metrics_snapshot_days", "Days attempted, by result (complete: exported and backed up).",
            ["result"], registry=registry,
        )
        self.failures = Counter(
            "metrics_snapshot_failures",
            "Failed steps: query (the query API), export (unforeseen data, a bug), write (the disk), backup.",
            ["stage"], registry=registry,
        )
        self.last_run_duration = Gauge(
            "metrics_snapshot_last_run_duration_seconds",
            "Duration of the last run (every day it exported, and the backup).", registry=registry,
        )
        self.last_run = Gauge(
            "metrics_snapshot_last_run_timestamp_seconds", "When the last run ended.", registry=registry,
        )
        for result in RESULTS:
            self.days.labels(result)
        for stage in STAGES:
            self.failures.labels(stage)
        registry.register(StoreCollector(store, schedule, clock))
