"""The bounded queue and micro-batching worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from ofa_ve.batching import BatchInfo, Completed, MicroBatcher
from ofa_ve.errors import (
    ClientError,
    DeadlineExceededError,
    DeviceFaultError,
    InferenceError,
    NotReadyError,
    QueueFullError,
)
from ofa_ve.metrics import ServiceMetrics
from prometheus_client import CollectorRegistry


class Recorder:
    """run_batch that records batch sizes, echoes payloads doubled, and can be held by a gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.sizes: list[int] = []
        self.infos: list[BatchInfo] = []

    def __call__(self, payloads: Sequence[Any], info: BatchInfo) -> list[Any]:
        self.entered.set()
        self.gate.wait(10)
        self.sizes.append(len(payloads))
        self.infos.append(info)
        return [p * 2 for p in payloads]


@pytest.fixture
def metrics() -> ServiceMetrics:
    """Service metrics on a fresh registry."""
    return ServiceMetrics(CollectorRegistry(), process_collectors=False)


@pytest.fixture
def stoppers() -> Iterator[list[MicroBatcher]]:
    """Batchers to stop after the test."""
    started: list[MicroBatcher] = []
    yield started
    for b in started:
        b.stop()


def _batcher(run: Any, stoppers: list[MicroBatcher], metrics: ServiceMetrics | None = None,
             **kw: Any) -> MicroBatcher:
    opts = {"max_batch_size": 4, "max_wait_s": 0.0, "capacity": 16, **kw}
    b = MicroBatcher(run, metrics=metrics, **opts)
    stoppers.append(b)
    return b


def _far() -> float:
    return time.monotonic() + 30


def test_results_come_back_in_order(stoppers: list[MicroBatcher]) -> None:
    """Each future resolves to the result for its own payload."""
    b = _batcher(Recorder(), stoppers)
    b.start()
    futures = [b.submit(i, _far()) for i in range(6)]
    values = [f.result(5) for f in futures]
    assert all(isinstance(v, Completed) for v in values)
    assert [v.value for v in values] == [0, 2, 4, 6, 8, 10]


def test_queued_items_are_coalesced_up_to_max_batch_size(
    stoppers: list[MicroBatcher], metrics: ServiceMetrics
) -> None:
    """Items that queue while the worker is busy run together, never more than max_batch_size at once."""
    run = Recorder()
    run.gate.clear()
    b = _batcher(run, stoppers, metrics)
    b.start()
    first = b.submit(0, _far())
    assert run.entered.wait(5)
    rest = [b.submit(i, _far()) for i in range(1, 10)]
    assert metrics.registry.get_sample_value("ofa_ve_queue_depth") == 9
    run.gate.set()
    for f in [first, *rest]:
        f.result(5)
    assert run.sizes == [1, 4, 4, 1]
    assert metrics.registry.get_sample_value("ofa_ve_batch_size_count") == 4
    assert metrics.registry.get_sample_value("ofa_ve_batch_size_sum") == 10


def test_max_wait_lets_a_batch_fill(stoppers: list[MicroBatcher]) -> None:
    """With a wait window, items submitted together share one forward pass."""
    run = Recorder()
    b = _batcher(run, stoppers, max_wait_s=0.5)
    futures = [b.submit(i, _far()) for i in range(3)]
    b.start()
    for f in futures:
        f.result(5)
    assert run.sizes == [3]


def test_full_queue_refuses_at_once(stoppers: list[MicroBatcher]) -> None:
    """When capacity items are waiting, submit raises QueueFullError instead of blocking."""
    b = _batcher(Recorder(), stoppers, capacity=2)  # not started: nothing drains
    b.submit(1, _far())
    b.submit(2, _far())
    assert b.free_slots() == 0
    with pytest.raises(QueueFullError):
        b.submit(3, _far())


def test_expired_items_are_not_run(stoppers: list[MicroBatcher]) -> None:
    """An item whose deadline passed while queued fails with DeadlineExceededError and skips the model."""
    run = Recorder()
    b = _batcher(run, stoppers)
    expired = b.submit(1, time.monotonic() - 1)
    live = b.submit(2, _far())
    b.start()
    with pytest.raises(DeadlineExceededError):
        expired.result(5)
    assert live.result(5).value == 4
    assert run.sizes == [1]


def test_cancelled_items_are_skipped(stoppers: list[MicroBatcher]) -> None:
    """A future the caller cancelled is dropped without running."""
    run = Recorder()
    b = _batcher(run, stoppers)
    gone = b.submit(1, _far())
    assert gone.cancel()
    kept = b.submit(2, _far())
    b.start()
    assert kept.result(5).value == 4
    assert run.sizes == [1]


