"""The inference path shared by the REST API and the UI: decode, preprocess, queue, infer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from ofa_ve.batching import Completed
from ofa_ve.engine import Engine, ItemResult
from ofa_ve.errors import DeadlineExceededError, NotReadyError, QueueFullError, ServiceError
from ofa_ve.imaging import decode_image
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.settings import Settings


@dataclass(frozen=True)
class Pair:
    """A validated request item: encoded image bytes and the sentence(s)."""

    image: bytes
    text: str
    premise: str | None = None


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class EntailmentService:
    """Runs pairs through the engine under the request's deadline; raises ServiceError subclasses."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics, engine: Engine) -> None:
        self.settings = settings
        self.metrics = metrics
        self.engine = engine
        # Decoded images are large (up to max_image_pixels * 3 bytes): bound how many exist at once.
        self._decode_slots = asyncio.Semaphore(settings.decode_concurrency)

    def deadline(self) -> float:
        return time.monotonic() + self.settings.request_timeout_s

    def check_capacity(self, items: int = 1) -> None:
        """Sheds load before any decoding when the queue cannot take `items` more."""
        # free_slots() raises NotReadyError (with the loading/failed detail) before the model is up.
        if self.engine.free_slots() < min(items, self.settings.queue_capacity):
            raise QueueFullError(f"inference queue is full ({self.settings.queue_capacity} items)")

    def _decode_and_prepare(self, pair: Pair) -> tuple[Any, float, float]:
        t0 = time.perf_counter()
        decoded = decode_image(
            pair.image, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels
        )
        t1 = time.perf_counter()
        self.metrics.image_size.observe(decoded.size_bytes)
        self.metrics.image_pixels.observe(decoded.pixels)
        sample = self.engine.prepare(decoded.image, pair.text, pair.premise)
        t2 = time.perf_counter()
        self.metrics.observe_stage("decode", t1 - t0)
        self.metrics.observe_stage("preprocess", t2 - t1)
        return sample, t1 - t0, t2 - t1

    async def infer(self, pair: Pair, deadline: float) -> dict[str, Any]:
        """Label, score and stage timings for one pair."""
        self.engine.preparing += 1
        try:
            async with self._decode_slots:
                sample, decode_s, preprocess_s = await asyncio.to_thread(self._decode_and_prepare, pair)
        finally:
            # Before submit: a worker woken by this item must not wait for it a second time.
            self.engine.preparing -= 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceededError("deadline passed before the item was queued")
        future = self.engine.submit(sample, deadline)
        try:
            completed: Completed = await asyncio.wait_for(asyncio.wrap_future(future), remaining)
        except TimeoutError:
            raise DeadlineExceededError(
                f"no result within the {self.settings.request_timeout_s:g} s deadline"
            ) from None
        result: ItemResult = completed.value
        return {
            "label": result.prediction.label,
            "score": result.prediction.score,
            "timings_ms": {
                "decode": _ms(decode_s),
                "queue": _ms(completed.queue_s),
                "preprocess": _ms(preprocess_s),
                "inference": _ms(result.inference_s),
                "postprocess": _ms(result.postprocess_s),
            },
            "batch_size": result.batch_size,
        }

    async def infer_many(self, items: list[Pair | ServiceError], deadline: float) -> list[dict[str, Any]]:
        """Per-item results; client errors stay per item, a server-side failure fails the whole call."""
        valid = [i for i in items if isinstance(i, Pair)]
        if valid:
            self.check_capacity(len(valid))
        outcomes = await asyncio.gather(
            *(self.infer(i, deadline) for i in valid), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, (NotReadyError, QueueFullError, DeadlineExceededError)):
                raise outcome
            if isinstance(outcome, ServiceError) and outcome.status_code >= 500:
                raise outcome
            if isinstance(outcome, BaseException) and not isinstance(outcome, ServiceError):
                raise outcome
        results: list[dict[str, Any]] = []
        it = iter(outcomes)
        for index, item in enumerate(items):
            outcome = item if isinstance(item, ServiceError) else next(it)
            if isinstance(outcome, ServiceError):
                self.metrics.record_error(outcome.code)
                results.append({"index": index, "error": outcome.to_json()})
            else:
                results.append({"index": index, **outcome})
        return results
