"""GET /inbox (a page for people) and GET /api/v1/inbox (the same as JSON), behind the relay's login."""

from __future__ import annotations

import asyncio
import dataclasses
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from webhook_relay.context import Relay, relay_of, require_login
from webhook_relay.inboxpage import render_inbox

router = APIRouter(dependencies=[Depends(require_login)])


def _limit(limit: int) -> int:
    return max(1, min(limit, 1000))


def _look(relay: Relay) -> tuple[ZoneInfo, str]:
    """Time zone and language of the inbox target when there is one (else UTC, English)."""
    for target in relay.config.targets.values():
        if target.kind == "inbox":
            return ZoneInfo(target.timezone), target.language
    return ZoneInfo("UTC"), "en"


@router.get("/inbox")
async def inbox_page(request: Request, target: str | None = None, limit: int = 100) -> Response:
    relay = relay_of(request)
    entries = await asyncio.to_thread(relay.inbox.entries, target or None, _limit(limit))
    counts = await asyncio.to_thread(relay.inbox.counts)
    zone, language = _look(relay)
    page = render_inbox(
        entries=entries,
        counts=counts,
        beats=relay.heartbeat.status(),
        targets={name: t.kind for name, t in relay.config.targets.items()},
        disabled=relay.config.disabled_targets,
        selected=target or None,
        zone=zone,
        language=language,
        now=relay.clock(),
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/api/v1/inbox")
async def inbox_json(request: Request, target: str | None = None, limit: int = 100) -> Response:
    relay = relay_of(request)
    entries = await asyncio.to_thread(relay.inbox.entries, target or None, _limit(limit))
    beats = [
        {
            "route": b.route, "last_seen": b.last_seen, "received": b.received,
            "alertnames": sorted({a.labels.get("alertname", "") for a in b.last.alerts}) if b.last else [],
            "forward_result": b.forward_result, "forwarded_at": b.forwarded_at,
            "missing_since": b.alarm_since,
        }
        for b in relay.heartbeat.status()
    ]
    return JSONResponse({
        "targets": {name: t.kind for name, t in relay.config.targets.items()},
        "disabled": list(relay.config.disabled_targets),
        "heartbeats": beats,
        "messages": [dataclasses.asdict(e) for e in entries],
    })
