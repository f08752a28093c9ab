"""How late the event loop runs: a timer every PROBE_INTERVAL_S, observed into a histogram.

Every request, every 503 and every /metrics scrape waits for the loop, so its lag is a floor under
all latency. A probe that fires L late stands for every moment of those L seconds: it is observed as
L, L - T, L - 2T, ... (T the interval), so one long stall weighs as much as the many short waits it
caused, and the histogram's quantiles read as "a request arriving at a random moment waited ≤ x".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import Histogram

PROBE_INTERVAL_S = 0.1
MAX_OBSERVATIONS_PER_PROBE = 600  # one minute of stall; the rest of a longer one is not spread out


class LoopLagMonitor:
    """Runs as a task on the loop it measures."""

    def __init__(
        self, histogram: Histogram, interval_s: float = PROBE_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.histogram = histogram
        self.interval_s = interval_s
        self._clock = clock

    def record(self, lag_s: float) -> None:
        """Observes one probe's lag spread over the moments it covers."""
        value = max(0.0, lag_s)
        for _ in range(MAX_OBSERVATIONS_PER_PROBE):
            self.histogram.observe(value)
            value -= self.interval_s
            if value <= 0:
                break

    async def run(self) -> None:
        while True:
            due = self._clock() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.record(self._clock() - due)
