"""Model lifecycle (background load, retried with backoff; warm-up; readiness) and the batching worker."""

from __future__ import annotations

import gc
import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ofa_ve import accel
from ofa_ve.batching import BatchInfo, MicroBatcher
from ofa_ve.download import DownloadProgress
from ofa_ve.errors import ClientError, DeviceFaultError, InferenceError, NotReadyError, ServiceError
from ofa_ve.loading import load_retry_delay
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.model import ModelDescription, OfaEntailmentModel, Prediction
from ofa_ve.settings import Settings
from ofa_ve.splitting import run_splitting

log = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 500  # characters of the last load error kept for /readyz and 503 messages


class EntailmentModel(Protocol):
    """What the engine needs from a model (OfaEntailmentModel; a fake one in unit tests)."""

    description: ModelDescription

    def prepare(self, image: Image.Image, text: str, premise: str | None) -> Any: ...
    def collate(self, samples: Sequence[Any]) -> Any: ...
    def infer(self, batch: Any) -> Any: ...
    def postprocess(self, output: Any) -> list[Prediction]: ...


@dataclass(frozen=True)
class ItemResult:
    """One item's prediction plus the batch-level stage times it shared."""

    prediction: Prediction
    batch_size: int
    inference_s: float
    postprocess_s: float


# Fetches a hub model into the cache: (model id, revision, progress callback).
Downloader = Callable[[str, str | None, Callable[[DownloadProgress], None]], None]


@dataclass(frozen=True)
class LoadStatus:
    """A consistent snapshot of the model lifecycle, for /readyz, the UI and error messages."""

    state: str  # one of loading.MODEL_STATES
    error: str | None  # "ExceptionClass: message" of the last failed attempt, truncated
    failed_attempts: int  # consecutive failed attempts (reset to 0 once ready)
    retry_in_s: float | None  # seconds until the next attempt while failed, else None
    download: DownloadProgress | None = None  # the last measurement while downloading
    warming_up: bool = False  # loaded, running the warm-up inference

    @property
    def activity(self) -> str:
        """What the replica is doing, in words: `downloading 37 % of 3.1 GB`, `warming up`, `failed: ...`."""
        if self.state == "downloading":
            return self.download.describe() if self.download else "downloading the model"
        if self.state == "loading":
            return "warming up" if self.warming_up else "loading the model"
        if self.state == "failed":
            retry = "" if self.retry_in_s is None else f"; next attempt in {self.retry_in_s:.0f} s"
            return f"failed: {self.error}{retry}"
        return self.state


def _import_torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:  # pragma: no cover - torch is a dependency; without it nothing is an OOM
        return None


