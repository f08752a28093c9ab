"""Exemplars end to end without containers: ofa-ve's /metrics endpoint scraped by the pinned Prometheus
with the bundle's exemplar settings, read back through /api/v1/query_exemplars."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Route

from tests.integration.monitoring.conftest import Server, start_prometheus, stop
from tests.support.env import ROOT, free_port

pytestmark = pytest.mark.integration

WAIT_S = 60


@dataclass
class Scraped:
    prometheus: Server
    metrics: Any


def _compose_feature_flags() -> tuple[str, ...]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return tuple(a for a in compose["services"]["prometheus"]["command"] if a.startswith("--enable-feature"))


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """ofa-ve's metrics behind its own /metrics endpoint (uvicorn), scraped every second by Prometheus
    started with compose's feature flags and prometheus.yml's storage section."""
    from ofa_ve.metrics import ServiceMetrics
    from ofa_ve.metrics_endpoint import MetricsEndpoint

    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, process_collectors=False)
    endpoint = MetricsEndpoint(registry)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/metrics", endpoint)]), host="127.0.0.1",
                                           port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    storage = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))["storage"]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "storage": storage,
        "scrape_configs": [{"job_name": "ofa-ve", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }
    prometheus = start_prometheus(tmp_path_factory.mktemp("exemplar-prometheus"), config,
                                  _compose_feature_flags())
    yield Scraped(prometheus, metrics)
    stop(prometheus)
    server.should_exit = True
    thread.join(10)
    endpoint.close()


def _exemplars(prometheus: Server, query: str) -> list[dict[str, Any]]:
    now = time.time()
    reply = httpx.get(f"{prometheus.url}/api/v1/query_exemplars",
                      params={"query": query, "start": now - 600, "end": now + 5}, timeout=10).json()
    assert reply["status"] == "success", reply
    return [e for series in reply["data"] for e in series["exemplars"]]


def test_compose_switches_exemplar_storage_on() -> None:
    """The flag this module's Prometheus gets is the one compose starts Prometheus with."""
    assert "--enable-feature=exemplar-storage" in _compose_feature_flags()


def test_a_kept_requests_id_comes_back_from_query_exemplars(scraped: Scraped) -> None:
    """A slow request's id, attached to the latency histogram, is scraped (OpenMetrics negotiated by the
    endpoint) and returned by Prometheus' query_exemplars for the histogram's buckets."""
    from ofa_ve.context import RequestContext

    ctx = RequestContext("itest-exemplar-7", time.perf_counter())
    scraped.metrics.record_request("entailment", 200, 1.7, ctx, keep=True)
    deadline = time.monotonic() + WAIT_S
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = _exemplars(scraped.prometheus,
                           'ofa_ve_request_duration_seconds_bucket{endpoint="entailment"}')
        if found:
            break
        time.sleep(0.5)
    assert [e["labels"] for e in found] == [{"request_id": "itest-exemplar-7"}]
    assert float(found[0]["value"]) == 1.7


def test_exemplars_follow_the_quantile_query_a_panel_runs(scraped: Scraped) -> None:
    """query_exemplars on a panel's histogram_quantile expression returns the exemplars of its buckets,
    which is what Grafana draws on the latency panels."""
    from ofa_ve.context import RequestContext

    scraped.metrics.observe_stage("inference", 0.3, RequestContext("itest-stage-3", time.perf_counter()))
    query = ('histogram_quantile(0.95, sum by (stage, le) '
             '(rate(ofa_ve_stage_duration_seconds_bucket{stage="inference"}[1m])))')
    deadline = time.monotonic() + WAIT_S
    ids: set[str] = set()
    while time.monotonic() < deadline and "itest-stage-3" not in ids:
        ids = {e["labels"]["request_id"] for e in _exemplars(scraped.prometheus, query)}
        time.sleep(0.5)
    assert "itest-stage-3" in ids
