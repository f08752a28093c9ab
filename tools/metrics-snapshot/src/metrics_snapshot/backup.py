"""Binary backups of VictoriaMetrics through vmbackup, and the way back through vmrestore.

vmbackup asks VictoriaMetrics for an instant snapshot (`/snapshot/create`, hard links, no pause in
ingestion), copies it to -dst and deletes it. When -dst already holds a backup only the parts that
changed are uploaded and the ones gone are deleted: the daily backup is incremental, and -dst always
holds the whole database as of the last run. vmrestore needs the server stopped.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


class BackupError(Exception):
    """vmbackup or vmrestore failed (the message carries the tail of its output)."""


# vmbackup's last line: "backup from ... is complete; backed up 817 bytes in 0.015 seconds; server-side
# deleted 0 bytes; server-side copied 0 bytes; uploaded 817 bytes".
_DONE = re.compile(r"backed up (\d+) bytes in .*; uploaded (\d+) bytes")


@dataclass(frozen=True)
class BackupResult:
    """What a run of vmbackup did."""

    destination: str
    seconds: float
    bytes: int | None  # size of an fs:// destination after the run; None for remote storage
    backed_up_bytes: int | None = None  # the whole database
    uploaded_bytes: int | None = None  # what this run copied: the increment

    def as_dict(self) -> dict[str, object]:
        """For the day manifests."""
        return asdict(self)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _fs_path(destination: str) -> Path | None:
    return Path(destination.removeprefix("fs://")) if destination.startswith("fs://") else None


def directory_bytes(path: Path) -> int:
    """Bytes of every file under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_vmbackup(
    vmbackup: str, vm_url: str, storage_data_path: Path, destination: str, timeout_s: float
) -> BackupResult:
    """One incremental backup of the VictoriaMetrics at `vm_url`, whose data directory is mounted at
    `storage_data_path`, into `destination` (fs:///..., s3://..., gs://...)."""
    target = _fs_path(destination)
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
    cmd = [
        vmbackup,
        f"-storageDataPath={storage_data_path}",
        f"-snapshot.createURL={vm_url.rstrip('/')}/snapshot/create",
        f"-dst={destination}",
        # vmbackup serves its own /metrics while it runs; any free port, never a clash.
        "-httpListenAddr=127.0.0.1:0",
    ]
    started = time.monotonic()
    proc = _run_tool("vmbackup", cmd, timeout_s)
    seconds = time.monotonic() - started
    size = directory_bytes(target) if target is not None else None
    done = _DONE.search(proc.stdout + proc.stderr)
    backed_up, uploaded = (int(done.group(1)), int(done.group(2))) if done else (None, None)
    log.info("backup done", extra={"destination": destination, "seconds": round(seconds, 3), "bytes": size,
                                   "uploaded_bytes": uploaded})
    return BackupResult(destination, seconds, size, backed_up, uploaded)


def _run_tool(name: str, cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a VictoriaMetrics tool (`cmd[0]`); any way it fails is a BackupError naming `name`."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError as exc:
        raise BackupError(f"{cmd[0]} not found: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{name} did not finish within {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        raise BackupError(f"{name} exited with {proc.returncode}: {_tail(proc.stdout + proc.stderr)}")
    return proc


def vm_is_up(vm_url: str) -> bool:
    """Whether a VictoriaMetrics answers /health at `vm_url`."""
    try:
        return httpx.get(f"{vm_url.rstrip('/')}/health", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def run_vmrestore(vmrestore: str, source: str, storage_data_path: Path, timeout_s: float) -> None:
    """Restore the backup at `source` into `storage_data_path` (VictoriaMetrics must be stopped: vmrestore
    replaces the data directory's contents)."""
    cmd = [vmrestore, f"-src={source}", f"-storageDataPath={storage_data_path}",
           "-httpListenAddr=127.0.0.1:0", "-loggerLevel=ERROR"]
    _run_tool("vmrestore", cmd, timeout_s)
