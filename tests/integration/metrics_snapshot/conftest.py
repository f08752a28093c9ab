"""One VictoriaMetrics (the pinned Debian binary) for the session, backfilled through its import API with a
synthetic day of three replicas and two revisions, and one snapshot of that day taken by the real command
(vmbackup included)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.env import tool
from tests.support.victoriametrics import VictoriaMetrics, running_victoriametrics
from tests.support.vmdata import Replica, SyntheticDay, import_lines

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2025, 6, 1)
# The three replicas of the day: 10.0.0.1 on v1 with traffic changing hour by hour, 10.0.0.2 upgraded
# from v1 to v2 at noon, 10.0.0.3 on v2 all day.
REPLICAS = [
    Replica("10.0.0.1:8000", lambda h: "v1", lambda h: 1 + (h % 4) * 0.25),
    Replica("10.0.0.2:8000", lambda h: "v1" if h < 12 else "v2", lambda h: 1.0),
    Replica("10.0.0.3:8000", lambda h: "v2", lambda h: 0.5),
]


def day_start(day: date) -> int:
    """Local midnight of `day` in unix seconds."""
    return int(datetime.combine(day, time(0), tzinfo=ZONE).timestamp())


@pytest.fixture(scope="session")
def victoriametrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """A running VictoriaMetrics holding the synthetic day."""
    work = tmp_path_factory.mktemp("victoriametrics")
    with running_victoriametrics(work / "data", work / "victoria-metrics.log") as server:
        import_lines(server.url, SyntheticDay(day_start(DAY), 24, REPLICAS).lines())
        yield server


def snapshot_command(
    args: list[str], vm: VictoriaMetrics, snapshots: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """`metrics-snapshot ARGS` as a process, against `vm`, writing under `snapshots`."""
    environment = {
        **os.environ,
        "SNAPSHOT_URL": vm.url,
        "SNAPSHOT_DIR": str(snapshots),
        "TZ": str(ZONE),
        "SNAPSHOT_VM_DATA_PATH": str(vm.data),
        "SNAPSHOT_VMBACKUP": tool("vmbackup"),
        "SNAPSHOT_VMRESTORE": tool("vmrestore"),
        **env,
    }
    return subprocess.run([sys.executable, "-m", "metrics_snapshot", *args], env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


@dataclass(frozen=True)
class Snapshot:
    """The day's folder as the command wrote it."""

    folder: Path
    root: Path
    process: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def snapshot(victoriametrics: VictoriaMetrics, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """`metrics-snapshot run --day 2025-06-01` against the synthetic day, backup included."""
    root = tmp_path_factory.mktemp("snapshots")
    process = snapshot_command(["run", "--day", DAY.isoformat()], victoriametrics, root)
    assert process.returncode == 0, process.stderr[-3000:]
    return Snapshot(root / DAY.isoformat(), root, process)


