"""What one request went through: its id, when it arrived, stage times, items, outcome.

Created by the middleware for every HTTP request (and by the UI handler for a UI call), reachable from
anywhere in the request's task and its worker threads through `current()`. It feeds the Server-Timing
header, the exemplars (request id) and the request log behind /v1/requests/{id}.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from typing import Any

# Request-level stages, in the order Server-Timing lists them; item stages follow (STAGES in metrics).
REQUEST_STAGES = ("wait", "read")
ITEM_STAGES = ("decode", "preprocess", "queue", "inference", "postprocess")


@dataclass
class ItemTrace:
    """One image/sentence pair of a request: sizes, the forward pass that served it, stage times."""

    index: int
    image_bytes: int | None = None
    image_pixels: int | None = None
    text_chars: int | None = None
    premise_chars: int | None = None
    batch_id: int | None = None
    batch_size: int | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    error: dict[str, str] | None = None


@dataclass
class RequestContext:
    """A request in flight. `received` is time.perf_counter() when the server had read its head."""

    request_id: str
    received: float
    received_unix: float = field(default_factory=time.time)
    endpoint: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    items: list[ItemTrace] = field(default_factory=list)
    status_code: int | None = None
    error: dict[str, str] | None = None
    cause: str | None = None
    duration_s: float | None = None
    # Set when an exemplar names this request: the request log must then keep it, or the link dangles.
    sampled: bool = False

    def item(self, index: int) -> ItemTrace:
        """The trace of item `index`, created on first use."""
        while len(self.items) <= index:
            self.items.append(ItemTrace(len(self.items)))
        return self.items[index]

    def stage_totals_s(self) -> dict[str, float]:
        """Request stages, then each item stage's longest time over the items (the critical path of a
        batch call, where items run side by side)."""
        out = {name: self.timings_s[name] for name in REQUEST_STAGES if name in self.timings_s}
        for name in ITEM_STAGES:
            times = [t.timings_s[name] for t in self.items if name in t.timings_s]
            if times:
                out[name] = max(times)
        return out

    def server_timing(self, now: float) -> str:
        """The Server-Timing header value: stage durations and `total` (arrival to now), in ms."""
        parts = [f"{name};dur={seconds * 1000:.3f}" for name, seconds in self.stage_totals_s().items()]
        parts.append(f"total;dur={(now - self.received) * 1000:.3f}")
        return ", ".join(parts)

    def exemplar(self) -> dict[str, str]:
        """The exemplar label set naming this request."""
        return {"request_id": self.request_id}


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "ofa_ve_request", default=None
)


def current() -> RequestContext | None:
    """The context of the request this code runs for, if any."""
    return _current.get()


def activate(ctx: RequestContext | None) -> contextvars.Token[RequestContext | None]:
    """Makes `ctx` current (for this task and the threads it starts); returns the token to reset."""
    return _current.set(ctx)


def deactivate(token: contextvars.Token[RequestContext | None]) -> None:
    _current.reset(token)


def timings_ms(timings_s: dict[str, Any]) -> dict[str, float]:
    """Seconds to milliseconds, rounded to the microsecond."""
    return {name: round(seconds * 1000.0, 3) for name, seconds in timings_s.items()}
