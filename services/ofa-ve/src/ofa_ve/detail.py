"""GET /v1/requests/{id}: one kept request in detail, JSON for programs, a small HTML page for browsers.

The target of the exemplar links (Grafana's datasource sends the request id there): stage times,
image size and pixels, text length, batch id and size, replica, status and error.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ofa_ve.logging_setup import is_request_id
from ofa_ve.peers import PEER_HEADER, PeerLookup
from ofa_ve.requestlog import ERROR_KINDS, RequestLog, error_summary

# GET /v1/errors returns at most this many records (the log keeps OFA_VE_REQUEST_LOG_SIZE per kind).
MAX_ERRORS = 50


def wants_html(request: Request) -> bool:
    """A browser asks for text/html before anything JSON."""
    accept = request.headers.get("accept", "")
    html_at, json_at = accept.find("text/html"), accept.find("application/json")
    return html_at >= 0 and (json_at < 0 or html_at < json_at)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        return ", ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in value.items()) or "–"
    if isinstance(value, list):
        return html.escape(", ".join(str(v) for v in value))
    return html.escape(str(value))


def render_html(record: dict[str, Any]) -> str:
    """The record as one page: a table of the request, one of its stages, one row per item."""
    head = [k for k in record if k not in {"timings_ms", "items"}]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_cell(record[k])}</td></tr>" for k in head)
    stages = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:.3f} ms</td></tr>"
                     for k, v in record["timings_ms"].items())
    item_keys = ["index", "image_bytes", "image_pixels", "text_chars", "premise_chars", "batch_id",
                 "batch_size", "timings_ms", "error"]
    item_head = "".join(f"<th>{k}</th>" for k in item_keys)
    items = "".join("<tr>" + "".join(f"<td>{_cell(item.get(k))}</td>" for k in item_keys) + "</tr>"
                    for item in record["items"])
    title = html.escape(f"request {record['request_id']}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        "table{border-collapse:collapse;margin-bottom:1em}</style></head><body>"
        f"<h1>{title}</h1><table>{rows}</table><h2>stages</h2><table>{stages}</table>"
        f"<h2>items</h2><table><tr>{item_head}</tr>{items}</table></body></html>"
    )


def build_detail_router(request_log: RequestLog, peers: PeerLookup | None = None) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/requests/{request_id}",
        summary="A recent slow, failed or sampled request in detail (the target of exemplar links)",
        responses={404: {"description": "not kept (only slow, failed and sampled requests are)"}},
    )
    async def request_detail(request_id: str, request: Request) -> Response:
        record = request_log.get(request_id) if is_request_id(request_id) else None
        asked_by_peer = PEER_HEADER in request.headers
        if record is None and peers is not None and is_request_id(request_id) and not asked_by_peer:
            record = await peers.find(request_id)
        if record is None:
            return JSONResponse({"error": {
                "code": "request_not_found",
                "message": f"request {request_id!r} is not in the log of recent slow, failed and sampled "
                           "requests (it was fast, or has been evicted)",
            }, "request_id": request_id}, status_code=404)
        if wants_html(request):
            return HTMLResponse(render_html(record))
        return JSONResponse(record)

    @router.get(
        "/v1/errors",
        summary="This replica's most recent failed requests, newest first (ids, codes, causes; redacted)",
        responses={422: {"description": "unknown kind"}},
    )
    async def recent_errors(limit: int = 5, kind: str = "server_error") -> Response:
        if kind not in ERROR_KINDS:
            return JSONResponse({"error": {
                "code": "invalid_request", "message": f"kind must be one of {list(ERROR_KINDS)}",
            }}, status_code=422)
        records = request_log.recent(kind, max(0, min(limit, MAX_ERRORS)))
        return JSONResponse({"replica": request_log.replica, "kind": kind,
                             "errors": [error_summary(r) for r in records]})

    return router
