"""POST /api/v1/preview: exactly what each target would receive; sends and stores nothing."""

from __future__ import annotations

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
    if doc.get("target") is not None:
        if doc["target"] not in config.targets:
            raise ApiError(404, f"unknown target; configured targets: {sorted(config.targets)}")
        names = [doc["target"]]
    else:
        route = doc.get("route")
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
    for name in names:
        target = config.targets[name]
        try:
            rendered = relay.sender.renderers[name].render_budgeted(note)
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
    return JSONResponse({"targets": out})
