"""Unauthenticated endpoints: probes, metrics and the runbook (none of them holds a secret)."""

from __future__ import annotations

import asyncio
import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webhook_relay.context import ApiError, relay_of

log = logging.getLogger(__name__)
router = APIRouter()
_CHART_ID = re.compile(r"^[0-9a-f]{32}$")


@router.get("/-/healthy")
async def healthy() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/-/ready")
async def ready(request: Request) -> Response:
    """200 only while the relay can store and deliver: outbox writable, every background part up."""
    problems = await relay_of(request).problems()
    if problems:
        log.error("relay not ready", extra={"problems": problems})
        return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    # The outbox collector reads SQLite: keep that off the event loop.
    body = await asyncio.to_thread(generate_latest, request.app.state.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/runbook")
async def runbook(request: Request) -> Response:
    book = relay_of(request).runbook
    if book is None:
        raise ApiError(404, "no runbook configured (server.runbook_path)")
    try:
        page = await asyncio.to_thread(book.page)
    except OSError as exc:
        log.error("runbook unreadable", extra={"path": str(book.path), "error": exc.strerror})
        raise ApiError(503, "the runbook file cannot be read") from None
    return HTMLResponse(page)


@router.get("/charts/{chart_id}.png")
async def chart(chart_id: str, request: Request, exp: str = "", sig: str = "") -> Response:
    """An evidence chart, for whoever holds a signed, unexpired link (DingTalk's image fetcher, the
    inbox page): no login, as the chat's servers have none."""
    relay = relay_of(request)
    now = relay.clock()
    if not _CHART_ID.match(chart_id) or not relay.charts.valid(chart_id, exp, sig, now):
        raise ApiError(404, "no such chart, or the link expired")
    stored = await asyncio.to_thread(relay.outbox.chart, chart_id)
    if stored is None:
        raise ApiError(404, "no such chart, or the link expired")
    ttl = max(0, int(exp) - int(now))
    return Response(stored.png, media_type="image/png",
                    headers={"Cache-Control": f"private, max-age={ttl}", "X-Content-Type-Options": "nosniff"})
