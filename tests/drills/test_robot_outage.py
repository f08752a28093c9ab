"""Drill: the DingTalk robot is down for two simulated hours while a page is open, then comes back."""

from __future__ import annotations

import pytest

from tests.drills import checks
from tests.drills.transcript import keys, render
from tests.drills.world import World

pytestmark = [pytest.mark.integration, pytest.mark.drill]

OUTAGE_END = 2 * 3600
PROBE_RESOLVED = 100 * 60
# After the outage: one longest backoff wait (600 s + 20 % jitter), keep_firing_for and a flush.
SETTLE = 25 * 60


def test_two_hours_of_robot_outage(world: World) -> None:
    """The other chat is told once (plus hourly reminders), never falsely resolved; DingTalk gets the
    whole backlog once it is back, in order, nothing lost, nothing twice."""
    world.start()
    world.chat.state.outages["dingtalk"] = {"status": 500}
    probe = world.inject("DrillProbe", "critical")
    world.sleep_until(PROBE_RESOLVED)
    world.resolve(probe)
    world.sleep_until(OUTAGE_END)
    entries = world.transcript()
    assert [e for e in entries if e.channel == "dingtalk"] == [], render(entries)
    assert world.relay_metric("webhook_relay_target_failing", target="dingtalk-ops") == 1
    world.chat.state.outages.pop("dingtalk")
    world.sleep_until(OUTAGE_END + SETTLE)
    entries = world.transcript()
    report = render(entries)

    failing = checks.first(entries, "wecom", "FIRING", "WebhookRelayDeliveryFailing")
    assert 10 * 60 <= failing.sim_t <= 13 * 60, report
    # No false resolve: the alert about DingTalk stays firing for the whole outage.
    resolved = checks.first(entries, "wecom", "RESOLVED", "WebhookRelayDeliveryFailing")
    assert resolved.sim_t > OUTAGE_END, report
    probe_done = checks.first(entries, "wecom", "RESOLVED", "DrillProbe").sim_t
    assert probe_done > PROBE_RESOLVED, report
    expected = {
        ("FIRING", "DrillProbe"): checks.assert_reminders(
            entries, "wecom", "DrillProbe", "critical", probe_done
        ),
        ("RESOLVED", "DrillProbe"): 1,
        ("FIRING", "WebhookRelayDeliveryFailing"): checks.assert_reminders(
            entries, "wecom", "WebhookRelayDeliveryFailing", "critical", resolved.sim_t
        ),
        ("RESOLVED", "WebhookRelayDeliveryFailing"): 1,
        ("FIRING", "WebhookRelayOutboxBacklog"): 1,
        ("RESOLVED", "WebhookRelayOutboxBacklog"): 1,
    }
    assert checks.counts(entries, "wecom") == expected, report
    # DingTalk gets exactly what WeCom got, in the same order: the backlog, then the recovery.
    assert keys(entries, "dingtalk") == keys(entries, "wecom"), report
    assert world.relay_metric("webhook_relay_target_failing", target="dingtalk-ops") == 0
    assert world.relay_metric("webhook_relay_dead_letters", target="dingtalk-ops") == 0
    assert not [r for r in world.chat.state.rejected if r.get("errcode") in (130101, 45009)], report
    checks.links_resolve(world, entries)
