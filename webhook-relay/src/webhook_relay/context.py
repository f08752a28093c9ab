"""Everything a request handler of the relay may need, built once by `create_app`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import JSONResponse

from webhook_relay.alertmanager import Notification
from webhook_relay.charts import ChartLinks
from webhook_relay.config import RelayConfig
from webhook_relay.evidence import Evidence
from webhook_relay.heartbeat import HeartbeatWatch
from webhook_relay.inbox import Inbox
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Outbox, StorageError
from webhook_relay.runbook import Runbook
from webhook_relay.selfcheck import StorageWatch
from webhook_relay.sender import Sender
from webhook_relay.supervise import Supervisor


class ApiError(Exception):
    """Answered as `{"error": message}` with `status` (and `headers`)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


@dataclass
class Relay:
    config: RelayConfig
    outbox: Outbox
    metrics: RelayMetrics
    sender: Sender
    heartbeat: HeartbeatWatch
    storage: StorageWatch
    supervisor: Supervisor
    runbook: Runbook | None
    clock: Callable[[], float]
    token: bytes | None
    inbox: Inbox
    charts: ChartLinks
    # Set by create_app when enrichment is on: wake the enricher after storing a held notification,
    # and gather evidence for /api/v1/preview (with the chart PNG, which a preview does not store).
    wake_enricher: Callable[[], None] = field(default=lambda: None)
    preview_evidence: (
        Callable[[Notification, str | None], Awaitable[tuple[Evidence, bytes | None]]] | None
    ) = None

    def authorized(self, header: str, *, basic: bool = False) -> bool:
        """A bearer token equal to ours; with `basic`, also HTTP Basic with ours as the password."""
        if self.token is None:
            return True
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "basic" and basic:
            try:
                decoded = base64.b64decode(given.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            # Any user name: the token is the one secret; browsers just need a field to fill.
            given = decoded.partition(b":")[2].decode("utf-8", "replace")
        elif scheme.lower() != "bearer":
            return False
        # Constant-time comparison, so the token cannot be guessed byte by byte from timings.
        return hmac.compare_digest(given.strip().encode(), self.token)

    async def problems(self) -> list[str]:
        """Why the relay cannot do its job right now (empty when it can)."""
        found = self.supervisor.problems()
        try:
            await asyncio.to_thread(self.outbox.check_writable, self.clock())
        except StorageError:
            found.append("outbox_not_writable")
        return found


def relay_of(request: Request) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


def require_token(request: Request) -> None:
    """Dependency of every route but probes, metrics and the runbook."""
    if not relay_of(request).authorized(request.headers.get("authorization", "")):
        raise ApiError(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})


def require_login(request: Request) -> None:
    """Dependency of the pages people open in a browser (/inbox): HTTP Basic, the relay's token as the
    password (any user name), or the same bearer header the API takes. The challenge makes the browser
    ask for it; nothing is stored server-side, and a GET-only page has nothing to forge (no CSRF)."""
    if not relay_of(request).authorized(request.headers.get("authorization", ""), basic=True):
        raise ApiError(401, "log in with any user name and the relay's token as the password",
                       {"WWW-Authenticate": 'Basic realm="webhook-relay inbox", charset="UTF-8"'})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused past `limit` bytes whether or not Content-Length says so."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
