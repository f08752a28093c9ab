"""One factory for a snapshotter over a fake query API, a temporary snapshot folder and a settable clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from metrics_snapshot.backup import BackupError, BackupResult
from metrics_snapshot.metrics import SnapshotMetrics
from metrics_snapshot.promapi import PromClient
from metrics_snapshot.runner import Snapshotter
from metrics_snapshot.schedule import Schedule
from metrics_snapshot.store import SnapshotStore
from prometheus_client import CollectorRegistry

from tests.support.fake_promapi import RULE_INTERVAL_S, FakeQueryApi, revision_series

ZONE = ZoneInfo("Asia/Shanghai")


@dataclass
class Clock:
    """A wall clock the test moves."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    """A snapshotter and everything around it."""

    snapshotter: Snapshotter
    api: FakeQueryApi
    store: SnapshotStore
    clock: Clock
    registry: CollectorRegistry
    backups: list[str] = field(default_factory=list)
    backup_fails: bool = False

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample of the service's registry."""
        return self.registry.get_sample_value(name, labels)

    def restart(self) -> Rig:
        """The same folder and clock in a new process: new registry, store and snapshotter."""
        return make_rig(self.store.root, self.api, self.clock, keep_days=self.snapshotter.schedule.keep_days)


def make_rig(root: Path, api: FakeQueryApi, clock: Clock, keep_days: int = 30) -> Rig:
    """A Rig over `root` (see Rig)."""
    store = SnapshotStore(root)
    schedule = Schedule(ZONE, time(3, 0), keep_days)
    registry = CollectorRegistry()
    metrics = SnapshotMetrics(registry, store, schedule, clock)
    client = PromClient("http://vm.test", transport=httpx.MockTransport(api))
    rig = Rig(None, api, store, clock, registry)  # type: ignore[arg-type]

    def backup() -> BackupResult:
        rig.backups.append(clock().isoformat())
        if rig.backup_fails:
            raise BackupError("vmbackup exited with 1: cannot create snapshot")
        return BackupResult("fs:///snapshots/vmbackup", 0.5, 12345)

    rig.snapshotter = Snapshotter(client, store, schedule, rule_interval_s=RULE_INTERVAL_S, backup=backup,
                                  metrics=metrics, clock=clock)
    return rig


@pytest.fixture
def rig_factory(tmp_path: Path) -> Callable[..., Rig]:
    """Build a Rig installed at `installed` (local time), its clock at `now`, with a healthy fake API."""

    def build(installed: str, now: str, keep_days: int = 30) -> Rig:
        clock = Clock(datetime.fromisoformat(installed).replace(tzinfo=ZONE))
        api = FakeQueryApi({**revision_series("10.0.0.1:8000", "v1")})
        rig = make_rig(tmp_path / "snapshots", api, clock, keep_days)
        rig.store.installed_at(clock())
        clock.now = datetime.fromisoformat(now).replace(tzinfo=ZONE)
        return rig

    return build
