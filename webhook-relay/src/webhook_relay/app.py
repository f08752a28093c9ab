"""HTTP API: Alertmanager webhooks in, health, metrics, dead letters and preview."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

from webhook_relay import __version__
from webhook_relay.alertmanager import Notification
from webhook_relay.channels import CHANNELS
from webhook_relay.config import RelayConfig
from webhook_relay.heartbeat import HeartbeatWatch
from webhook_relay.masking import mask_url
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Delivery, Outbox, StorageError
from webhook_relay.render import RenderError
from webhook_relay.sender import Sender
from webhook_relay.split import SplitError

log = logging.getLogger(__name__)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    config: RelayConfig,
    registry: CollectorRegistry,
    outbox: Outbox,
    *,
    client: httpx.AsyncClient | None = None,
    run_sender: bool = True,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the relay app. The sender runs in the app's lifespan when `run_sender` is true."""
    metrics = RelayMetrics(registry)
    for name, target in config.targets.items():
        metrics.init_target(name, target.kind)
    metrics.watch_outbox(lambda: outbox.stats(clock()), list(config.targets))
    http = client or httpx.AsyncClient(timeout=config.delivery.timeout_seconds)
    sender = Sender(config, outbox, metrics, http, clock=clock)
    watch = HeartbeatWatch(config, outbox, metrics, sender.wake, clock)
    for route in watch.routes:
        metrics.heartbeat_last_seen.labels(route=route)
    token = config.server.auth_token.get_secret_value().encode() if config.server.auth_token else None
    max_body = config.server.max_body_bytes

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if run_sender:
            tasks = [
                asyncio.create_task(sender.run(), name="sender"),
                asyncio.create_task(watch.run(), name="heartbeat-watch"),
            ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if client is None:
                await http.aclose()

    app = FastAPI(
        title="webhook-relay",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.sender = sender
    app.state.heartbeat = watch
    app.state.metrics = metrics

    def authorized(request: Request) -> bool:
        if token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Constant-time comparison, so the token cannot be guessed byte by byte from timings.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token)

    def unauthorized() -> JSONResponse:
        return JSONResponse(
            {"error": "missing or invalid bearer token"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.post("/webhook/{route}")
    async def receive(route: str, request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        if route not in config.routes:
            # Not counted by route: the label must stay a configured name, never caller input.
            return _error(404, f"unknown route; configured routes: {sorted(config.routes)}")
        try:
            body = await _read_body(request, max_body)
        except _BodyTooLarge:
            metrics.received.labels(route=route, result="rejected").inc()
            return _error(413, f"body larger than {max_body} bytes")
        try:
            note = Notification.model_validate_json(body)
        except ValidationError as exc:
            metrics.received.labels(route=route, result="rejected").inc()
            problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
            return _error(400, "not an Alertmanager webhook payload: " + "; ".join(problems))
        if route in watch.routes:
            watch.beat(route)
        targets = config.routes[route].targets
        if not targets:
            # A pure heartbeat route: noting the time was the whole job.
            metrics.received.labels(route=route, result="accepted").inc()
            return JSONResponse({"status": "heartbeat"}, status_code=202)
        try:
            # Awaiting the future holds no thread: many webhooks can share one group commit.
            stored = await asyncio.wrap_future(
                outbox.submit(
                    route,
                    targets,
                    body.decode("utf-8"),
                    note.dedup_key(route),
                    config.delivery.dedup_window_seconds,
                    clock(),
                )
            )
        except StorageError as exc:
            metrics.received.labels(route=route, result="error").inc()
            log.error("could not store notification", extra={"route": route, "error": str(exc)})
            # 5xx makes Alertmanager retry: the notification is not lost.
            return _error(503, "could not store the notification; retry later")
        if stored is None:
            metrics.received.labels(route=route, result="duplicate").inc()
            return JSONResponse({"status": "duplicate"}, status_code=200)
        metrics.received.labels(route=route, result="accepted").inc()
        sender.wake(targets)
        return JSONResponse({"status": "accepted", "id": stored}, status_code=202)

    @app.get("/-/healthy")
    async def healthy() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/-/ready")
    async def ready() -> Response:
        try:
            await asyncio.to_thread(outbox.check_writable, clock())
        except StorageError as exc:
            log.error("outbox not writable", extra={"error": str(exc)})
            return _error(503, "outbox database is not writable")
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        # The outbox collector reads SQLite: keep that off the event loop.
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/dead-letters")
    async def dead_letters(request: Request, limit: int = 100) -> Response:
        if not authorized(request):
            return unauthorized()
        items = await asyncio.to_thread(outbox.dead_letters, max(1, min(limit, 1000)))
        return JSONResponse({"dead_letters": [dead_letter_json(d) for d in items]})

    @app.post("/api/v1/dead-letters/{delivery_id}/replay")
    async def replay(delivery_id: int, request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        if not await asyncio.to_thread(outbox.replay, delivery_id, clock()):
            return _error(404, f"no dead letter with id {delivery_id}")
        item = await asyncio.to_thread(outbox.get, delivery_id)
        if item is not None:
            sender.wake([item.target])
        log.info("dead letter replayed", extra={"delivery_id": delivery_id})
        return JSONResponse({"status": "requeued", "id": delivery_id}, status_code=202)

    @app.post("/api/v1/preview")
    async def preview(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        try:
            doc = json.loads(await _read_body(request, max_body))
        except _BodyTooLarge:
            return _error(413, f"body larger than {max_body} bytes")
        except ValueError:
            return _error(400, "body must be JSON")
        if not isinstance(doc, dict) or "payload" not in doc:
            return _error(400, 'body must be {"payload": <Alertmanager webhook>, "route" or "target": name}')
        if doc.get("target") is not None:
            if doc["target"] not in config.targets:
                return _error(404, f"unknown target; configured targets: {sorted(config.targets)}")
            names = [doc["target"]]
        else:
            route = doc.get("route")
            if route not in config.routes:
                return _error(404, f"unknown route; configured routes: {sorted(config.routes)}")
            names = config.routes[route].targets
            if not names:
                return _error(422, f"route {route} only records heartbeats; it sends nothing")
        try:
            note = Notification.model_validate(doc["payload"])
        except ValidationError as exc:
            return _error(400, f"payload is not an Alertmanager webhook: {exc.error_count()} error(s)")
        out: dict[str, Any] = {}
        for name in names:
            target = config.targets[name]
            try:
                messages = sender.renderers[name].render(note)
            except (RenderError, SplitError) as exc:
                return _error(422, f"target {name}: {exc}")
            requests = [CHANNELS[target.kind].build(target, m, clock()) for m in messages]
            out[name] = {
                "channel": target.kind,
                "messages": [
                    {"url": mask_url(r.url), "body": r.body, "bytes": len(m.text.encode("utf-8"))}
                    for r, m in zip(requests, messages, strict=True)
                ],
            }
        return JSONResponse({"targets": out})

    return app


def dead_letter_json(d: Delivery) -> dict[str, Any]:
    """The API / CLI view of a dead letter (alert names instead of the whole payload)."""
    try:
        alerts = json.loads(d.payload).get("alerts", [])
        names = sorted({a.get("labels", {}).get("alertname", "") for a in alerts})
    except (ValueError, AttributeError):
        names = []
    return {
        "id": d.id,
        "target": d.target,
        "route": d.route,
        "reason": d.reason,
        "error": d.last_error,
        "attempts": d.attempts,
        "received_at": d.received_at,
        "failed_at": d.updated_at,
        "alertnames": names,
        "parts_sent": d.parts_sent,
    }
