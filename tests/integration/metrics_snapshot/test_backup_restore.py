"""The binary backup taken with the day's snapshot, restored into a fresh VictoriaMetrics: the same series."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.metrics_snapshot.conftest import DAY, Snapshot, day_start, snapshot_command
from tests.support.env import free_port
from tests.support.victoriametrics import VictoriaMetrics, running_victoriametrics
from tests.support.vmdata import Replica, SyntheticDay, import_lines

pytestmark = pytest.mark.integration

EVERYTHING = '{__name__=~"instance_revision.*"}'


def test_restore_refuses_while_the_target_victoriametrics_runs(
    victoriametrics: VictoriaMetrics, snapshot: Snapshot, tmp_path: Path
) -> None:
    """vmrestore replaces a data directory: while VictoriaMetrics answers, restore exits 1 untouched."""
    process = snapshot_command(["restore"], victoriametrics, snapshot.root,
                               SNAPSHOT_VM_DATA_PATH=str(tmp_path / "untouched"))
    assert process.returncode == 1 and "stop it first" in process.stderr
    assert not (tmp_path / "untouched").exists()


def test_backup_then_restore_into_a_fresh_victoriametrics_returns_the_same_series(
    victoriametrics: VictoriaMetrics, snapshot: Snapshot, tmp_path: Path
) -> None:
    """`metrics-snapshot restore` (VictoriaMetrics stopped) into an empty directory, a new server on it: every
    backfilled series comes back with every sample."""
    fresh = tmp_path / "restored"
    closed = f"http://127.0.0.1:{free_port()}"  # the restored server is not running yet
    process = snapshot_command(["restore"], victoriametrics, snapshot.root, SNAPSHOT_VM_DATA_PATH=str(fresh),
                               SNAPSHOT_URL=closed)
    assert process.returncode == 0, process.stderr[-2000:]
    start, end = day_start(DAY), day_start(DAY) + 86400
    original = victoriametrics.export(EVERYTHING, start, end)
    with running_victoriametrics(fresh, tmp_path / "restored.log") as restored:
        copy = restored.export(EVERYTHING, start, end)
    assert len(original) == 84 and sum(len(s["values"]) for s in original) > 100_000
    assert copy == original


def test_the_next_backup_uploads_only_what_changed(
    victoriametrics: VictoriaMetrics, snapshot: Snapshot
) -> None:
    """Another day exported: its backup to the same destination uploads less than the whole database."""
    next_day = DAY.replace(day=2)
    replica = Replica("10.0.0.9:8000", lambda h: "v3", lambda h: 1.0)
    import_lines(victoriametrics.url, SyntheticDay(day_start(next_day), 2, [replica]).lines())
    process = snapshot_command(["run", "--day", next_day.isoformat()], victoriametrics, snapshot.root)
    assert process.returncode == 0, process.stderr[-2000:]
    first = json.loads((snapshot.folder / "manifest.json").read_text())["backup"]
    second = json.loads((snapshot.root / next_day.isoformat() / "manifest.json").read_text())["backup"]
    assert first["destination"] == second["destination"] == f"fs://{snapshot.root}/vmbackup"
    assert second["backed_up_bytes"] >= first["backed_up_bytes"] > 0
    assert second["uploaded_bytes"] < second["backed_up_bytes"]
