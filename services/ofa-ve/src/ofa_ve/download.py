"""The first start's model download, made visible: bytes on disk against the hub's announced total.

A hub model (`damo/ofa_visual-entailment_snli-ve_large_en`, ~3 GB) is fetched by ModelScope before the
pipeline can load it; until now the replica only said `loading` for up to 15 minutes. Progress is
measured from outside the library: the size of the model's cache directories (partial files
included), sampled every second, against the sum of the file sizes the hub lists for that revision.
That needs no hook into ModelScope's download code (which changed completely in 1.38), and it is
tested by growing a directory. When the hub's list cannot be read, the bytes so far are still shown.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GB = 1_000_000_000
PROGRESS_LOG_INTERVAL_S = 10.0  # at most one progress line per this many seconds


@dataclass(frozen=True)
class DownloadProgress:
    """Bytes on disk so far and the expected total (None when the hub's file list was not readable)."""

    done_bytes: int
    total_bytes: int | None
    elapsed_s: float = 0.0

    @property
    def fraction(self) -> float | None:
        if not self.total_bytes:
            return None
        return min(1.0, self.done_bytes / self.total_bytes)

    def describe(self) -> str:
        """`downloading 37 % of 3.1 GB` (or `downloading 1.2 GB so far` without a total)."""
        fraction = self.fraction
        if fraction is None or self.total_bytes is None:
            return f"downloading {self.done_bytes / GB:.2f} GB so far (total unknown)"
        return f"downloading {fraction * 100:.0f} % of {self.total_bytes / GB:.1f} GB"

    def as_json(self) -> dict[str, Any]:
        fraction = self.fraction
        return {
            "done_bytes": self.done_bytes,
            "total_bytes": self.total_bytes,
            "percent": None if fraction is None else round(fraction * 100, 1),
            "elapsed_s": round(self.elapsed_s, 1),
        }


def tree_bytes(paths: Iterable[Path]) -> int:
    """Total size of the regular files under `paths` (symlinks not followed; vanishing files skipped)."""
    total = 0
    for root in paths:
        for folder, _dirs, files in os.walk(root, followlinks=False):
            for name in files:
                try:
                    info = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue  # renamed or deleted by the downloader between listing and stat
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
    return total


def cache_root() -> Path:
    """ModelScope's cache root: $MODELSCOPE_CACHE (the image sets /models), else ~/.cache/modelscope."""
    configured = os.environ.get("MODELSCOPE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "modelscope"


def model_cache_dirs(root: Path, model_id: str) -> list[Path]:
    """Where ModelScope versions put a model's files under `root` (1.38+: `models/owner--name`; older:
    `models/owner/name` with dots written `___`, with or without a `hub/` level)."""
    owner, _, name = model_id.partition("/")
    legacy = name.replace(".", "___")
    candidates = [
        root / "models" / f"{owner}--{name}",
        root / "models" / owner / legacy,
        root / "hub" / "models" / owner / legacy,
        root / "hub" / owner / legacy,
        root / owner / legacy,
    ]
    return list(dict.fromkeys(candidates))


def hub_total_bytes(model_id: str, revision: str | None) -> int | None:
    """Sum of the file sizes the hub lists for the model; None when the list cannot be had."""
    try:
        from modelscope.hub.api import HubApi

        files = HubApi().get_model_files(model_id, revision=revision, recursive=True)
        total = sum(int(f.get("Size") or 0) for f in files if f.get("Type", "blob") != "tree")
    except Exception as exc:
        log.warning("model size unknown: the hub's file list could not be read",
                    extra={"model": model_id, "error": f"{type(exc).__name__}: {exc}"[:300]})
        return None
    return total or None


class DownloadWatch:
    """Samples the bytes on disk in a thread while a download runs, reports each sample, and logs a
    progress line at most every `log_every_s` (the first at once, the last when the download ends)."""

    def __init__(
        self,
        measure: Callable[[], int],
        total: int | None,
        report: Callable[[DownloadProgress], None],
        *,
        model: str = "",
        interval_s: float = 1.0,
        log_every_s: float = PROGRESS_LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.measure = measure
        self.total = total
        self.report = report
        self.model = model
        self.interval_s = interval_s
        self.log_every_s = log_every_s
        self.clock = clock
        self.started = clock()
        self._logged_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> DownloadProgress:
        """One measurement: reported always, logged when the last line is `log_every_s` old."""
        now = self.clock()
        progress = DownloadProgress(self.measure(), self.total, now - self.started)
        self.report(progress)
        if self._logged_at is None or now - self._logged_at >= self.log_every_s:
            self._logged_at = now
            log.info("model download progress", extra={
                "model": self.model, "progress": progress.describe(), **progress.as_json()})
        return progress

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:
                log.exception("measuring the download failed")

    def __enter__(self) -> DownloadWatch:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="download-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if exc[0] is None:
            self._logged_at = None  # the final figure is always logged
            self.sample()


def snapshot(model_id: str, revision: str | None) -> str:
    """ModelScope's own download into its cache (a no-op when every file is there)."""
    from modelscope.hub.snapshot_download import snapshot_download

    return str(snapshot_download(model_id, revision=revision))


def download_model(
    model_id: str,
    revision: str | None,
    report: Callable[[DownloadProgress], None],
    *,
    fetch: Callable[[str, str | None], object] = snapshot,
    total: Callable[[str, str | None], int | None] = hub_total_bytes,
    root: Path | None = None,
    interval_s: float = 1.0,
    log_every_s: float = PROGRESS_LOG_INTERVAL_S,
) -> None:
    """Fetch a hub model into the cache (the pipeline then loads it from there), reporting progress."""
    dirs = model_cache_dirs(root or cache_root(), model_id)
    expected = total(model_id, revision)
    with DownloadWatch(lambda: tree_bytes(dirs), expected, report, model=model_id,
                       interval_s=interval_s, log_every_s=log_every_s):
        fetch(model_id, revision)
