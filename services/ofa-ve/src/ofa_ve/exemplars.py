"""Which observations carry an exemplar (the request id), so that every exemplar can be followed.

prometheus_client keeps the last exemplar of each histogram bucket and Prometheus stores what it
scrapes; a link is only useful if the request it names is still in the request log. So an exemplar is
attached (and the request marked for the log) when the request is kept anyway (slow or failed) or,
for the rest, at most once per bucket per interval: a few requests per bucket per scrape, never a flood.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Hashable, Sequence

from ofa_ve.context import RequestContext

# OpenMetrics allows 128 characters for an exemplar's label names and values together.
EXEMPLAR_RUNES = 128
_KEY = "request_id"


class ExemplarSampler:
    """Decides per observation; thread-safe enough (a race at worst attaches one extra exemplar)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s}")
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[tuple[Hashable, int], float] = {}

    def pick(
        self, series: Hashable, bounds: Sequence[float], value: float, ctx: RequestContext | None,
        *, force: bool = False,
    ) -> dict[str, str] | None:
        """The exemplar for observing `value` into `series` (whose bucket bounds are `bounds`), or None.

        Marks `ctx.sampled` when an exemplar is attached so the request log keeps the request.
        """
        if ctx is None or len(_KEY) + len(ctx.request_id) > EXEMPLAR_RUNES:
            return None
        key = (series, bisect.bisect_left(bounds, value))
        now = self._clock()
        if not force:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                return None
        self._last[key] = now
        ctx.sampled = True
        return ctx.exemplar()
