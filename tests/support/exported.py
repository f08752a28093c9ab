"""Metric names the bundle's own services export, read from their real registries."""

from __future__ import annotations

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


def service_metric_names() -> set[str]:
    """Names ofa-ve (GPU collector on a fake NVML included) and webhook-relay expose."""
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

    return exposed_names(generate_latest(ofa_ve).decode()) | exposed_names(generate_latest(relay).decode())
