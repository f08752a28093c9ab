"""Dead letters: list, replay (after fixing the cause) and discard (when nobody needs them)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from webhook_relay.context import ApiError, relay_of, require_token
from webhook_relay.outbox import Delivery

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/dead-letters", dependencies=[Depends(require_token)])


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


@router.get("")
async def dead_letters(request: Request, limit: int = 100) -> Response:
    relay = relay_of(request)
    items = await asyncio.to_thread(relay.outbox.dead_letters, max(1, min(limit, 1000)))
    return JSONResponse({"dead_letters": [dead_letter_json(d) for d in items]})


@router.post("/{delivery_id}/replay")
async def replay(delivery_id: int, request: Request) -> Response:
    relay = relay_of(request)
    if not await asyncio.to_thread(relay.outbox.replay, delivery_id, relay.clock()):
        raise ApiError(404, f"no dead letter with id {delivery_id}")
    item = await asyncio.to_thread(relay.outbox.get, delivery_id)
    if item is not None:
        relay.sender.wake([item.target])
    log.info("dead letter replayed", extra={"delivery_id": delivery_id})
    return JSONResponse({"status": "requeued", "id": delivery_id}, status_code=202)


@router.delete("/{delivery_id}")
async def discard(delivery_id: int, request: Request) -> Response:
    relay = relay_of(request)
    item = await asyncio.to_thread(relay.outbox.get, delivery_id)
    discarded = item is not None and item.status == "dead"
    if item is None or not discarded or not await asyncio.to_thread(relay.outbox.discard, delivery_id):
        raise ApiError(404, f"no dead letter with id {delivery_id}")
    log.info("dead letter discarded", extra={**dead_letter_json(item), "payload": None, "error": None})
    return JSONResponse({"status": "discarded", "id": delivery_id})
