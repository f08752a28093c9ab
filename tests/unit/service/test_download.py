"""The first start's model download is visible: /readyz, the UI, a gauge and a progress line every 10 s."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ofa_ve.app import create_app
from ofa_ve.download import DownloadProgress, DownloadWatch, download_model, model_cache_dirs, tree_bytes
from ofa_ve.engine import Engine
from ofa_ve.gpu import GpuCollector
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.service import EntailmentService
from ofa_ve.settings import Settings
from ofa_ve.ui import model_status
from prometheus_client import CollectorRegistry

from tests.unit.service.conftest import FakeModel

GB = 1_000_000_000


@pytest.mark.parametrize(
    ("done", "total", "text"),
    [
        (int(1.15 * GB), int(3.1 * GB), "downloading 37 % of 3.1 GB"),
        (5, None, "downloading 0.00 GB so far (total unknown)"),
        (4 * GB, 3 * GB, "downloading 100 % of 3.0 GB"),
    ],
)
def test_progress_in_words(done: int, total: int | None, text: str) -> None:
    """`downloading n % of m GB`, capped at 100 %, and bytes alone when the hub gave no total."""
    assert DownloadProgress(done, total).describe() == text


def test_tree_bytes_counts_partial_files_and_not_links(tmp_path: Path) -> None:
    """Regular files count, partial downloads included; symlinks (to blobs elsewhere) do not."""
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "pytorch_model.bin.incomplete").write_bytes(b"x" * 1000)
    (tmp_path / "config.json").write_bytes(b"{}")
    os.symlink(tmp_path / "config.json", tmp_path / "snap" / "link.json")
    assert tree_bytes([tmp_path, tmp_path / "missing"]) == 1002


def test_cache_dirs_cover_the_new_and_the_old_modelscope_layouts(tmp_path: Path) -> None:
    """ModelScope 1.38+ writes models/owner--name; older versions owner/name with dots as ___."""
    dirs = model_cache_dirs(tmp_path, "damo/ofa_ve_large.v1")
    assert tmp_path / "models" / "damo--ofa_ve_large.v1" in dirs
    assert tmp_path / "models" / "damo" / "ofa_ve_large___v1" in dirs
    assert tmp_path / "hub" / "damo" / "ofa_ve_large___v1" in dirs


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_progress_line_at_most_every_ten_seconds(caplog: pytest.LogCaptureFixture) -> None:
    """Every sample is reported (gauge, /readyz); the log gets one line per 10 s, plus the final figure."""
    clock, size, reports = Clock(), [0], []
    watch = DownloadWatch(lambda: size[0], 3 * GB, reports.append, model="m", interval_s=3600, clock=clock)
    caplog.set_level(logging.INFO, logger="ofa_ve.download")
    with watch:
        for _ in range(25):
            clock.now += 1
            size[0] += 100 * 1_000_000
            watch.sample()
    lines = [r for r in caplog.records if r.getMessage() == "model download progress"]
    assert [round(r.elapsed_s) for r in lines] == [0, 10, 20, 25]  # type: ignore[attr-defined]
    assert lines[-1].progress == "downloading 83 % of 3.0 GB"  # type: ignore[attr-defined]
    assert len(reports) == 27 and reports[-1].done_bytes == 2_500_000_000


def test_download_measured_by_the_growing_cache_directory(tmp_path: Path) -> None:
    """With a fetch that writes the model's files in chunks (as ModelScope does: `.incomplete`, then a
    rename), the reported bytes grow to the hub's total while the fetch runs."""
    chunks, chunk = 20, 50_000
    target = tmp_path / "models" / "damo--ofa_tiny" / "snapshots" / "master"
    reports: list[DownloadProgress] = []
    seen_midway: list[int] = []

    def fetch(model_id: str, revision: str | None) -> None:
        assert (model_id, revision) == ("damo/ofa_tiny", "v1.0")
        target.mkdir(parents=True)
        (target / "config.json").write_bytes(b"c" * 1000)
        partial = target / "pytorch_model.bin.incomplete"
        with partial.open("wb") as out:
            for i in range(chunks):
                out.write(b"w" * chunk)
                out.flush()
                if i + 1 == chunks // 2:  # half written: wait until the watch has seen it
                    deadline = time.monotonic() + 5
                    while reports[-1].done_bytes < 1000 + (i + 1) * chunk and time.monotonic() < deadline:
                        time.sleep(0.005)
                    seen_midway.append(reports[-1].done_bytes)
        partial.rename(target / "pytorch_model.bin")

    total = 1000 + chunks * chunk
    download_model("damo/ofa_tiny", "v1.0", reports.append, fetch=fetch, total=lambda _m, _r: total,
                   root=tmp_path, interval_s=0.01)
    assert seen_midway == [1000 + chunks // 2 * chunk]  # sampled while the file was still partial
    done = [p.done_bytes for p in reports]
    assert done == sorted(done) and done[0] == 0 and done[-1] == total
    assert reports[-1].fraction == 1.0


def _engine(downloader: Callable[..., None] | None, model: str = "damo/ofa_tiny",
            factory: Callable[[Settings], Any] | None = None) -> tuple[Engine, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = Settings(model=model, enable_ui=False, max_wait_ms=0, load_retry_initial_s=0.05,
                        load_retry_max_s=0.05)
    metrics = ServiceMetrics(registry, process_collectors=False)
    engine = Engine(settings, metrics, model_factory=factory or (lambda _s: FakeModel()),
                    downloader=downloader)
    return engine, registry


def _wait_ready(engine: Engine) -> bool:
    deadline = time.monotonic() + 10
    while not engine.ready and time.monotonic() < deadline:
        time.sleep(0.01)
    return engine.ready


def test_readyz_ui_and_gauges_say_how_far_the_download_is() -> None:
    """While a hub model downloads: state downloading (one-hot), /readyz `downloading 50 % of 2.0 GB` with
    the figures, the UI line says the same, the gauges hold the bytes; then loading and ready."""
    reported, gate = threading.Event(), threading.Event()

    def downloader(model_id: str, revision: str | None, report: Callable[[DownloadProgress], None]) -> None:
        report(DownloadProgress(GB, 2 * GB, 30.0))
        reported.set()
        gate.wait(10)
        report(DownloadProgress(2 * GB, 2 * GB, 60.0))

    engine, registry = _engine(downloader)
    client = TestClient(create_app(engine.settings, registry, engine, gpu_collector=GpuCollector(nvml=None)))
    client.__enter__()
    try:
        assert reported.wait(10)
        ready = client.get("/readyz")
        ui_line = model_status(EntailmentService(engine.settings, engine.metrics, engine))
        states = {s: registry.get_sample_value("ofa_ve_model_state", {"state": s})
                  for s in ("downloading", "loading", "ready", "failed")}
        gauges = (registry.get_sample_value("ofa_ve_model_download_bytes"),
                  registry.get_sample_value("ofa_ve_model_download_expected_bytes"))
    finally:
        gate.set()
    assert ready.status_code == 503
    body = ready.json()
    assert (body["status"], body["activity"]) == ("downloading", "downloading 50 % of 2.0 GB")
    assert body["download"] == {"done_bytes": GB, "total_bytes": 2 * GB, "percent": 50.0, "elapsed_s": 30.0}
    assert ui_line.startswith("**Model: downloading 50 % of 2.0 GB.**")
    assert states == {"downloading": 1, "loading": 0, "ready": 0, "failed": 0}
    assert gauges == (GB, 2 * GB)
    try:
        assert _wait_ready(engine), engine.status()
        assert client.get("/readyz").json() == {"status": "ready"}
    finally:
        client.__exit__(None, None, None)
    assert registry.get_sample_value("ofa_ve_model_download_bytes") == 2 * GB


def test_a_local_model_directory_is_never_downloaded(tmp_path: Path) -> None:
    """An absolute model directory goes straight to loading: the downloader is not called."""
    called: list[str] = []
    engine, registry = _engine(lambda *a: called.append(a[0]), model=str(tmp_path))
    engine.start()
    try:
        assert engine.wait_loaded(10)
    finally:
        engine.stop()
    assert called == [] and registry.get_sample_value("ofa_ve_model_download_bytes") == 0


def test_a_failed_download_is_a_failed_attempt_with_its_cause_and_is_retried() -> None:
    """The hub unreachable: failed (cause on /readyz's activity), counted, retried; then it goes through."""
    attempts: list[int] = []

    def downloader(model_id: str, revision: str | None, report: Callable[[DownloadProgress], None]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("hub unreachable")

    engine, registry = _engine(downloader)
    engine.start()
    try:
        assert engine.wait_loaded(10) is False
        status = engine.status()
        assert status.state == "failed"
        assert status.activity.startswith("failed: ConnectionError: hub unreachable; next attempt in ")
        assert _wait_ready(engine)
    finally:
        engine.stop()
    assert len(attempts) == 2 and registry.get_sample_value("ofa_ve_model_load_failures_total") == 1


def test_warming_up_is_said_apart_from_loading() -> None:
    """Once built, the model's warm-up inference shows as `warming up` (state still loading)."""
    gate = threading.Event()
    model = FakeModel(gate=gate)
    engine, _ = _engine(None, factory=lambda _s: model)
    engine.start()
    try:
        assert model.entered.wait(10)
        status = engine.status()
        line = model_status(EntailmentService(engine.settings, engine.metrics, engine))
    finally:
        gate.set()
        engine.wait_loaded(10)
        engine.stop()
    assert (status.state, status.activity) == ("loading", "warming up")
    assert line == "**Model: warming up.** Requests get 503 until the model is ready."
    assert model_status(EntailmentService(engine.settings, engine.metrics, engine)) == "**Model: ready.**"
