"""The application factory: FastAPI app with API routes, /metrics, request context and (optionally) the UI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ofa_ve import __version__, api
from ofa_ve.api import Tracker
from ofa_ve.detail import build_detail_router
from ofa_ve.download import download_model
from ofa_ve.engine import Engine
from ofa_ve.gpu import GpuCollector, load_nvml
from ofa_ve.looplag import LoopLagMonitor
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.metrics_endpoint import MetricsEndpoint
from ofa_ve.middleware import RequestContextMiddleware
from ofa_ve.peers import PeerLookup
from ofa_ve.requestlog import RequestLog
from ofa_ve.service import EntailmentService
from ofa_ve.settings import Settings


class _AsgiEndpoint:
    # A plain function would be taken by Starlette for a request handler; an instance is run as ASGI.
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _default_gpu_collector() -> GpuCollector:
    import torch

    return GpuCollector(nvml=load_nvml(), torch_module=torch)


def create_app(
    settings: Settings,
    registry: CollectorRegistry,
    engine: Engine | None = None,
    *,
    gpu_collector: GpuCollector | None = None,
    on_device_fault: Callable[[str], None] | None = None,
    peers: PeerLookup | None = None,
) -> FastAPI:
    """Builds the service. `engine` (built on a ServiceMetrics of the same registry) replaces the real one;
    `on_device_fault` is called once if the accelerator fails for good (the entrypoint exits then)."""
    if engine is None:
        metrics = ServiceMetrics(registry, exemplar_interval_s=settings.exemplar_interval_s)
        engine = Engine(settings, metrics, on_device_fault=on_device_fault, downloader=download_model)
    else:
        metrics = engine.metrics
    metrics.expected_replicas.set(settings.expected_replicas)
    collector = gpu_collector if gpu_collector is not None else _default_gpu_collector()
    registry.register(collector)
    service = EntailmentService(settings, metrics, engine)
    request_log = RequestLog(settings.request_log_size, settings.slow_request_s, settings.replica)
    tracker = Tracker(settings, metrics, request_log)
    if peers is None and settings.peer_dns:
        peers = PeerLookup(settings.peer_dns, settings.port, settings.peer_timeout_s)
    metrics_endpoint = MetricsEndpoint(registry)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        engine.start()
        lag = asyncio.create_task(LoopLagMonitor(metrics.loop_lag).run(), name="loop-lag")
        try:
            yield {}
        finally:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
            engine.stop()
            metrics_endpoint.close()
            collector.close()

    app = FastAPI(
        title="OFA-VE visual entailment",
        version=__version__,
        description="Image + sentence in, YES / NO / MAYBE out (ModelScope OFA visual entailment).",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.service = service
    app.state.request_log = request_log
    api.install(app, settings, metrics, service, tracker)
    app.include_router(build_detail_router(request_log, peers))
    for path in ("/metrics", "/metrics/"):
        app.router.routes.append(
            Route(path, _AsgiEndpoint(metrics_endpoint), methods=["GET"], include_in_schema=False)
        )
    if settings.enable_ui:
        from ofa_ve.ui import mount_ui

        mount_ui(app, settings, tracker, service)
    app.add_middleware(RequestContextMiddleware)
    return app
