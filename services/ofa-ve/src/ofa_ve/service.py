"""The inference path shared by the REST API and the UI: decode, preprocess, queue, infer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from ofa_ve import context
from ofa_ve.admission import Admission, Ticket
from ofa_ve.batching import Completed
from ofa_ve.context import ItemTrace, RequestContext
from ofa_ve.engine import Engine, ItemResult
from ofa_ve.errors import DeadlineExceededError, NotReadyError, OverloadedError, QueueFullError, ServiceError
from ofa_ve.imaging import b64decode, check_image_bytes, decode_image
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.settings import Settings


@dataclass
class Pair:
    """A validated request item: the encoded image and the sentence(s).

    A JSON item keeps its image as base64 text until its turn to decode comes (`take_image`), so a batch
    call never holds every item's decoded bytes at once.
    """

    image: bytes | None
    text: str
    premise: str | None = None
    image_base64: str | None = None

    def take_image(self) -> bytes:
        """The encoded image bytes (decoding the normalised base64 now); the pair lets go of them."""
        if self.image is not None:
            data, self.image = self.image, None
            return data
        if self.image_base64 is None:
            raise ValueError("the image was taken already")
        text, self.image_base64 = self.image_base64, None
        return b64decode(text)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class EntailmentService:
    """Admits work, then runs pairs through the engine under the request's deadline; raises ServiceError
    subclasses."""

    def __init__(
        self, settings: Settings, metrics: ServiceMetrics, engine: Engine, admission: Admission | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.engine = engine
        if admission is None:
            admission = Admission(settings.admission_items, settings.max_body_bytes_in_flight, metrics)
        self.admission = admission
        # Decoded images are large (up to max_image_pixels * 3 bytes): bound how many exist at once.
        self._decode_slots = asyncio.Semaphore(settings.decode_concurrency)

    def deadline(self) -> float:
        return time.monotonic() + self.settings.request_timeout_s

    def admit(self, items: int = 1, body_bytes: int = 0) -> Ticket:
        """Admission before any work: NotReadyError while the model is not up, OverloadedError past
        either budget."""
        self.engine.require_ready()
        return self.admission.admit(items, body_bytes)

    def _decode_and_prepare(self, pair: Pair, trace: ItemTrace, ctx: RequestContext | None) -> Any:
        t0 = time.perf_counter()
        data = pair.take_image()
        check_image_bytes(len(data), self.settings.max_image_bytes)
        trace.image_bytes = len(data)
        decoded = decode_image(
            data, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels
        )
        del data
        t1 = time.perf_counter()
        trace.image_pixels = decoded.pixels
        trace.timings_s["decode"] = t1 - t0
        self.metrics.image_size.observe(decoded.size_bytes)
        self.metrics.image_pixels.observe(decoded.pixels)
        self.metrics.observe_stage("decode", t1 - t0, ctx)
        sample = self.engine.prepare(decoded.image, pair.text, pair.premise)
        t2 = time.perf_counter()
        trace.timings_s["preprocess"] = t2 - t1
        self.metrics.observe_stage("preprocess", t2 - t1, ctx)
        return sample

    async def infer(self, pair: Pair, deadline: float, trace: ItemTrace | None = None) -> dict[str, Any]:
        """Label, score and stage timings for one pair; `trace` (item 0 of the request by default)
        records what happened to it."""
        ctx = context.current()
        if trace is None:
            trace = ctx.item(0) if ctx is not None else ItemTrace(0)
        trace.text_chars = len(pair.text)
        trace.premise_chars = len(pair.premise) if pair.premise else None
        try:
            return await self._infer(pair, deadline, trace, ctx)
        except ServiceError as exc:
            trace.error = exc.to_json()
            raise

    async def _infer(
        self, pair: Pair, deadline: float, trace: ItemTrace, ctx: RequestContext | None
    ) -> dict[str, Any]:
        self.engine.preparing += 1
        try:
            async with self._decode_slots:
                sample = await asyncio.to_thread(self._decode_and_prepare, pair, trace, ctx)
        finally:
            # Before submit: a worker woken by this item must not wait for it a second time.
            self.engine.preparing -= 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceededError("deadline passed before the item was queued")
        future = self.engine.submit(sample, deadline, ctx)
        del sample
        try:
            completed: Completed = await asyncio.wait_for(asyncio.wrap_future(future), remaining)
        except TimeoutError:
            raise DeadlineExceededError(
                f"no result within the {self.settings.request_timeout_s:g} s deadline"
            ) from None
        result: ItemResult = completed.value
        trace.batch_id, trace.batch_size = completed.batch_id, result.batch_size
        trace.timings_s.update(queue=completed.queue_s, inference=result.inference_s,
                               postprocess=result.postprocess_s)
        return {
            "label": result.prediction.label,
            "score": result.prediction.score,
            "timings_ms": {name: _ms(trace.timings_s[name])
                           for name in ("decode", "queue", "preprocess", "inference", "postprocess")},
            "batch_size": result.batch_size,
        }

    async def infer_many(self, items: list[Pair | ServiceError], deadline: float) -> list[dict[str, Any]]:
        """Per-item results; client errors stay per item, a server-side failure fails the whole call."""
        ctx = context.current()
        traces = [ctx.item(i) if ctx is not None else ItemTrace(i) for i in range(len(items))]
        jobs = [self.infer(item, deadline, traces[i])
                for i, item in enumerate(items) if isinstance(item, Pair)]
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, (NotReadyError, OverloadedError, QueueFullError, DeadlineExceededError)):
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
                traces[index].error = outcome.to_json()
                self.metrics.record_error(outcome.code, outcome.cause)
                results.append({"index": index, "error": outcome.to_json()})
            else:
                results.append({"index": index, **outcome})
        return results
