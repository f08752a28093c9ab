"""Drills: the relay, Alertmanager or Prometheus dies and stays dead for half a simulated hour.

Each death must stop the pings to the external push monitor within the monitor's grace period (the
only signal that survives the relay's own death), and the pings must resume after recovery. What the
chats receive must be consistent: every alert that arrives firing is resolved later, nothing twice.
"""

from __future__ import annotations

import pytest

from tests.drills import checks
from tests.drills.compression import PROMETHEUS_FLAG_DEFAULTS, seconds
from tests.drills.transcript import keys, render
from tests.drills.world import World

pytestmark = [pytest.mark.integration, pytest.mark.drill]

DIES_AT = 10 * 60
DEAD_FOR = 30 * 60
SETTLE = 20 * 60
# The push monitor's documented configuration (runbook: Watchdog): period 1 min, grace 5 min.
MONITOR_GRACE = 5 * 60
_, WATCHDOG_PERIOD = checks.effective_repeat(receiver="heartbeat")


def _pings_between(world: World, start: float, end: float) -> list[float]:
    return [t for t in world.ping_times() if start < t <= end]


def _assert_pings_stop_and_resume(world: World, stopped_within: float, resumed_within: float) -> None:
    report = world.report()
    back = DIES_AT + DEAD_FOR
    assert _pings_between(world, 0, DIES_AT), report
    assert not _pings_between(world, DIES_AT + stopped_within, back), report
    assert _pings_between(world, back, back + resumed_within), report


def _assert_consistent(entries, allowed: set[str]) -> None:
    report = render(entries)
    for channel in ("wecom", "dingtalk"):
        names = {name for _, name in checks.counts(entries, channel)}
        assert names <= allowed, report
        checks.every_firing_resolved(entries, channel, names)
        for (status, name), n in checks.counts(entries, channel).items():
            assert n == 1, f"{status} {name} arrived {n} times\n{report}"
    assert keys(entries, "dingtalk") == keys(entries, "wecom"), report


def test_relay_killed_and_left_dead(world: World) -> None:
    """The relay's death stops the pings at once (nothing else can tell); back, it pings again and
    delivers what Alertmanager held, once."""
    world.start()
    world.sleep_until(DIES_AT)
    world.relay.kill()
    world.sleep_until(DIES_AT + DEAD_FOR)
    world.relay.start()
    world.sleep_until(DIES_AT + DEAD_FOR + SETTLE)
    _assert_pings_stop_and_resume(world, stopped_within=1, resumed_within=WATCHDOG_PERIOD + 60)
    entries = world.transcript()
    _assert_consistent(entries, {"ServiceDown", "AlertmanagerNotificationsFailing"})
    checks.links_resolve(world, entries)


def test_alertmanager_killed(world: World) -> None:
    """Alertmanager's death stops the pings within one Watchdog period; the relay itself posts
    HeartbeatMissing to both chats, and its recovery once Alertmanager is back."""
    world.start()
    world.sleep_until(DIES_AT)
    world.alertmanager.kill()
    world.sleep_until(DIES_AT + DEAD_FOR)
    world.alertmanager.start()
    world.sleep_until(DIES_AT + DEAD_FOR + SETTLE)
    _assert_pings_stop_and_resume(world, stopped_within=WATCHDOG_PERIOD, resumed_within=5 * 60)
    entries = world.transcript()
    report = render(entries)
    missing = checks.first(entries, "wecom", "FIRING", "HeartbeatMissing")
    limit = world.relay_config.routes["watchdog"].heartbeat.missing_after_seconds
    assert DIES_AT + limit - WATCHDOG_PERIOD <= missing.sim_t <= DIES_AT + limit + 2 * 60, report
    assert checks.first(entries, "wecom", "RESOLVED", "HeartbeatMissing").sim_t > DIES_AT + DEAD_FOR, report
    # Held while Alertmanager was away, then delivered late (and resolved), or resolved before they
    # could be: either is consistent.
    held = {
        "ServiceDown", "PrometheusNotificationsFailing", "PrometheusNotificationQueueFull",
        "AlertmanagerNotificationsFailing",
    }
    _assert_consistent(entries, {"HeartbeatMissing", *held})
    checks.links_resolve(world, entries)


def test_prometheus_killed(world: World) -> None:
    """Prometheus' death stops the pings once Alertmanager's copy of Watchdog expires (4 resend
    delays) plus one Watchdog period, inside the monitor's grace; HeartbeatMissing follows."""
    world.start()
    world.sleep_until(DIES_AT)
    world.prometheus.kill()
    world.sleep_until(DIES_AT + DEAD_FOR)
    world.restart_prometheus()
    world.sleep_until(DIES_AT + DEAD_FOR + SETTLE)
    resend = seconds(PROMETHEUS_FLAG_DEFAULTS["--rules.alert.resend-delay"])
    stopped_within = 4 * resend + WATCHDOG_PERIOD + 60
    assert stopped_within <= MONITOR_GRACE + WATCHDOG_PERIOD
    # Back: rules start once Prometheus re-discovered its targets (see World._start_prometheus).
    _assert_pings_stop_and_resume(world, stopped_within=stopped_within, resumed_within=15 * 60)
    entries = world.transcript()
    report = render(entries)
    assert checks.counts(entries, "wecom") == {
        ("FIRING", "HeartbeatMissing"): 1, ("RESOLVED", "HeartbeatMissing"): 1,
    }, report
    assert checks.first(entries, "wecom", "FIRING", "HeartbeatMissing").sim_t > DIES_AT + 4 * resend, report
    _assert_consistent(entries, {"HeartbeatMissing"})
    checks.links_resolve(world, entries)
