"""perf-gate live against a real Prometheus with the bundle's rules, scraping the real tiny-model service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from perf_gate.gate import run_live
from perf_gate.live import Prometheus, queries
from perf_gate.load import run_step
from perf_gate.profile import load_profile
from perf_gate.workload import build_plan

from tests.integration.monitoring.conftest import Server as PromServer
from tests.integration.monitoring.conftest import start_prometheus, stop
from tests.support.service import Server, start_server, stop_server
from tests.unit.perf_gate.test_profile import DEFAULT_FILE

pytestmark = pytest.mark.integration

WAIT_S = 90
SERVICE, NOWHERE = 'service="ofa-ve"', 'instance="nowhere:1"'
# rate(...[5m]) over ~20 s of data undercounts (it divides by the whole range): a handful is enough here.
LIMITS = {
    "loose": {"description": "anything that answers", "p95_s": 10.0, "p99_s": 20.0, "error_ratio": 0.5,
              "min_requests": 5},
    "strict": {"description": "impossible", "p95_s": 0.0001, "min_requests": 5},
}


@dataclass
class Stack:
    service: Server
    prometheus: PromServer
    profile: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The service, traffic from the gate's own load generator, and Prometheus scraping it every second."""
    work = tmp_path_factory.mktemp("perf-gate-live")
    service = start_server(work, "live", OFA_VE_ENABLE_UI="false")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": "ofa-ve",
            "static_configs": [{"targets": [service.url.removeprefix("http://")]}],
            "relabel_configs": [{"source_labels": ["job"], "target_label": "service"}],
        }],
    }
    (work / "prometheus").mkdir()
    try:
        prometheus = start_prometheus(work / "prometheus", config)
    except BaseException:
        stop_server(service)
        raise
    data = yaml.safe_load(DEFAULT_FILE.read_text())
    data["slo_classes"] = LIMITS
    profile = work / "live.yml"
    profile.write_text(yaml.safe_dump(data))
    try:
        plan = build_plan(load_profile())

        async def traffic() -> None:
            async with httpx.AsyncClient(timeout=60) as client:
                for _ in range(3):
                    await run_step(client, service.url, "single-c4", plan["single-c4"], 4, 1.0)

        time.sleep(2)  # a first scrape before the traffic, so rate() sees the increase
        asyncio.run(traffic())
        _wait_for_requests(prometheus)
        yield Stack(service, prometheus, profile)
    finally:
        stop(prometheus)
        stop_server(service)


def _wait_for_requests(prometheus: PromServer) -> None:
    """Until the rules show both the requests and their latency: on a busy machine the two can lag apart."""
    qs = queries('service="ofa-ve"', "1m")
    deadline = time.monotonic() + WAIT_S
    with httpx.Client() as client:
        prom = Prometheus(prometheus.url, client)
        while time.monotonic() < deadline:
            now = time.time()
            requests, p95 = prom.scalar(qs["requests"], now), prom.scalar(qs["p95_s"], now)
            if requests is not None and requests >= 5 and p95 is not None:
                return
            time.sleep(1)
    pytest.fail(f"the recording rules showed no traffic, or no latency for it, within {WAIT_S} s")


def test_live_passes_within_limits(stack: Stack) -> None:
    """Generous limits over the last minute: exit 0, every quantity read from the rules."""
    result = run_live(str(stack.profile), "loose", stack.prometheus.url, SERVICE, "1m", None, None)
    assert result.error is None, result.error
    assert result.exit_code == 0
    values = result.live["values"]
    assert 0 < values["p95_s"] <= values["p99_s"] < 10
    assert values["error_ratio"] == 0
    assert values["peak_rss_bytes"] > 1e8


def test_live_fails_over_the_limit(stack: Stack) -> None:
    """A P95 limit of 0.1 ms cannot hold: exit 1 naming the P95 check."""
    result = run_live(str(stack.profile), "strict", stack.prometheus.url, SERVICE, "1m", None, None)
    assert result.exit_code == 1
    assert [c.name for c in result.slo_breaches] == ["p95_s"]


def test_live_without_matching_series_could_not_measure(stack: Stack) -> None:
    """A selector that matches no replica is exit 2: no evidence is not a pass."""
    result = run_live(str(stack.profile), "loose", stack.prometheus.url, NOWHERE, "1m", None, None)
    assert result.exit_code == 2
