"""A bounded queue drained by one worker thread that coalesces items into micro-batches.

Callers get a `concurrent.futures.Future`; a full queue is refused at once (QueueFullError) so memory
stays bounded, and items whose deadline passed while queued are failed without running. `run_batch`
may return an exception in place of one item's result: that item alone fails.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ofa_ve.errors import DeadlineExceededError, InferenceError, NotReadyError, QueueFullError, ServiceError
from ofa_ve.metrics import ServiceMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completed:
    """What a job's future resolves to: the model's result, the time the job spent queued, and the id
    of the batch it ran in."""

    value: Any
    queue_s: float
    batch_id: int = 0


@dataclass(frozen=True)
class BatchInfo:
    """What `run_batch` learns besides the payloads: the batch's id and each item's request context."""

    batch_id: int
    contexts: tuple[Any, ...]


@dataclass
class _Job:
    payload: Any
    deadline: float
    context: Any = None
    enqueued: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """One worker per device: `run_batch(payloads, info) -> results` is called with 1..max_batch_size
    items."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[Any], BatchInfo], Sequence[Any]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        capacity: int,
        metrics: ServiceMetrics | None = None,
        name: str = "inference-worker",
        incoming: Callable[[], int] | None = None,
    ) -> None:
        if max_batch_size < 1 or capacity < 1 or max_wait_s < 0:
            raise ValueError("max_batch_size and capacity must be >= 1, max_wait_s >= 0")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.capacity = capacity
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=capacity)
        self._metrics = metrics
        # How many items are on their way (being decoded/preprocessed); None: unknown, always wait.
        self._incoming = incoming
        self._stopping = threading.Event()
        self._batches = 0  # ids of the batches run so far (only the worker thread writes it)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        if metrics is not None:
            metrics.queue_capacity.set(capacity)
            metrics.queue_depth.set_function(self._queue.qsize)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the worker after its current batch and fails everything still queued."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(NotReadyError("service is shutting down"))

    def depth(self) -> int:
        return self._queue.qsize()

    def free_slots(self) -> int:
        return max(0, self.capacity - self._queue.qsize())

    def submit(self, payload: Any, deadline: float, context: Any = None) -> Future:
        """Queues one item (`context`: its request's, handed to run_batch); raises QueueFullError at once
        when there is no room."""
        job = _Job(payload=payload, deadline=deadline, context=context)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFullError(f"inference queue is full ({self.capacity} items)") from None
        return job.future

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            # Waiting counts from the first item's arrival: under load the queue already holds a
            # full batch and the worker does not wait at all.
            wait_until = first.enqueued + self.max_wait_s
            while len(batch) < self.max_batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except queue.Empty:
                    pass
                remaining = wait_until - time.monotonic()
                if remaining <= 0 or (self._incoming is not None and self._incoming() == 0):
                    break  # nothing queued and nothing on its way: waiting would only add latency
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            self._run(batch)

    def _run(self, jobs: list[_Job]) -> None:
        now = time.monotonic()
        live: list[tuple[_Job, float]] = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():
                continue  # the caller gave up (its deadline passed) while the job was queued
            if now > job.deadline:
                job.future.set_exception(DeadlineExceededError("deadline passed while queued"))
                continue
            queued = now - job.enqueued
            if self._metrics is not None:
                self._metrics.observe_stage("queue", queued, job.context)
            live.append((job, queued))
        if not live:
            return
        self._batches += 1
        info = BatchInfo(self._batches, tuple(job.context for job, _ in live))
        if self._metrics is not None:
            self._metrics.batch_size.observe(len(live))
        try:
            results = self._run_batch([job.payload for job, _ in live], info)
            if len(results) != len(live):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(live)} items")
        except ServiceError as exc:  # already named by run_batch (device fault, ...)
            log.error("batch %d of %d failed: %s", info.batch_id, len(live), exc.code,
                      extra={"error_type": exc.code, "cause": exc.cause})
            for job, _ in live:
                job.future.set_exception(exc)
            return
        except Exception as exc:
            cause = type(exc).__name__
            log.exception("inference failed on batch %d of %d", info.batch_id, len(live),
                          extra={"error_type": "inference_failed", "cause": cause})
            for job, _ in live:
                job.future.set_exception(InferenceError(f"inference failed: {cause}", cause=cause))
            return
        for (job, queued), result in zip(live, results, strict=True):
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(Completed(value=result, queue_s=queued, batch_id=info.batch_id))
