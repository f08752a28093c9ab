"""Per-target send limit: at most N messages in any window of P seconds.

The robots count messages in a sliding minute (20/min) and then throttle for minutes; a classic token
bucket with a full bucket of N allows up to 2N in a minute, so the window is enforced exactly instead.
"""

from __future__ import annotations

from collections import deque


class RateLimiter:
    def __init__(self, messages: int, period_seconds: float) -> None:
        if messages < 1 or period_seconds <= 0:
            raise ValueError("messages must be >= 1 and period_seconds > 0")
        self.messages = messages
        self.period = period_seconds
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0

    def delay(self, now: float) -> float:
        """Seconds to wait before the next send is allowed (0 when it may go now)."""
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()
        wait = self._blocked_until - now
        if len(self._sent) >= self.messages:
            wait = max(wait, self._sent[0] + self.period - now)
        return max(0.0, wait)

    def record(self, now: float) -> None:
        self._sent.append(now)

    def block(self, until: float) -> None:
        """Send nothing before `until` (the chat API said we were too fast)."""
        self._blocked_until = max(self._blocked_until, until)
