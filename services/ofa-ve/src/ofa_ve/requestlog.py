"""A bounded log of recent requests worth looking at, behind /v1/requests/{id} and the exemplar links.

Kept per kind, each kind its own ring of `per_kind` requests so that one kind never crowds out
another: `server_error` (5xx other than load shedding), `client_error` (4xx), `slow` (at least
`slow_s` from arrival to response) and `sampled` (an exemplar names it). Shed requests (503
overloaded / not_ready / queue_full) are kept only when sampled: under overload they come by the
thousand and say nothing a counter does not.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

from ofa_ve.context import RequestContext, timings_ms
from ofa_ve.redact import redact_message

KINDS = ("server_error", "client_error", "slow", "sampled")
# The kinds GET /v1/errors lists (server errors by default: those are the service's failures).
ERROR_KINDS = ("server_error", "client_error")
SHED_CODES = frozenset({"overloaded", "not_ready", "queue_full"})


def kinds_of(ctx: RequestContext, slow_s: float) -> list[str]:
    """The kinds `ctx` belongs to (sampled included only when an exemplar names it)."""
    kinds: list[str] = []
    status = ctx.status_code or 0
    shed = ctx.error is not None and ctx.error.get("code") in SHED_CODES
    if status >= 500 and not shed:
        kinds.append("server_error")
    elif 400 <= status < 500:
        kinds.append("client_error")
    if ctx.duration_s is not None and ctx.duration_s >= slow_s and not shed:
        kinds.append("slow")
    if ctx.sampled:
        kinds.append("sampled")
    return kinds


def to_record(ctx: RequestContext, replica: str, kinds: list[str]) -> dict[str, Any]:
    """What /v1/requests/{id} shows: outcome, stage times and, per item, sizes and its forward pass."""
    return {
        "request_id": ctx.request_id,
        "endpoint": ctx.endpoint,
        "replica": replica,
        "status_code": ctx.status_code,
        "error": ctx.error,
        "cause": ctx.cause,
        "received_at": datetime.fromtimestamp(ctx.received_unix, UTC).isoformat(timespec="milliseconds"),
        "duration_ms": None if ctx.duration_s is None else round(ctx.duration_s * 1000.0, 3),
        "kept_as": kinds,
        "timings_ms": timings_ms(ctx.stage_totals_s()),
        "items": [
            {
                "index": t.index,
                "image_bytes": t.image_bytes,
                "image_pixels": t.image_pixels,
                "text_chars": t.text_chars,
                "premise_chars": t.premise_chars,
                "batch_id": t.batch_id,
                "batch_size": t.batch_size,
                "timings_ms": timings_ms(t.timings_s),
                "error": t.error,
            }
            for t in ctx.items
        ],
    }


def error_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A kept failed request as the recent-errors view shows it: ids, outcome, error code and cause,
    stage times; no user text, and for a client error no message (it may echo the caller's input)."""
    error = record.get("error") or {}
    server = (record.get("status_code") or 0) >= 500
    return {
        "request_id": record["request_id"],
        "received_at": record["received_at"],
        "endpoint": record["endpoint"],
        "replica": record["replica"],
        "status_code": record["status_code"],
        "code": error.get("code"),
        "cause": record.get("cause"),
        "message": redact_message(error.get("message")) if server else None,
        "duration_ms": record["duration_ms"],
        "timings_ms": record["timings_ms"],
        "items": len(record["items"]),
        "item_errors": sorted({i["error"]["code"] for i in record["items"] if i.get("error")}),
    }


class RequestLog:
    """The rings and an index by request id (a re-used X-Request-ID shows its latest request)."""

    def __init__(self, per_kind: int, slow_s: float, replica: str) -> None:
        if per_kind < 1:
            raise ValueError(f"per_kind must be >= 1, got {per_kind}")
        self.per_kind = per_kind
        self.slow_s = slow_s
        self.replica = replica
        self._rings: dict[str, deque[str]] = {kind: deque() for kind in KINDS}
        self._records: dict[str, dict[str, Any]] = {}
        self._refs: dict[str, int] = {}
        self._lock = threading.Lock()

    def must_keep(self, ctx: RequestContext) -> bool:
        """Whether `ctx` is kept whatever the sampling (its exemplar is then always attached)."""
        return any(kind != "sampled" for kind in kinds_of(ctx, self.slow_s))

    def add(self, ctx: RequestContext) -> bool:
        """Keeps `ctx` if it belongs to any kind; True when kept."""
        kinds = kinds_of(ctx, self.slow_s)
        if not kinds:
            return False
        record = to_record(ctx, self.replica, kinds)
        with self._lock:
            self._records[ctx.request_id] = record
            for kind in kinds:
                ring = self._rings[kind]
                ring.append(ctx.request_id)
                self._refs[ctx.request_id] = self._refs.get(ctx.request_id, 0) + 1
                if len(ring) > self.per_kind:
                    self._forget(ring.popleft())
        return True

    def _forget(self, request_id: str) -> None:
        left = self._refs[request_id] - 1
        if left:
            self._refs[request_id] = left
        else:
            del self._refs[request_id]
            del self._records[request_id]

    def get(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._records.get(request_id)

    def recent(self, kind: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` records of one kind, newest first."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        with self._lock:
            ids = list(self._rings[kind])[-limit:] if limit > 0 else []
            return [self._records[i] for i in reversed(ids)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)
