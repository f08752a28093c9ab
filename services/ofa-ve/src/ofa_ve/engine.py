"""Model lifecycle (background load, warm-up, readiness) and the micro-batching worker in front of it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ofa_ve.batching import MicroBatcher
from ofa_ve.errors import NotReadyError
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.model import ModelDescription, OfaEntailmentModel, Prediction
from ofa_ve.settings import Settings

log = logging.getLogger(__name__)


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


class Engine:
    """Loads the model in a background thread; serves `prepare` + `submit` once warmed up."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        model_factory: Callable[[Settings], EntailmentModel] = OfaEntailmentModel,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._factory = model_factory
        self._model: EntailmentModel | None = None
        self._batcher: MicroBatcher | None = None
        self.state = "loading"
        self.error: str | None = None
        self._loader: threading.Thread | None = None
        # Requests between admission and submit (decoding, preprocessing). Only the event loop thread
        # changes it; the worker reads it to decide whether waiting for a fuller batch can pay off.
        self.preparing = 0
        metrics.model_ready.set(0)
        metrics.queue_capacity.set(settings.queue_capacity)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def start(self) -> None:
        """Starts loading in the background; the HTTP server answers meanwhile."""
        self._loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._loader.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Blocks until loading ended (ready or failed); True when ready."""
        if self._loader is not None:
            self._loader.join(timeout)
        return self.ready

    def stop(self) -> None:
        if self._batcher is not None:
            self._batcher.stop()

    def _load(self) -> None:
        started = time.monotonic()
        log.info("loading model", extra={"model": self.settings.model, "device": self.settings.device})
        try:
            model = self._factory(self.settings)
            if self.settings.warmup:
                self._warm_up(model)
        except Exception as exc:
            self.state = "failed"
            self.error = f"{type(exc).__name__}: {exc}"
            self.metrics.model_load_failures.inc()
            self.metrics.model_ready.set(0)
            log.exception("model load failed", extra={"model": self.settings.model})
            return
        duration = time.monotonic() - started
        self._model = model
        d = model.description
        self.metrics.model_info.labels(d.model, d.revision, d.device, d.dtype).set(1)
        self.metrics.model_load_duration.set(duration)
        self._batcher = MicroBatcher(
            self._run_batch,
            max_batch_size=self.settings.max_batch_size,
            max_wait_s=self.settings.max_wait_ms / 1000.0,
            capacity=self.settings.queue_capacity,
            metrics=self.metrics,
            incoming=lambda: self.preparing,
        )
        self._batcher.start()
        self.state = "ready"
        self.metrics.model_ready.set(1)
        log.info("model ready", extra={"model": d.model, "device": d.device, "dtype": d.dtype,
                                       "load_seconds": round(duration, 3)})

    @staticmethod
    def _warm_up(model: EntailmentModel) -> None:
        # One real forward pass: readiness means the first user request will not pay for lazy init.
        image = Image.fromarray(np.full((64, 64, 3), 127, dtype=np.uint8))
        sample = model.prepare(image, "warm-up", None)
        model.postprocess(model.infer(model.collate([sample])))

    def _run_batch(self, samples: Sequence[Any]) -> list[ItemResult]:
        model = self._model
        assert model is not None  # the batcher only exists once the model does
        t0 = time.perf_counter()
        output = model.infer(model.collate(samples))
        t1 = time.perf_counter()
        predictions = model.postprocess(output)
        t2 = time.perf_counter()
        self.metrics.observe_stage("inference", t1 - t0)
        self.metrics.observe_stage("postprocess", t2 - t1)
        n = len(samples)
        return [ItemResult(p, n, t1 - t0, t2 - t1) for p in predictions]

    def _require_ready(self) -> tuple[EntailmentModel, MicroBatcher]:
        if self._model is None or self._batcher is None or not self.ready:
            detail = f"model failed to load: {self.error}" if self.state == "failed" else "model is loading"
            raise NotReadyError(detail)
        return self._model, self._batcher

    def free_slots(self) -> int:
        _, batcher = self._require_ready()
        return batcher.free_slots()

    def prepare(self, image: Image.Image, text: str, premise: str | None) -> Any:
        """CPU-side preprocessing of one pair (tokenise, resize); runs in the caller's thread."""
        model, _ = self._require_ready()
        return model.prepare(image, text, premise)

    def submit(self, sample: Any, deadline: float) -> Future:
        """Queues a prepared sample; the future yields batching.Completed(ItemResult)."""
        _, batcher = self._require_ready()
        return batcher.submit(sample, deadline)
