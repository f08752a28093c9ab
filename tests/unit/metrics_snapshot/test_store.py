"""The snapshot folder: atomic day folders, completion, install date, retention."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from metrics_snapshot import SCHEMA_VERSION
from metrics_snapshot.store import SnapshotStore

DAY = date(2025, 6, 1)
NOW = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)


def test_a_day_is_published_with_a_manifest_listing_its_files(tmp_path: Path) -> None:
    """write_day puts the files and a manifest (schema version, sizes, SHA-256, incomplete) in one folder."""
    store = SnapshotStore(tmp_path)
    store.write_day(DAY, {"a.csv": b"x,y\n1,2\n"}, {"timezone": "UTC"})
    manifest = json.loads((tmp_path / "2025-06-01" / "manifest.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["timezone"] == "UTC"
    assert manifest["files"]["a.csv"]["bytes"] == 8 and len(manifest["files"]["a.csv"]["sha256"]) == 64
    assert manifest["complete"] is False and store.complete_days() == []


def test_rewriting_a_day_replaces_it_whole(tmp_path: Path) -> None:
    """A second write leaves only the second version's files and no staging folder."""
    store = SnapshotStore(tmp_path)
    store.write_day(DAY, {"old.csv": b"1"}, {})
    store.write_day(DAY, {"new.csv": b"2"}, {})
    assert sorted(p.name for p in store.day_dir(DAY).iterdir()) == ["manifest.json", "new.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["2025-06-01"]


def test_mark_complete_records_the_backup_and_the_time(tmp_path: Path) -> None:
    """After mark_complete the day is complete and the newest complete day."""
    store = SnapshotStore(tmp_path)
    store.write_day(DAY, {"a.csv": b"1"}, {})
    store.mark_complete(DAY, {"bytes": 10}, NOW)
    assert store.newest_complete() == DAY
    assert (store.day_dir(DAY) / "manifest.json").stat().st_mode & 0o777 == 0o644
    assert store.manifest(DAY)["backup"] == {"bytes": 10}
    assert store.manifest(DAY)["completed_at"] == NOW.isoformat()


def test_the_install_time_is_recorded_once_and_an_unreadable_one_is_reported(tmp_path: Path) -> None:
    """The first call records `now`; later calls return it; a corrupt state file is a clear ValueError."""
    store = SnapshotStore(tmp_path)
    assert store.installed_at(NOW) == NOW
    assert store.installed_at(datetime(2030, 1, 1, tzinfo=UTC)) == NOW
    (tmp_path / ".state.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        store.installed_at(NOW)


def test_prune_deletes_old_days_and_stale_leftovers_only(tmp_path: Path) -> None:
    """Days before the cut go, as do staging folders over an hour old; a fresh staging folder stays."""
    store = SnapshotStore(tmp_path)
    for day in (date(2025, 5, 30), date(2025, 5, 31), DAY):
        store.write_day(day, {"a.csv": b"1"}, {})
    stale, fresh = tmp_path / ".2025-05-01-abc", tmp_path / ".2025-06-02-def"
    stale.mkdir()
    fresh.mkdir()
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.prune(date(2025, 5, 31)) == [date(2025, 5, 30)]
    assert store.days() == [date(2025, 5, 31), DAY]
    assert not stale.exists() and fresh.exists()