def freeze_heap() -> int:
    """Moves every object alive now out of the garbage collector's reach; returns how many.

    After the model load the process holds ~600k long-lived objects (torch, ModelScope, transformers).
    Every full (generation 2) collection walked all of them, stopping every thread for ~300 ms: under
    load that was the event loop's longest stall, a 503 waiting a third of a second. Frozen, they are
    skipped; objects made later (requests) are collected as before.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def describe_error(exc: BaseException, limit: int = ERROR_TEXT_LIMIT) -> str:
    """`ExceptionClass: message`, cut to `limit` characters (ModelScope errors can embed whole configs)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Engine:
    """Loads the model in a background thread, retrying failed loads with exponential backoff;
    serves `prepare` + `submit` once warmed up.

    A forward pass that runs out of GPU memory is split in halves and retried (splitting.py). An
    unrecoverable accelerator fault marks the replica failed for good (not ready, every queued item
    fails with device_fault) and calls `on_device_fault`, which makes the process exit so that its
    restart policy brings up a fresh CUDA context.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        model_factory: Callable[[Settings], EntailmentModel] = OfaEntailmentModel,
        *,
        on_device_fault: Callable[[str], None] | None = None,
        torch_module: Any = None,
        downloader: Downloader | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._factory = model_factory
        # A hub id (not a local directory) is fetched by this first, with its progress shown; without
        # one, the model factory downloads (invisibly) or loads from disk.
        self._downloader = downloader
        self._download: DownloadProgress | None = None
        self._warming_up = False
        self._on_device_fault = on_device_fault
        self._torch = torch_module  # imported on first need: only failures and OOM handling use it
        self.fault: str | None = None  # set once, by the worker, on an unrecoverable device fault
        self._model: EntailmentModel | None = None
        self._batcher: MicroBatcher | None = None
        # Guards the lifecycle fields below (the loader writes them, request handlers read them); a
        # Condition so that wait_loaded() wakes on each change.
        self._lock = threading.Condition()
        self.state = "loading"
        self.error: str | None = None
        self.failed_attempts = 0
        self._retry_at: float | None = None  # time.monotonic() of the next attempt while failed
        self._stopping = threading.Event()
        self._loader: threading.Thread | None = None
        self._loader_done = False
        # Requests between admission and submit (decoding, preprocessing). Only the event loop thread
        # changes it; the worker reads it to decide whether waiting for a fuller batch can pay off.
        self.preparing = 0
        metrics.set_model_state("loading")
        metrics.queue_capacity.set(settings.queue_capacity)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def status(self) -> LoadStatus:
        """The lifecycle state, last error, failed attempts and time to the next retry, read together."""
        with self._lock:
            retry_in = None
            if self.state == "failed" and self._retry_at is not None and self.fault is None:
                retry_in = max(0.0, self._retry_at - time.monotonic())
            download = self._download if self.state == "downloading" else None
            return LoadStatus(self.state, self.error, self.failed_attempts, retry_in, download,
                              self._warming_up and self.state == "loading")

    def start(self) -> None:
        """Starts loading in the background; the HTTP server answers meanwhile."""
        self._loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._loader.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Blocks until the current load attempt ended (ready or failed) or the loader stopped; True when
        ready."""
        with self._lock:
            self._lock.wait_for(
                lambda: self.state not in ("loading", "downloading") or self._loader is None
                or self._loader_done,
                timeout,
            )
        return self.ready

    def stop(self) -> None:
        """Ends the loader (at once when it waits for a retry; after the attempt when one runs) and the
        worker."""
        with self._lock:
            self._stopping.set()
            batcher = self._batcher
        if batcher is not None:
            batcher.stop()

    def _set_state(self, state: str) -> None:
        # Caller holds the lock: the fields and the gauges change together for readers of status().
        self.state = state
        self.metrics.set_model_state(state)
        self._lock.notify_all()

    def _load(self) -> None:
        try:
            self._load_until_ready()
        finally:
            with self._lock:
                self._loader_done = True
                self._lock.notify_all()  # wakes wait_loaded() when the loader ends without a model

    def _load_until_ready(self) -> None:
        s = self.settings
        failures = 0
        last_error: str | None = None
        while not self._stopping.is_set():
            download = self._downloader is not None and not s.model_is_local
            with self._lock:
                self._set_state("downloading" if download else "loading")
            log.info("downloading model" if download else "loading model",
                     extra={"model": s.model, "device": s.device, "attempt": failures + 1})
            started = time.monotonic()
            try:
                model = self._attempt()
            except Exception as exc:
                failures += 1
                delay = load_retry_delay(failures, s.load_retry_initial_s, s.load_retry_max_s,
                                         s.load_retry_multiplier)
                error = describe_error(exc)
                retry_at = time.monotonic() + delay
                with self._lock:
                    self.error = error
                    self.failed_attempts = failures
                    self._retry_at = retry_at
                    self.metrics.model_load_failures.inc()
                    self._set_state("failed")
                # The traceback only when the cause changed: a replica retrying for hours logs one line
                # per attempt, not one stack per attempt.
                log.error("model load failed", exc_info=exc if error != last_error else None, extra={
                    "model": s.model, "attempt": failures, "error_type": type(exc).__name__,
                    "error": error, "retry_in_s": round(delay, 3),
                })
                last_error = error
            else:
                self._serve(model, time.monotonic() - started)
                return
            # Outside the except block, so the traceback (and any half-built model it holds, GPU memory
            # included) is gone before the wait; collect cycles so the next attempt finds that memory free.
            gc.collect()
            # Until the time /readyz announced, whatever the collection took.
            if self._stopping.wait(max(0.0, retry_at - time.monotonic())):
                return

    def _attempt(self) -> EntailmentModel:
        s = self.settings
        if self._downloader is not None and not s.model_is_local:
            self._downloader(s.model, s.model_revision, self._on_progress)
            with self._lock:
                self._download = None
                self._set_state("loading")
            log.info("loading model", extra={"model": s.model, "device": s.device})
        model = self._factory(s)
        if s.warmup:
            with self._lock:
                self._warming_up = True
            try:
                self._warm_up(model)
            finally:
                with self._lock:
                    self._warming_up = False
        return model

    def _on_progress(self, progress: DownloadProgress) -> None:
        with self._lock:
            self._download = progress
        self.metrics.model_download_bytes.set(progress.done_bytes)
        self.metrics.model_download_expected_bytes.set(progress.total_bytes or 0)

    def _serve(self, model: EntailmentModel, duration: float) -> None:
        batcher = MicroBatcher(
            self._run_batch,
            max_batch_size=self.settings.max_batch_size,
            max_wait_s=self.settings.max_wait_ms / 1000.0,
            capacity=self.settings.queue_capacity,
            metrics=self.metrics,
            incoming=lambda: self.preparing,
        )
        d = model.description
        if self.settings.gc_freeze:
            freeze_heap()
        with self._lock:
            if self._stopping.is_set():
                return  # stop() came during the last attempt: never start a worker nobody stops
            self._model = model
            self._batcher = batcher
            batcher.start()
            self.metrics.model_info.labels(d.model, d.revision, d.device, d.dtype).set(1)
            self.metrics.model_load_duration.set(duration)
            self.error = None
            self.failed_attempts = 0
            self._retry_at = None
            self._set_state("ready")
        log.info("model ready", extra={"model": d.model, "device": d.device, "dtype": d.dtype,
                                       "load_seconds": round(duration, 3)})

    @staticmethod
    def _warm_up(model: EntailmentModel) -> None:
        # One real forward pass: readiness means the first user request will not pay for lazy init.
        image = Image.fromarray(np.full((64, 64, 3), 127, dtype=np.uint8))
        sample = model.prepare(image, "warm-up", None)
        model.postprocess(model.infer(model.collate([sample])))

    def _torch_module(self) -> Any:
        if self._torch is None:
            self._torch = _import_torch()
        return self._torch

    def _classify(self, exc: BaseException) -> str:
        torch = self._torch_module()
        return "other" if torch is None else accel.classify_failure(exc, torch)

    def _release_cache(self) -> None:
        torch = self._torch_module()
        if torch is not None:
            accel.release_cached_memory(torch)

    def _run_batch(self, samples: Sequence[Any], info: BatchInfo) -> list[ItemResult | ServiceError]:
        model = self._model
        assert model is not None  # the batcher only exists once the model does
        if self.fault is not None:
            raise DeviceFaultError(f"the accelerator failed earlier ({self.fault}); the replica restarts")
        try:
            return run_splitting(
                lambda chunk: self._forward(model, chunk), list(zip(samples, info.contexts, strict=True)),
                is_oom=lambda exc: self._classify(exc) == "oom",
                release=self._release_cache,
                on_oom=lambda _size: self.metrics.gpu_oom.inc(),
                on_split=lambda size: self._log_split(size, info.batch_id),
            )
        except ServiceError:
            raise
        except Exception as exc:
            cause = type(exc).__name__
            if self._classify(exc) == "fault":
                self._device_failed(exc)
                raise DeviceFaultError(f"accelerator fault: {cause}", cause=cause) from exc
            raise InferenceError(f"inference failed: {cause}", cause=cause) from exc

    def _log_split(self, size: int, batch_id: int) -> None:
        self.metrics.batch_splits.inc()
        log.warning("GPU out of memory: splitting the batch in halves", extra={
            "batch_id": batch_id, "batch_size": size, "error_type": "gpu_out_of_memory"})

    def _forward(self, model: EntailmentModel, chunk: Sequence[tuple[Any, Any]]) -> list[ItemResult]:
        samples = [sample for sample, _ in chunk]
        first = chunk[0][1]  # the exemplar of a batch-level stage names its first item's request
        t0 = time.perf_counter()
        output = model.infer(model.collate(samples))
        t1 = time.perf_counter()
        predictions = model.postprocess(output)
        t2 = time.perf_counter()
        self.metrics.observe_stage("inference", t1 - t0, first)
        self.metrics.observe_stage("postprocess", t2 - t1, first)
        n = len(samples)
        return [ItemResult(p, n, t1 - t0, t2 - t1) for p in predictions]

    def _device_failed(self, exc: BaseException) -> None:
        """The CUDA context is poisoned: every later kernel fails. Refuse work and have the process
        replaced, instead of staying ready while every batch fails."""
        error = describe_error(exc)
        with self._lock:
            first = self.fault is None
            self.fault = error
            self.error = error
            self._retry_at = None
            if first:
                self.metrics.device_faults.inc()
            self._set_state("failed")
        if not first:
            return
        log.critical("unrecoverable device fault: the replica stops serving and exits to be restarted",
                     exc_info=exc, extra={"error_type": "device_fault", "cause": type(exc).__name__,
                                          "error": error})
        if self._on_device_fault is not None:
            self._on_device_fault(error)

    def _require_ready(self) -> tuple[EntailmentModel, MicroBatcher]:
        model, batcher = self._model, self._batcher
        if model is None or batcher is None or not self.ready:
            raise NotReadyError(self._not_ready_detail())
        return model, batcher

    def require_ready(self) -> None:
        """Raises NotReadyError (with the loading/failed detail) unless the model serves."""
        self._require_ready()

    def _not_ready_detail(self) -> str:
        if self.fault is not None:
            return f"device fault, the replica restarts: {self.fault}"
        st = self.status()
        if st.state == "failed":
            return (f"model failed to load (failed attempts: {st.failed_attempts}, next attempt in "
                    f"{st.retry_in_s or 0:.1f} s): {st.error}")
        if st.failed_attempts:
            return f"model is loading (failed attempts so far: {st.failed_attempts}, last: {st.error})"
        return "model is loading"

    def prepare(self, image: Image.Image, text: str, premise: str | None) -> Any:
        """CPU-side preprocessing of one pair (tokenise, resize); runs in the caller's thread."""
        model, _ = self._require_ready()
        try:
            return model.prepare(image, text, premise)
        except UnicodeError as exc:  # the API checks text first; this catches what slips past it
            raise ClientError(f"text cannot be encoded for the model: {exc}", code="unencodable_text",
                              status_code=422) from exc

    def submit(self, sample: Any, deadline: float, context: Any = None) -> Future:
        """Queues a prepared sample; the future yields batching.Completed(ItemResult) or raises."""
        _, batcher = self._require_ready()
        return batcher.submit(sample, deadline, context)
