"""The per-target limit: at most N sends in any window."""

from __future__ import annotations

from webhook_relay.ratelimit import RateLimiter


def test_window_limit():
    """The N+1-th send in a window waits until the oldest send leaves the window."""
    limiter = RateLimiter(messages=3, period_seconds=10)
    for t in (0.0, 1.0, 2.0):
        assert limiter.delay(t) == 0
        limiter.record(t)
    assert limiter.delay(3.0) == 7.0
    assert limiter.delay(10.0) == 0


def test_block_after_throttle_reply():
    """After the API says "too fast", nothing is sent before the block ends."""
    limiter = RateLimiter(messages=100, period_seconds=60)
    limiter.block(until=50.0)
    assert limiter.delay(20.0) == 30.0
    assert limiter.delay(50.0) == 0
