"""The last failed requests of an instance, from its own recent-errors view (ofa-ve: GET /v1/errors).

The service redacts them (no user text, secrets masked); they are scrubbed again here, since a message
may go to a hosted language model: URLs masked, long tokens cut, every field bounded.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx

from webhook_relay.evidence import ErrorRecord
from webhook_relay.masking import scrub

# host:port as Prometheus writes `instance` (an IPv6 address in brackets).
_INSTANCE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$")
_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{24,}")


class ErrorsUnavailable(Exception):
    """The view could not be read."""


def _short(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def record(item: dict[str, Any]) -> ErrorRecord | None:
    """One record of the view, bounded and scrubbed (None when it has no request id)."""
    request_id = _short(item.get("request_id"), 64)
    if not request_id:
        return None
    message = _short(item.get("message"), 160)
    if message:
        message = _TOKEN.sub("<redacted>", scrub(message, []))
    status = item.get("status_code")
    return ErrorRecord(
        at=_when(item.get("received_at")),
        request_id=request_id,
        status_code=status if isinstance(status, int) else None,
        code=_short(item.get("code"), 40),
        cause=_short(item.get("cause"), 60),
        message=message,
    )


async def recent_errors(client: httpx.AsyncClient, instance: str, path: str, count: int) -> list[ErrorRecord]:
    """The newest `count` server errors of `instance`, asked at http://<instance><path>."""
    if not _INSTANCE.match(instance):
        raise ErrorsUnavailable("the instance label is not host:port")
    try:
        reply = await client.get(f"http://{instance}{path}", params={"limit": str(count)})
        body = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ErrorsUnavailable(type(exc).__name__) from None
    if reply.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        raise ErrorsUnavailable(f"HTTP {reply.status_code}")
    found = [record(item) for item in body["errors"][:count] if isinstance(item, dict)]
    return [r for r in found if r is not None]
