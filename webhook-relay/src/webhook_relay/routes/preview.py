"""POST /api/v1/preview: the exact requests each target would receive; sends and stores nothing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from webhook_relay.alertmanager import Notification
from webhook_relay.channels import CHANNELS
from webhook_relay.context import ApiError, read_body, relay_of, require_token
from webhook_relay.masking import mask_url
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
        requests = [CHANNELS[target.kind].build(target, m, relay.clock()) for m in rendered.messages]
        out[name] = {
            "channel": target.kind,
            "mode": rendered.mode,
            "messages": [
                {"url": mask_url(r.url), "body": r.body, "bytes": len(m.text.encode("utf-8"))}
                for r, m in zip(requests, rendered.messages, strict=True)
            ],
        }
    return JSONResponse({"targets": out})
