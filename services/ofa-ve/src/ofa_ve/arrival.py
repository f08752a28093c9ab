"""When a request really arrived: stamped by the HTTP protocol, before the event loop schedules it.

uvicorn creates a request's task when it has parsed the request head, and the task runs whenever the
event loop gets to it; under load that wait is seconds, and no handler can see it. This protocol
(uvicorn's own h11 protocol, plus one line) writes time.perf_counter() of the moment the head was
read into the ASGI scope's `extensions`, where the middleware picks it up.
"""

from __future__ import annotations

import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

RECEIVED = "ofa_ve.received"


def received_at(scope: dict[str, Any]) -> float | None:
    """time.perf_counter() when the server had read the request's head, if the protocol stamped it."""
    extensions = scope.get("extensions") or {}
    value = extensions.get(RECEIVED)
    return value if isinstance(value, float) else None


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, stamping each new request's arrival into its scope."""

    def handle_events(self) -> None:
        before = self.cycle
        now = time.perf_counter()
        super().handle_events()
        cycle = self.cycle
        # The new request's task is created but has not run yet: the scope can still be written.
        if cycle is not None and cycle is not before:
            cycle.scope.setdefault("extensions", {})[RECEIVED] = now  # type: ignore[typeddict-unknown-key]