def test_model_failure_fails_the_batch_not_the_worker(stoppers: list[MicroBatcher]) -> None:
    """An exception in run_batch becomes InferenceError on each item, and the worker keeps serving."""
    calls = {"n": 0}

    def flaky(payloads: Sequence[Any], info: BatchInfo) -> list[Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("boom")
        return list(payloads)

    b = _batcher(flaky, stoppers)
    b.start()
    with pytest.raises(InferenceError) as failed:
        b.submit(1, _far()).result(5)
    assert failed.value.cause == "KeyError"
    assert b.submit(7, _far()).result(5).value == 7


def test_a_named_failure_reaches_every_item_unchanged(stoppers: list[MicroBatcher]) -> None:
    """A ServiceError raised by run_batch (a device fault) is what each item of the batch gets."""

    def faulty(payloads: Sequence[Any], info: BatchInfo) -> list[Any]:
        raise DeviceFaultError("accelerator fault: AcceleratorError", cause="AcceleratorError")

    b = _batcher(faulty, stoppers, max_wait_s=0.5)
    futures = [b.submit(i, _far()) for i in range(2)]
    b.start()
    for future in futures:
        with pytest.raises(DeviceFaultError):
            future.result(5)


def test_an_exception_in_place_of_a_result_fails_that_item_alone(stoppers: list[MicroBatcher]) -> None:
    """run_batch may return an exception for one item: that item fails, its batch mates succeed."""

    def partial(payloads: Sequence[Any], info: BatchInfo) -> list[Any]:
        return [ClientError("bad", code="corrupt_image") if p == 2 else p for p in payloads]

    b = _batcher(partial, stoppers, max_wait_s=0.5)
    futures = [b.submit(i, _far()) for i in (1, 2, 3)]
    b.start()
    assert futures[0].result(5).value == 1
    with pytest.raises(ClientError):
        futures[1].result(5)
    assert futures[2].result(5).value == 3


def test_batches_are_numbered_and_carry_their_items_contexts(stoppers: list[MicroBatcher]) -> None:
    """Each batch gets the next id, which its items' results carry, and run_batch sees their contexts."""
    run = Recorder()
    b = _batcher(run, stoppers, max_wait_s=0.5)
    first = [b.submit(i, _far(), context=f"ctx-{i}") for i in range(2)]
    b.start()
    assert [f.result(5).batch_id for f in first] == [1, 1]
    assert b.submit(5, _far(), context="ctx-5").result(5).batch_id == 2
    assert [(i.batch_id, i.contexts) for i in run.infos] == [(1, ("ctx-0", "ctx-1")), (2, ("ctx-5",))]


def test_stop_fails_queued_items(stoppers: list[MicroBatcher]) -> None:
    """Stopping fails what is still queued with NotReadyError rather than leaving callers hanging."""
    b = _batcher(Recorder(), stoppers)
    pending = b.submit(1, _far())
    b.stop()
    with pytest.raises(NotReadyError):
        pending.result(1)


def test_queue_time_is_observed(stoppers: list[MicroBatcher], metrics: ServiceMetrics) -> None:
    """Each run item adds one observation to the queue stage histogram."""
    b = _batcher(Recorder(), stoppers, metrics)
    b.start()
    for i in range(3):
        b.submit(i, _far()).result(5)
    assert metrics.registry.get_sample_value("ofa_ve_stage_duration_seconds_count", {"stage": "queue"}) == 3


def test_invalid_configuration_is_refused() -> None:
    """A zero batch size or capacity is a ValueError at construction."""
    with pytest.raises(ValueError, match="max_batch_size"):
        MicroBatcher(list, max_batch_size=0, max_wait_s=0, capacity=1)


def test_no_wait_when_nothing_is_on_its_way(stoppers: list[MicroBatcher]) -> None:
    """With nothing queued and nothing being prepared, a lone item runs at once instead of waiting."""
    run = Recorder()
    b = _batcher(run, stoppers, max_wait_s=30.0, incoming=lambda: 0)
    b.start()
    assert b.submit(1, _far()).result(10).value == 2  # would time out if the worker waited 30 s


def test_waits_while_items_are_on_their_way(stoppers: list[MicroBatcher]) -> None:
    """While another item is being prepared, the worker holds the batch open for it."""
    run = Recorder()
    preparing = {"n": 1}
    b = _batcher(run, stoppers, max_wait_s=30.0, incoming=lambda: preparing["n"])
    b.start()
    first = b.submit(1, _far())
    time.sleep(0.2)
    assert not first.done()
    preparing["n"] = 0
    second = b.submit(2, _far())
    assert (first.result(10).value, second.result(10).value) == (2, 4)
    assert run.sizes == [2]
