"""A fake Prometheus HTTP API with a fixed answer set: an ofa-ve replica saturated and running out of
GPU memory. Serves the relay's enrichment queries (webhook_relay.enrichment.table) in-process through
`httpx.MockTransport(FakePrometheus())` or as a real server (`FakePrometheusServer`, for relay processes).

Each query is recognised by the series it reads (first matching row of ANSWERS wins); a `by` label gets
one series per key. `down` answers every query with 503, `delay` sleeps before answering. The server
also answers `GET /v1/errors` like an ofa-ve replica's recent-errors view (`ERRORS`), so an alert whose
`instance` is the server's address gets recent errors too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakechat.server import serve_in_thread, stop_in_thread

INSTANCE = "10.0.0.5:8000"
# (substring of the query, label of the breakdown or None, value or {label value: value}).
ANSWERS: list[tuple[str, str | None, Any]] = [
    ("count(ofa_ve_model_ready", None, 3),
    ("sum(ofa_ve_model_ready", None, 2),
    ("service:ofa_ve_replicas_expected", None, 3),
    ("min(up{", None, 1),
    ('result="server_error"', None, 0.041),
    ("increase(ofa_ve_errors_total", "type", {"gpu_out_of_memory": 2.0}),
    ("rate(ofa_ve_errors_total", "type", {"gpu_out_of_memory": 0.039, "deadline_exceeded": 0.002}),
    ("instance:ofa_ve_requests:rate5m", None, 12.3),
    ("instance:ofa_ve_request_errors:ratio_rate5m", None, 0.041),
    ("instance_stage_quantile", "stage", {"queue": 2.1, "inference": 0.45, "preprocess": 0.03,
                                          "decode": 0.012, "postprocess": 0.001}),
    ("ofa_ve_request_wait_seconds_bucket", None, 0.004),
    ("max(instance_endpoint_quantile", None, 2.6),
    ("instance_endpoint_quantile", None, 2.8),  # the alert's own expression (threshold stripped)
    ("ofa_ve_queue_depth", None, 58),
    ("ofa_ve_queue_capacity", None, 64),
    ("ofa_ve_rejected_total", "reason", {"overloaded": 3.2}),
    ("instance_gpu:ofa_ve_gpu_memory:ratio", "gpu", {"0": 0.95}),
    ("ofa_ve_gpu_utilization_ratio", "gpu", {"0": 0.99}),
    ("ofa_ve_model_info", "revision", {"v1.0.1": 1}),
]
HOUR_AGO = {"instance_endpoint_quantile": 0.41}
ERRORS = {"replica": "ofa-ve-1", "kind": "server_error", "errors": [
    {"request_id": "7f3a2c9e1b4d", "received_at": "2026-11-25T02:41:58.120+00:00", "endpoint": "entailment",
     "status_code": 503, "code": "gpu_out_of_memory", "cause": None,
     "message": "GPU out of memory for this item alone"},
    {"request_id": "0c81d5aa9e02", "received_at": "2026-11-25T02:41:12.004+00:00", "endpoint": "batch",
     "status_code": 500, "code": "inference_failed", "cause": "RuntimeError",
     "message": "inference failed: token=abcdefabcdefabcdefabcdefabcdef at https://u:p@hub.example/x"},
]}  # the alert's value an hour before the query time


class FakePrometheus:
    """The answer set as a MockTransport handler; records every query it was asked."""

    def __init__(self, answers: list[tuple[str, str | None, Any]] | None = None) -> None:
        self.answers = list(answers if answers is not None else ANSWERS)
        self.queries: list[str] = []
        self.down = False
        self.delay = 0.0
        self.lock = threading.Lock()

    def lookup(self, query: str) -> tuple[str | None, Any] | None:
        for needle, by, value in self.answers:
            if needle in query:
                return by, value
        return None

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        query = params.get("query", "")
        with self.lock:
            self.queries.append(query)
        if self.down:
            return 503, {"status": "error", "errorType": "unavailable", "error": "injected outage"}
        found = self.lookup(query)
        if path.endswith("/query_range"):
            start, end = float(params["start"]), float(params["end"])
            step = float(params.get("step", "60"))
            points = int((end - start) // step) + 1
            if found is None:
                return 200, {"status": "success", "data": {"resultType": "matrix", "result": []}}
            by, value = found
            if "increase(ofa_ve_errors_total" in query:
                # Non-zero over the last 20 minutes only: "since" is 20 minutes before the end.
                series = [{"metric": {"type": "gpu_out_of_memory"},
                           "values": [[start + i * step, "2" if start + i * step >= end - 1200 else "0"]
                                      for i in range(points)]}]
            else:
                base = value if isinstance(value, int | float) else 1.0
                series = [{"metric": {"instance": INSTANCE},
                           "values": [[start + i * step, str(base * (0.2 + 0.8 * i / max(1, points - 1)))]
                                      for i in range(points)]}]
            return 200, {"status": "success", "data": {"resultType": "matrix", "result": series}}
        at = float(params.get("time", time.time()))
        if found is None:
            return 200, {"status": "success", "data": {"resultType": "vector", "result": []}}
        by, value = found
        if at < time.time() - 3000:
            old = next((v for k, v in HOUR_AGO.items() if k in query and not query.startswith("max(")), None)
            if old is None:
                return 200, {"status": "success", "data": {"resultType": "vector", "result": []}}
            value = old
        if by is None:
            result = [{"metric": {"instance": INSTANCE}, "value": [at, str(value)]}]
        else:
            result = [{"metric": {by: k}, "value": [at, str(v)]} for k, v in value.items()]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            time.sleep(self.delay)
        status, body = self.answer(request.url.path, dict(request.url.params))
        return httpx.Response(status, json=body)


class FakePrometheusServer:
    """The fake on a real port, in a background thread (for relay processes)."""

    def __init__(self, fake: FakePrometheus | None = None, port: int = 0) -> None:
        self.fake = fake or FakePrometheus()
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakePrometheusServer:
        async def handle(request: Request) -> JSONResponse:
            if self.fake.delay:
                await asyncio.sleep(self.fake.delay)
            status, body = self.fake.answer(request.url.path, dict(request.query_params))
            return JSONResponse(body, status_code=status)

        async def errors(request: Request) -> JSONResponse:
            return JSONResponse(ERRORS)

        app = Starlette(routes=[Route("/api/v1/query", handle), Route("/api/v1/query_range", handle),
                                Route("/v1/errors", errors)])
        self._server, self._thread, self.port = serve_in_thread(app, "127.0.0.1", self.port, "fakeprom")
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            stop_in_thread(self._server, self._thread)
