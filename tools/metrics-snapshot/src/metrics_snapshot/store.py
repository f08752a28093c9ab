"""The snapshot folder: one subfolder per day, written atomically, and a little state.

    <root>/.state.json              {"installed_at": ...}: the first day owed (none before an install)
    <root>/2025-06-01/manifest.json schema version, files with sizes and SHA-256, `complete`, backup
    <root>/2025-06-01/*.csv, snapshot.json, report.html
    <root>/vmbackup/                the incremental vmbackup (the default SNAPSHOT_BACKUP_DST)

A day's files are written to a hidden temporary folder and renamed into place, so a reader never sees
half a day and a re-run replaces the day whole. The day counts as done once its manifest says
`complete` (written after the backup that followed its export succeeded): everything the service
reports is read back from here, so it survives restarts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from metrics_snapshot import SCHEMA_VERSION

DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MANIFEST = "manifest.json"
STATE = ".state.json"


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # readable like the day's other files (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SnapshotStore:
    """Reads and writes the day folders under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def day_dir(self, day: date) -> Path:
        """The folder of one day."""
        return self.root / day.isoformat()

    def manifest(self, day: date) -> dict[str, Any] | None:
        """The day's manifest, None when the day has none (never written, or unreadable)."""
        try:
            return json.loads((self.day_dir(day) / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def days(self) -> list[date]:
        """Days that have a folder, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(date.fromisoformat(p.name) for p in self.root.iterdir() if DAY_DIR.match(p.name))

    def complete_days(self) -> list[date]:
        """Days whose manifest says complete, oldest first."""
        return [day for day in self.days() if (self.manifest(day) or {}).get("complete") is True]

    def newest_complete(self) -> date | None:
        """The newest complete day, if any."""
        done = self.complete_days()
        return done[-1] if done else None

    def installed_at(self, now: datetime) -> datetime:
        """When this snapshot folder was first used; recorded as `now` on the first call."""
        path = self.root / STATE
        try:
            return datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["installed_at"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path} is unreadable ({exc}); delete it to start counting from now") from exc
        self.root.mkdir(parents=True, exist_ok=True)
        state = {"installed_at": now.astimezone(UTC).isoformat()}
        _write_atomic(path, json.dumps(state).encode())
        return now

    def write_day(self, day: date, files: dict[str, bytes], meta: dict[str, Any]) -> Path:
        """Publish the day's files (replacing an earlier version whole) with a manifest marked incomplete."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{day.isoformat()}-"))
        try:
            listed = {}
            for name, data in files.items():
                (staging / name).write_bytes(data)
                listed[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            manifest = {"schema_version": SCHEMA_VERSION, "day": day.isoformat(), **meta, "files": listed,
                        "complete": False, "backup": None}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            staging.chmod(0o755)
            target = self.day_dir(day)
            old = None
            if target.exists():
                old = target.with_name(f".{day.isoformat()}-old-{os.getpid()}")
                os.replace(target, old)
            os.replace(staging, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            return target
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def mark_complete(self, day: date, backup: dict[str, Any] | None, completed_at: datetime) -> None:
        """Record that the day's export and the backup taken after it both succeeded."""
        manifest = self.manifest(day)
        if manifest is None:
            raise FileNotFoundError(f"no manifest for {day}")
        manifest.update(complete=True, backup=backup, completed_at=completed_at.astimezone(UTC).isoformat())
        _write_atomic(self.day_dir(day) / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    def prune(self, oldest_kept: date) -> list[date]:
        """Delete the folders of days before `oldest_kept`, and leftovers of writes interrupted over an hour
        ago (a younger one may be another process's write in progress)."""
        removed = []
        for day in self.days():
            if day < oldest_kept:
                shutil.rmtree(self.day_dir(day))
                removed.append(day)
        if self.root.is_dir():
            for leftover in self.root.glob(".????-??-??-*"):
                if leftover.is_dir() and leftover.stat().st_mtime < time.time() - 3600:
                    shutil.rmtree(leftover, ignore_errors=True)
        return removed
