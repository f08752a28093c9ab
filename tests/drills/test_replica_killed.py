"""Drill: one of three replicas is killed; Docker's DNS drops it, so no `up == 0` is left behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.drills import checks
from tests.drills.transcript import keys, render
from tests.drills.world import World
from tests.support.service import Server, start_server, stop_server

pytestmark = [pytest.mark.integration, pytest.mark.drill]

KILLED_AT = 10 * 60
DEAD_FOR = 60 * 60
# After the new replica is in: the 5-minute low-point window, a flush.
SETTLE = 20 * 60


@pytest.fixture
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Three replicas configured alike, as OFA_VE_REPLICAS=3 configures every replica of a stack."""
    work = tmp_path_factory.mktemp("three-replicas")
    servers = [start_server(work, f"replica-{i}", OFA_VE_EXPECTED_REPLICAS="3", OFA_VE_TORCH_THREADS="1")
               for i in (1, 2, 3)]  # fmt: skip
    yield servers
    for server in servers:
        if server.proc.poll() is None:
            stop_server(server)


def test_one_of_three_replicas_killed(world: World, three: list[Server], tmp_path) -> None:
    """OfaVeReplicasMissing warns while the replica is gone (however long) and resolves once it is
    back; ServiceDown and OfaVeNoReplicas, which cannot see a vanished target, stay silent."""
    first, second, third = three
    world.set_targets([first, second, third])
    world.start()
    world.sleep_until(KILLED_AT)
    # Docker's DNS forgets a stopped container at once, and Prometheus (DNS refresh 15 s, targets
    # handed on every 5 s) stops scraping it within 20 real seconds, far inside ServiceDown's 2 minutes.
    # The 5-second hand-over is a constant of the binary, 5 simulated minutes here: so the target
    # leaves discovery first and the process dies once Prometheus has let go of it.
    world.set_targets([first, second])
    world.wait_for(lambda: len(world.scrape_targets("ofa-ve")) == 2, 10 * 60, "the target to vanish")
    third.proc.kill()
    third.proc.wait(timeout=10)
    world.sleep_until(KILLED_AT + DEAD_FOR)
    # A new container comes up (new address); it enters DNS once it runs.
    again = start_server(tmp_path, "replica-again", OFA_VE_EXPECTED_REPLICAS="3", OFA_VE_TORCH_THREADS="1")
    world.extra.append(again)
    back_at = world.sim_now()
    world.set_targets([first, second, again])
    world.sleep_until(back_at + SETTLE)
    entries = world.transcript()
    report = render(entries)

    missing = checks.first(entries, "wecom", "FIRING", "OfaVeReplicasMissing")
    assert KILLED_AT + 10 * 60 <= missing.sim_t <= KILLED_AT + 20 * 60, report
    resolved = checks.first(entries, "wecom", "RESOLVED", "OfaVeReplicasMissing")
    assert resolved.sim_t > back_at, report
    assert checks.counts(entries, "wecom") == {
        ("FIRING", "OfaVeReplicasMissing"): checks.assert_reminders(
            entries, "wecom", "OfaVeReplicasMissing", "warning", resolved.sim_t
        ),
        ("RESOLVED", "OfaVeReplicasMissing"): 1,
    }, report
    assert "fewer than the 3 expected" in missing.text or "3" in missing.text, report
    assert keys(entries, "dingtalk") == keys(entries, "wecom"), report
    checks.links_resolve(world, entries)
