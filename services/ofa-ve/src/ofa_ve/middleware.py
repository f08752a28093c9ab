"""The outermost ASGI layer: a request context for every HTTP request, X-Request-ID and Server-Timing.

Server-Timing carries the stage times of the request (`wait` before the handler ran, `read` of the
body, then decode / preprocess / queue / inference / postprocess, the longest over a batch call's
items) and `total` from the request's arrival to the response, in milliseconds, so a client can
reconcile what it measured with what the service measured.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ofa_ve import context
from ofa_ve.arrival import received_at
from ofa_ve.context import RequestContext
from ofa_ve.logging_setup import accept_request_id, request_id_var


class RequestContextMiddleware:
    """Honours a well-formed X-Request-ID (or generates one), exposes it to logs, echoes it back, and
    adds Server-Timing to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = time.perf_counter()
        received = received_at(scope) or now
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = accept_request_id(given)
        ctx = RequestContext(request_id, received, received_unix=time.time() - (now - received))
        id_token = request_id_var.set(request_id)
        ctx_token = context.activate(ctx)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                skip = {b"x-request-id", b"server-timing"}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in skip]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.append((b"server-timing", ctx.server_timing(time.perf_counter()).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            context.deactivate(ctx_token)
            request_id_var.reset(id_token)
