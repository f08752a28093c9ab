"""Drill: a healthy pipeline for a simulated day says nothing to anybody."""

from __future__ import annotations

import itertools
import os

import pytest

from tests.drills.world import World

pytestmark = [pytest.mark.integration, pytest.mark.drill]

HOURS = float(os.environ.get("DRILL_QUIET_HOURS", "2"))


def test_a_healthy_pipeline_posts_nothing_and_keeps_the_heartbeat_going(world: World) -> None:
    """Two simulated hours of health: no chat message at all, and a heartbeat ping every 1-2 minutes."""
    world.start()
    world.sleep(HOURS * 3600)
    assert world.transcript() == []
    pings = world.ping_times()
    # Alertmanager re-sends Watchdog every repeat_interval (1 min): ~60 pings per simulated hour.
    assert len(pings) >= HOURS * 60 / 2 * 0.9
    # Alertmanager re-sends at the first group flush after repeat_interval has passed: with both at
    # 1 min that is every 1 to 2 minutes, well inside the relay's 5-minute limit.
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) <= 2 * 60 + 15
