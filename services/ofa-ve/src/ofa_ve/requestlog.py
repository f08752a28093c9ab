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

KINDS = ("server_error", "client_error", "slow", "sampled")
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

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)
