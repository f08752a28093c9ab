"""POST /api/v1/preview: exactly what each target would receive; sends and stores nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from webhook_relay.alertmanager import Notification
from webhook_relay.context import ApiError, read_body, relay_of, require_token
from webhook_relay.render import RenderError
from webhook_relay.split import SplitError

router = APIRouter(dependencies=[Depends(require_token)])


@router.post("/api/v1/preview")
async def preview(request: Request) -> Response:
    relay = relay_of(request)
    config = relay.config
    try:
        doc = json.loads(await read_body(request, config.server.max_body_bytes))
    except ValueError:
        raise ApiError(400, "body must be JSON") from None
    if not isinstance(doc, dict) or "payload" not in doc:
        raise ApiError(400, 'body must be {"payload": <Alertmanager webhook>, "route" or "target": name}')
    route = doc.get("route")
    if doc.get("target") is not None:
        if doc["target"] not in config.targets:
            raise ApiError(404, f"unknown target; configured targets: {sorted(config.targets)}")
        names = [doc["target"]]
        route = route if route in config.routes else None
    else:
        if route not in config.routes:
            raise ApiError(404, f"unknown route; configured routes: {sorted(config.routes)}")
        names = config.routes[route].targets
        if not names:
            raise ApiError(422, f"route {route} only records heartbeats; it sends nothing")
    try:
        note = Notification.model_validate(doc["payload"])
    except ValidationError as exc:
        raise ApiError(400, f"payload is not an Alertmanager webhook: {exc.error_count()} error(s)") from None
    out: dict[str, Any] = {}
    evidence, png = None, None
    match = config.enrichment.match.items()
    matched = any(a.status == "firing" and all(a.labels.get(k) == v for k, v in match) for a in note.alerts)
    if relay.preview_evidence is not None and doc.get("enrich", True) is not False and matched:
        # Gathered now, as the enricher would (within the message deadline); nothing is stored, so the
        # chart link of the preview does not open: the PNG is in `evidence.chart_png_base64` instead.
        evidence, png = await relay.preview_evidence(note, route)
    available = config.enrichment.available()
    for name in names:
        target = config.targets[name]
        parts = config.evidence_parts(route, name) if route else available & set(target.enrich)
        try:
            rendered = relay.sender.renderers[name].render_budgeted(
                note, None, evidence, parts if evidence is not None else frozenset(),
                png if target.kind == "wecom" else None)
        except (RenderError, SplitError) as exc:
            raise ApiError(422, f"target {name}: {exc}") from None
        channel = relay.sender.channels[name]
        out[name] = {
            "channel": target.kind,
            "mode": rendered.mode,
            # What each message would be: a robot's request body (URL masked), an email's parts, ...
            "messages": [
                {**channel.preview(m, relay.clock()), "bytes": len(m.text.encode("utf-8"))}
                for m in rendered.messages
            ],
        }
    body: dict[str, Any] = {"targets": out}
    if evidence is not None:
        body["evidence"] = {**evidence.model_dump(),
                            "chart_png_base64": base64.b64encode(png).decode() if png else None}
    return JSONResponse(body)
