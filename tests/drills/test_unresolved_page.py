"""Drill: a replica hangs (stopped, not dead) and nobody fixes it for three simulated hours."""

from __future__ import annotations

import signal

import pytest

from tests.drills import checks
from tests.drills.transcript import keys, render
from tests.drills.world import World

pytestmark = [pytest.mark.integration, pytest.mark.drill]

HUNG_FOR = 3 * 3600
# After SIGCONT: one scrape, the alerts' windows (5 min low point for the replica count), a flush.
SETTLE = 20 * 60


def test_a_page_left_unresolved_for_three_hours_reminds_on_schedule(world: World) -> None:
    """ServiceDown fires once, reminds at every effective repeat interval (no more, none swallowed),
    and resolves once the replica answers again; both chats get the same sequence."""
    world.start()
    replica = world.replicas[0]
    replica.proc.send_signal(signal.SIGSTOP)
    try:
        world.sleep_until(HUNG_FOR)
    finally:
        replica.proc.send_signal(signal.SIGCONT)
    world.sleep_until(HUNG_FOR + SETTLE)
    entries = world.transcript()
    report = render(entries)

    down = checks.first(entries, "wecom", "FIRING", "ServiceDown")
    assert 2 * 60 <= down.sim_t <= 4 * 60, report
    assert "up = 0" in down.text, report
    up = checks.first(entries, "wecom", "RESOLVED", "ServiceDown")
    # No false resolve, and the resolution as soon as the replica answers scrapes again (a process
    # resumed after hours first works through the scrape connections queued meanwhile).
    assert HUNG_FOR < up.sim_t <= HUNG_FOR + 15 * 60, report
    back = checks.first(entries, "wecom", "RESOLVED", "OfaVeReplicasMissing")
    assert back.sim_t > HUNG_FOR, report
    expected = {
        ("FIRING", "ServiceDown"): checks.assert_reminders(
            entries, "wecom", "ServiceDown", "critical", up.sim_t
        ),
        ("RESOLVED", "ServiceDown"): 1,
        ("FIRING", "OfaVeReplicasMissing"): checks.assert_reminders(
            entries, "wecom", "OfaVeReplicasMissing", "warning", back.sim_t
        ),
        ("RESOLVED", "OfaVeReplicasMissing"): 1,
    }
    assert expected[("FIRING", "ServiceDown")] >= 3  # 3 h at one reminder per hour
    assert checks.counts(entries, "wecom") == expected, report
    assert keys(entries, "dingtalk") == keys(entries, "wecom"), report
    checks.links_resolve(world, entries)
