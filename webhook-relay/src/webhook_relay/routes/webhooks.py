"""POST /webhook/{route}: store first (durably), acknowledge second, deliver in the background."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from webhook_relay.alertmanager import Notification
from webhook_relay.context import ApiError, read_body, relay_of, require_token
from webhook_relay.hold import evidence_hold
from webhook_relay.outbox import StorageError

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(require_token)])

# An acknowledged webhook must be durable; one that cannot be stored in this long is refused with a
# 503 so that Alertmanager retries it, instead of holding its connection forever.
STORE_TIMEOUT_SECONDS = 30.0


@router.post("/webhook/{route}")
async def receive(route: str, request: Request) -> Response:
    relay = relay_of(request)
    config, metrics = relay.config, relay.metrics
    if route not in config.routes:
        # Not counted by route: the label must stay a configured name, never caller input.
        raise ApiError(404, f"unknown route; configured routes: {sorted(config.routes)}")
    try:
        body = await read_body(request, config.server.max_body_bytes)
    except ApiError:
        metrics.received.labels(route=route, result="rejected").inc()
        raise
    try:
        note = Notification.model_validate_json(body)
    except ValidationError as exc:
        metrics.received.labels(route=route, result="rejected").inc()
        problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
        raise ApiError(400, "not an Alertmanager webhook payload: " + "; ".join(problems)) from None
    if route in relay.heartbeat.routes:
        relay.heartbeat.beat(route, note)
    targets = config.routes[route].targets
    if not targets:
        # A pure heartbeat route: noting the time (and forwarding it) was the whole job.
        metrics.received.labels(route=route, result="accepted").inc()
        return JSONResponse({"status": "heartbeat"}, status_code=202)
    try:
        if not relay.outbox.writer_alive:
            raise StorageError("the outbox writer has stopped")
        now = relay.clock()
        # Enriched alerts wait for their evidence until the message deadline at most (a stored time).
        hold = evidence_hold(config, route, note, now)
        future = relay.outbox.submit(
            route, targets, body.decode("utf-8"), note.dedup_key(route),
            config.delivery.dedup_window_seconds, now, hold,
        )
        # Awaiting the future holds no thread: many webhooks can share one group commit.
        stored = await asyncio.wait_for(asyncio.wrap_future(future), STORE_TIMEOUT_SECONDS)
    except (StorageError, TimeoutError) as exc:
        metrics.received.labels(route=route, result="error").inc()
        log.error("could not store notification", extra={"route": route, "error": str(exc) or "timeout"})
        # 5xx makes Alertmanager retry: the notification is not lost.
        raise ApiError(503, "could not store the notification; retry later") from None
    if stored is None:
        metrics.received.labels(route=route, result="duplicate").inc()
        return JSONResponse({"status": "duplicate"}, status_code=200)
    metrics.received.labels(route=route, result="accepted").inc()
    relay.sender.wake(targets)
    if hold is not None:
        relay.wake_enricher()
    return JSONResponse({"status": "accepted", "id": stored}, status_code=202)
