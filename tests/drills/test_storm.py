"""Drill: a storm of 100 alerts in 10 groups, with long Chinese descriptions, fires and resolves."""

from __future__ import annotations

import re

import pytest

from tests.drills import checks
from tests.drills.transcript import render
from tests.drills.world import World

pytestmark = [pytest.mark.integration, pytest.mark.drill]

GROUPS, PER_GROUP = 10, 10
DESCRIPTION = (
    "推理服务在高峰期间出现大量超时，队列持续积压，GPU 显存占用接近上限，"
    "建议立即扩容副本或降低批大小，并检查最近一次模型或配置变更。"
) * 4
SETTLE = 30 * 60


def _storm(world: World) -> list[dict]:
    return world.inject_many([
        world.alert(f"Storm{chr(65 + g)}", "critical", DESCRIPTION, instance=f"10.0.{g}.{i}:8000")
        for g in range(GROUPS)
        for i in range(PER_GROUP)
    ])


NAMES = {f"Storm{chr(65 + g)}" for g in range(GROUPS)}


def _assert_within_budget(world: World, status: str) -> None:
    """Every notification of `status` is at most `max_messages` messages per chat, and its last one per
    group accounts for all ten alerts (listed one per line or counted)."""
    entries = world.transcript()
    report = render(entries)
    budget = world.relay_config.targets["wecom-ops"].max_messages
    for channel in ("wecom", "dingtalk"):
        heads = [e for e in entries if e.channel == channel and e.status == status and e.alertname in NAMES]
        assert {e.alertname for e in heads} == NAMES, report
        assert all(e.parts <= budget for e in heads), report
        mine = [e for e in entries if e.channel == channel]
        for name in NAMES:
            last = [e for e in heads if e.alertname == name][-1]
            assert last.alerts == PER_GROUP, report
            # The parts of one message are sent one after another to the same robot.
            index = mine.index(last)
            text = "\n".join(e.text for e in mine[index : index + last.parts])
            listed = set(re.findall(r"instance=(10\.0\.\d+\.\d+:8000)", text))
            counted = sum(int(n) for n in re.findall(r"(\d+) (?:more alert|条告警未)", text))
            assert len(listed) + counted == PER_GROUP, (name, channel, len(listed), counted, report)
    # Nothing over a byte limit, nothing over the robots' 20 per minute.
    assert world.chat.state.rejected == [], report


def test_a_storm_of_100_alerts_stays_within_three_messages_per_group(world: World) -> None:
    """Each 10-alert group is at most 3 messages per chat and notification, within the byte and rate
    limits, and every alert is listed or counted; the resolution of the storm likewise."""
    world.start()
    alerts = _storm(world)
    world.sleep(SETTLE)
    _assert_within_budget(world, "FIRING")
    world.resolve(*alerts)
    world.sleep(SETTLE)
    _assert_within_budget(world, "RESOLVED")
    checks.links_resolve(world, world.transcript())
