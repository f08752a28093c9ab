"""Drill: the disk under the relay's outbox fills up while a page comes in, then space is freed."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.drills import checks
from tests.drills.transcript import keys, render
from tests.drills.world import World

pytestmark = [pytest.mark.integration, pytest.mark.drill]

FULL_FOR = 20 * 60
SETTLE = 15 * 60


def _require_root() -> None:
    """A real full file system needs a tmpfs mount: root (CI runs as root, and must not skip)."""
    if os.geteuid() == 0:
        return
    if os.environ.get("REQUIRE_ROOT") == "1" or os.environ.get("CI") == "true":
        pytest.fail("the disk-full drill needs root to mount a small tmpfs (REQUIRE_ROOT=1 or CI)")
    pytest.skip("the disk-full drill needs root to mount a small tmpfs")


@pytest.fixture
def small_disk(world: World) -> Iterator[Path]:
    """The relay's data directory on an 8 MiB tmpfs of its own."""
    _require_root()
    path = world.relay_data
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        world.close()  # the relay holds files there
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(path: Path) -> Path:
    filler = path / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
    return filler


def test_disk_full_under_the_outbox(world: World, small_disk: Path) -> None:
    """Full disk: the relay tells both chats directly once, refuses webhooks with 503 so Alertmanager
    keeps the page, stops the external heartbeat; space back: the page arrives once, then the recovery."""
    world.start()
    world.sleep(5 * 60)
    filler = _fill(small_disk)
    full_at = world.sim_now()
    noticed = lambda: world.relay_metric("webhook_relay_outbox_writable") == 0  # noqa: E731
    world.wait_for(noticed, 5 * 60, "the relay to notice the full disk")
    probe = world.inject("DrillProbe", "critical")
    world.sleep_until(full_at + FULL_FOR)
    during = world.transcript()
    assert checks.counts(during, "wecom") == {("FIRING", "WebhookRelayOutboxNotWritable"): 1}, render(during)
    assert not [t for t in world.ping_times() if full_at + 3 * 60 < t], world.report()
    filler.unlink()
    freed_at = world.sim_now()
    world.sleep_until(freed_at + SETTLE)
    world.resolve(probe)
    world.sleep_until(freed_at + 2 * SETTLE)
    entries = world.transcript()
    report = render(entries)
    assert checks.first(entries, "wecom", "FIRING", "DrillProbe").sim_t > freed_at, report
    back = checks.first(entries, "wecom", "RESOLVED", "WebhookRelayOutboxNotWritable")
    assert back.sim_t > freed_at, report
    # Alertmanager's own failure alert may arrive late (then resolved) or not at all: both consistent.
    late = {"AlertmanagerNotificationsFailing"}
    counts = checks.counts(entries, "wecom")
    assert {k: n for k, n in counts.items() if k[1] not in late} == {
        ("FIRING", "WebhookRelayOutboxNotWritable"): 1,
        ("RESOLVED", "WebhookRelayOutboxNotWritable"): 1,
        ("FIRING", "DrillProbe"): 1,
        ("RESOLVED", "DrillProbe"): 1,
    }, report
    checks.every_firing_resolved(entries, "wecom", late)
    assert keys(entries, "dingtalk") == keys(entries, "wecom"), report
    assert [t for t in world.ping_times() if t > freed_at], world.report()
    checks.links_resolve(world, entries)
