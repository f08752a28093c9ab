"""Latency as clients see it: arrival stamps, the wait before the handler, loop lag, Server-Timing."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import time
from collections.abc import Callable

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from ofa_ve.arrival import TimedH11Protocol, received_at
from ofa_ve.looplag import LoopLagMonitor
from ofa_ve.metrics import ServiceMetrics
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from tests.unit.service.conftest import png_bytes

MakeClient = Callable[..., TestClient]
IMAGE = base64.b64encode(png_bytes()).decode()
TIMING = re.compile(r"(\w+);dur=([0-9.]+)")


def _server_timing(response: httpx.Response) -> dict[str, float]:
    return {name: float(ms) for name, ms in TIMING.findall(response.headers["server-timing"])}


def test_every_response_has_server_timing(make_client: MakeClient) -> None:
    """Health checks, 404s and inference answers all carry Server-Timing with at least `total`."""
    client = make_client()
    for response in (client.get("/healthz"), client.get("/nope"), client.get("/metrics")):
        assert "total" in _server_timing(response)


def test_an_answer_carries_every_stage_and_they_fit_in_the_total(make_client: MakeClient) -> None:
    """An inference answer's Server-Timing has wait, read and each stage, the same as its timings_ms."""
    r = make_client().post("/v1/entailment", json={"image_base64": IMAGE, "text": "yes"})
    assert r.status_code == 200
    timing = _server_timing(r)
    stages = {"wait", "read", "decode", "preprocess", "queue", "inference", "postprocess", "total"}
    assert set(timing) == stages
    for stage, ms in r.json()["timings_ms"].items():
        assert timing[stage] == pytest.approx(ms, abs=0.002)
    assert sum(v for k, v in timing.items() if k != "total") <= timing["total"] + 0.01


def test_an_error_answer_carries_server_timing_too(make_client: MakeClient) -> None:
    """A refused request (415) still tells the client how long the service spent."""
    r = make_client().post("/v1/entailment", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert {"wait", "total"} <= set(_server_timing(r))


def test_the_wait_before_the_handler_is_observed(
    make_client: MakeClient, registry: CollectorRegistry
) -> None:
    """Each request adds one observation of its wait before the handler, per endpoint."""
    client = make_client()
    client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "yes"})
    assert registry.get_sample_value("ofa_ve_request_wait_seconds_count", {"endpoint": "entailment"}) == 1


def test_a_lag_is_spread_over_the_moments_it_covers() -> None:
    """A probe 0.35 s late stands for the waits 0.35, 0.25, 0.15, 0.05 s; an on-time probe for 0."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, process_collectors=False)
    monitor = LoopLagMonitor(metrics.loop_lag, interval_s=0.1)
    monitor.record(0.35)
    monitor.record(-0.001)
    assert registry.get_sample_value("ofa_ve_event_loop_lag_seconds_count") == 5
    assert registry.get_sample_value("ofa_ve_event_loop_lag_seconds_sum") == pytest.approx(0.8)
    assert registry.get_sample_value("ofa_ve_event_loop_lag_seconds_bucket", {"le": "0.1"}) == 2


def test_the_monitor_sees_a_blocked_loop() -> None:
    """Blocking the loop for 0.3 s shows as a lag of about 0.3 s in the histogram."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, process_collectors=False)

    async def scenario() -> None:
        task = asyncio.create_task(LoopLagMonitor(metrics.loop_lag, interval_s=0.05).run())
        await asyncio.sleep(0.12)
        time.sleep(0.3)  # noqa: ASYNC251 - the point: the loop is blocked
        await asyncio.sleep(0.12)
        task.cancel()

    asyncio.run(scenario())
    assert registry.get_sample_value("ofa_ve_event_loop_lag_seconds_bucket", {"le": "0.1"}) < \
        registry.get_sample_value("ofa_ve_event_loop_lag_seconds_count")
    assert registry.get_sample_value("ofa_ve_event_loop_lag_seconds_sum") >= 0.5  # 0.25 + 0.2 + ... + 0.05


def test_received_at_reads_the_protocols_stamp_only() -> None:
    """A scope stamped by the protocol yields its time; any other scope yields None."""
    assert received_at({"extensions": {"ofa_ve.received": 12.5}}) == 12.5
    assert received_at({"extensions": {}}) is None
    assert received_at({}) is None


def test_the_protocol_stamps_arrival_before_the_request_waits_for_the_loop() -> None:
    """TimedH11Protocol stamps the moment it read a request; when other ready work holds the loop before
    the request's task runs, the handler sees that wait (arrival to handler start)."""
    seen: dict[str, float | None] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["received"] = received_at(scope)
        seen["started"] = time.perf_counter()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        config = uvicorn.Config(app, http=TimedH11Protocol, lifespan="off", log_config=None)
        config.load()
        ours, theirs = socket.socketpair()
        protocol = TimedH11Protocol(config, ServerState(), {}, loop)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, ours)
        try:
            before = time.perf_counter()
            protocol.data_received(b"GET /x HTTP/1.1\r\nhost: test\r\n\r\n")
            time.sleep(0.3)  # noqa: ASYNC251 - other ready work holding the loop before the request's task
            for _ in range(50):
                await asyncio.sleep(0.01)
                if "started" in seen:
                    break
            return before
        finally:
            transport.close()
            theirs.close()

    before = asyncio.run(scenario())
    received, started = seen["received"], seen["started"]
    assert received is not None and started is not None
    assert before <= received < before + 0.1
    assert started - received >= 0.3
