"""Admission control: one budget for the work a replica has taken on, one for the request bytes it holds.

A request is admitted before its body is read, or refused at once with 503 `overloaded`: nothing
waits unbounded in front of the decode slots, the queue or the event loop. The item budget counts
every item admitted and not finished (decoding, queued, in a forward pass), so with a budget B and a
throughput of T items/s no admitted item waits much longer than B / T. The byte budget bounds the
request bodies (and what is parsed from them) held in memory at once.

Only the event loop thread admits and releases, so no lock is needed.
"""

from __future__ import annotations

from types import TracebackType

from ofa_ve.errors import OverloadedError
from ofa_ve.metrics import ServiceMetrics


class Admission:
    """The two budgets and what is admitted against them."""

    def __init__(self, max_items: int, max_body_bytes: int, metrics: ServiceMetrics | None = None) -> None:
        if max_items < 1 or max_body_bytes < 1:
            raise ValueError("max_items and max_body_bytes must be >= 1")
        self.max_items = max_items
        self.max_body_bytes = max_body_bytes
        self.items = 0
        self.body_bytes = 0
        if metrics is not None:
            metrics.admission_limit_items.set(max_items)
            metrics.admission_limit_body_bytes.set(max_body_bytes)
            metrics.admitted_items.set_function(lambda: self.items)
            metrics.admitted_body_bytes.set_function(lambda: self.body_bytes)

    def admit(self, items: int = 1, body_bytes: int = 0) -> Ticket:
        """A ticket for `items` items and `body_bytes` bytes, or OverloadedError when either budget is
        short."""
        self._check(items, body_bytes)
        self.items += items
        self.body_bytes += body_bytes
        return Ticket(self, items, body_bytes)

    def _check(self, items: int, body_bytes: int) -> None:
        if self.items + items > self.max_items:
            raise OverloadedError(
                f"replica busy: {self.items} of {self.max_items} items in flight, {items} more refused"
            )
        if self.body_bytes + body_bytes > self.max_body_bytes:
            raise OverloadedError(
                f"replica busy: {self.body_bytes} of {self.max_body_bytes} request bytes held, "
                f"{body_bytes} more refused"
            )


class Ticket:
    """What one request holds; released once (a context manager releases it on exit)."""

    def __init__(self, admission: Admission, items: int, body_bytes: int) -> None:
        self._admission = admission
        self.items = items
        self.body_bytes = body_bytes
        self._released = False

    def grow(self, items: int) -> None:
        """Holds `items` items in all (a batch call learns its size after reading the body)."""
        extra = items - self.items
        if extra > 0:
            self._admission._check(extra, 0)
        self._admission.items += extra
        self.items = items

    def resize_body(self, body_bytes: int) -> None:
        """Holds `body_bytes` body bytes in all: less once a body without Content-Length turns out small."""
        extra = body_bytes - self.body_bytes
        if extra > 0:
            self._admission._check(0, extra)
        self._admission.body_bytes += extra
        self.body_bytes = body_bytes

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._admission.items -= self.items
        self._admission.body_bytes -= self.body_bytes

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
