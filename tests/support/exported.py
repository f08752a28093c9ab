"""Metric names the bundle's own services export, read from their real registries."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, generate_latest

from tests.support.fake_nvml import make_fake_nvml, make_fake_torch
from tests.support.promql import exposed_names

# Series Prometheus itself makes up: scrape health and alert state.
PROMETHEUS_SYNTHETIC = {
    "up",
    "ALERTS",
    "ALERTS_FOR_STATE",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
}


def _snapshot_names() -> set[str]:
    """Names the snapshot service exposes once a day is complete (the folder-derived gauges included)."""
    from metrics_snapshot.metrics import SnapshotMetrics
    from metrics_snapshot.schedule import Schedule
    from metrics_snapshot.store import SnapshotStore

    now = datetime(2025, 6, 2, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = SnapshotStore(Path(folder))
        store.write_day(datetime(2025, 6, 1).date(), {}, {})
        store.mark_complete(datetime(2025, 6, 1).date(), {"bytes": 1}, now)
        registry = CollectorRegistry()
        SnapshotMetrics(registry, store, Schedule(ZoneInfo("UTC"), time(3), 7), lambda: now)
        return exposed_names(generate_latest(registry).decode())


def service_metric_names() -> set[str]:
    """Names ofa-ve (GPU collector on a fake NVML included), webhook-relay and metrics-snapshot expose."""
    from ofa_ve.gpu import GpuCollector
    from ofa_ve.metrics import ServiceMetrics
    from webhook_relay.metrics import RelayMetrics
    from webhook_relay.outbox import TargetStats

    ofa_ve = CollectorRegistry()
    ServiceMetrics(ofa_ve)
    ofa_ve.register(GpuCollector(nvml=make_fake_nvml(gpu_count=1), torch_module=make_fake_torch()))

    relay = CollectorRegistry()
    metrics = RelayMetrics(relay)
    metrics.init_target("dingtalk-ops", "dingtalk", ["errcode"])
    metrics.init_heartbeat_forward("watchdog", 0.0)
    metrics.init_tasks(["sender-dingtalk-ops"])
    metrics.watch_outbox(lambda: {"dingtalk-ops": TargetStats(1, 5.0, 1, 1)}, {"dingtalk-ops": "dingtalk"})
    metrics.watch_components(lambda: {"sender": True})

    return (exposed_names(generate_latest(ofa_ve).decode()) | exposed_names(generate_latest(relay).decode())
            | _snapshot_names())
