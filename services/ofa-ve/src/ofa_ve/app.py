"""The application factory: FastAPI app with API routes, /metrics, request ids and (optionally) the UI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ofa_ve import __version__, api
from ofa_ve.engine import Engine
from ofa_ve.gpu import GpuCollector, load_nvml
from ofa_ve.logging_setup import accept_request_id, request_id_var
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.service import EntailmentService
from ofa_ve.settings import Settings


class RequestIdMiddleware:
    """Honours a well-formed X-Request-ID (or generates one), exposes it to logs and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = accept_request_id(given)
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


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
) -> FastAPI:
    """Builds the service. `engine` (built on a ServiceMetrics of the same registry) replaces the real one."""
    if engine is None:
        metrics = ServiceMetrics(registry)
        engine = Engine(settings, metrics)
    else:
        metrics = engine.metrics
    metrics.expected_replicas.set(settings.expected_replicas)
    registry.register(gpu_collector if gpu_collector is not None else _default_gpu_collector())
    service = EntailmentService(settings, metrics, engine)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        engine.start()
        try:
            yield {}
        finally:
            engine.stop()

    app = FastAPI(
        title="OFA-VE visual entailment",
        version=__version__,
        description="Image + sentence in, YES / NO / MAYBE out (ModelScope OFA visual entailment).",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.metrics = metrics
    api.install(app, settings, metrics, service)
    metrics_endpoint = _AsgiEndpoint(make_asgi_app(registry))
    for path in ("/metrics", "/metrics/"):
        app.router.routes.append(Route(path, metrics_endpoint, methods=["GET"], include_in_schema=False))
    if settings.enable_ui:
        from ofa_ve.ui import mount_ui

        mount_ui(app, settings, metrics, service)
    app.add_middleware(RequestIdMiddleware)
    return app
