"""Model loading: the retry schedule, and the engine retrying a failed load with backoff until ready."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator
from itertools import islice
from typing import Any

import pytest
from ofa_ve.engine import Engine, describe_error
from ofa_ve.loading import (
    LOAD_RETRY_INITIAL_S,
    LOAD_RETRY_MAX_S,
    LOAD_RETRY_MULTIPLIER,
    MODEL_STATES,
    load_retry_delay,
    load_retry_delays,
)
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.settings import Settings
from prometheus_client import CollectorRegistry

from tests.unit.service.conftest import FakeModel

# Fast schedule for the engine tests: 10 ms, 20 ms, then 40 ms for every further failure.
FAST = {"load_retry_initial_s": 0.01, "load_retry_max_s": 0.04}


def test_delays_double_then_stay_at_the_cap() -> None:
    """The defaults wait 10, 20, 40, 80, 160 s, then 300 s for ever."""
    assert list(islice(load_retry_delays(), 8)) == [10, 20, 40, 80, 160, 300, 300, 300]
    assert [load_retry_delay(n) for n in (1, 2, 6, 7)] == [10, 20, 300, 300]


def test_delay_other_multipliers_and_cap() -> None:
    """A multiplier of 3 triples, 1 keeps the start delay, and the cap holds even when not a step."""
    assert list(islice(load_retry_delays(1, 50, 3), 5)) == [1, 3, 9, 27, 50]
    assert list(islice(load_retry_delays(5, 60, 1), 3)) == [5, 5, 5]


def test_delay_after_very_many_failures_is_the_cap() -> None:
    """Weeks of retries do not overflow: the millionth failure still waits max_s."""
    assert load_retry_delay(1_000_000, 10, 300) == 300


def test_settings_defaults_are_the_schedule_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's default settings produce the same schedule the rule tests get from the defaults."""
    for key in ("OFA_VE_LOAD_RETRY_INITIAL_S", "OFA_VE_LOAD_RETRY_MAX_S", "OFA_VE_LOAD_RETRY_MULTIPLIER"):
        monkeypatch.delenv(key, raising=False)
    s = Settings()
    assert (s.load_retry_initial_s, s.load_retry_max_s, s.load_retry_multiplier) == (
        LOAD_RETRY_INITIAL_S, LOAD_RETRY_MAX_S, LOAD_RETRY_MULTIPLIER
    ) == (10, 300, 2)


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, 10, 300, 2), "failures"), ((1, 0, 300, 2), "initial_s"), ((1, 10, 5, 2), "max_s"),
     ((1, 10, 300, 0.5), "multiplier")],
)
def test_bad_schedule_arguments_fail_at_once(args: tuple[float, ...], match: str) -> None:
    """Impossible schedules raise ValueError, from the generator too before anything is drawn."""
    with pytest.raises(ValueError, match=match):
        load_retry_delay(*args)
    if match != "failures":
        with pytest.raises(ValueError, match=match):
            load_retry_delays(*args[1:])


def test_describe_error_names_the_class_and_is_bounded() -> None:
    """The error text is `Class: message`, just the class without a message, and never over the limit."""
    assert describe_error(FileNotFoundError("no /models/x")) == "FileNotFoundError: no /models/x"
    assert describe_error(TimeoutError()) == "TimeoutError"
    long = describe_error(RuntimeError("x" * 5000), limit=100)
    assert len(long) == 100 and long.startswith("RuntimeError: xxx") and long.endswith("…")


def _snapshot(registry: CollectorRegistry) -> dict[str, Any]:
    states = {s: registry.get_sample_value("ofa_ve_model_state", {"state": s}) for s in MODEL_STATES}
    return {
        "states": states,
        "state": next((s for s, v in states.items() if v == 1), None),
        "failures": registry.get_sample_value("ofa_ve_model_load_failures_total"),
        "ready": registry.get_sample_value("ofa_ve_model_ready"),
    }


class Timeline(logging.Handler):
    """Records the metrics at each factory call and each `model load failed` log line, in order."""

    def __init__(self, registry: CollectorRegistry, fail_times: int) -> None:
        super().__init__(logging.DEBUG)
        self.registry = registry
        self.fail_times = fail_times
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.calls: list[float] = []
        self.failed_records: list[logging.LogRecord] = []

    def factory(self, _settings: Settings) -> FakeModel:
        """Fails `fail_times` times (model volume missing), then returns a working model."""
        self.calls.append(time.monotonic())
        self.events.append(("call", _snapshot(self.registry)))
        if len(self.calls) <= self.fail_times:
            raise FileNotFoundError(f"model directory /models/x does not exist (try {len(self.calls)})")
        return FakeModel()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "model load failed":
            self.failed_records.append(record)
            self.events.append(("failed", _snapshot(self.registry)))


@pytest.fixture
def timeline(registry: CollectorRegistry) -> Iterator[Timeline]:
    """A Timeline failing 3 times, attached to the engine's logger for the test."""
    handler = Timeline(registry, fail_times=3)
    logger = logging.getLogger("ofa_ve.engine")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _engine(registry: CollectorRegistry, factory: Any, **overrides: Any) -> Engine:
    settings = Settings(model="fake/model", **{**FAST, **overrides})
    return Engine(settings, ServiceMetrics(registry, process_collectors=False), model_factory=factory)


def _wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_failed_loads_are_retried_with_backoff_until_ready(
    registry: CollectorRegistry, timeline: Timeline
) -> None:
    """A model failing 3 times loads on the 4th attempt after waits of 10, 20 and 40 ms; the state gauge
    goes loading, failed, loading, ... ready and the failure counter ends at 3."""
    engine = _engine(registry, timeline.factory)
    engine.start()
    try:
        _wait_for(lambda: engine.ready)
    finally:
        engine.stop()
    assert [(kind, e["state"], e["failures"]) for kind, e in timeline.events] == [
        ("call", "loading", 0), ("failed", "failed", 1),
        ("call", "loading", 1), ("failed", "failed", 2),
        ("call", "loading", 2), ("failed", "failed", 3),
        ("call", "loading", 3),
    ]
    for _, e in timeline.events:
        assert sorted(e["states"].values()) == [0, 0, 0, 1]  # one-hot at every step
        assert e["ready"] == 0
    assert [r.retry_in_s for r in timeline.failed_records] == [0.01, 0.02, 0.04]
    gaps = [b - a for a, b in zip(timeline.calls, timeline.calls[1:], strict=False)]
    assert all(gap >= want * 0.95 for gap, want in zip(gaps, [0.01, 0.02, 0.04], strict=True)), gaps
    final = _snapshot(registry)
    assert (final["state"], final["failures"], final["ready"]) == ("ready", 3, 1)
    assert engine.status().failed_attempts == 0 and engine.status().error is None


def test_each_failure_logs_one_line_with_class_and_message(
    registry: CollectorRegistry, timeline: Timeline
) -> None:
    """Every failed attempt logs once with error class, message, attempt and wait; the stack only when the
    error changed."""
    engine = _engine(registry, timeline.factory)
    engine.start()
    try:
        _wait_for(lambda: engine.ready)
    finally:
        engine.stop()
    records = timeline.failed_records
    assert [r.attempt for r in records] == [1, 2, 3]
    assert {r.error_type for r in records} == {"FileNotFoundError"}
    assert records[1].error == "FileNotFoundError: model directory /models/x does not exist (try 2)"
    assert all(r.levelno == logging.ERROR for r in records)
    # The messages differ per try here, so each carries its traceback.
    assert all(r.exc_info is not None for r in records)


def test_repeated_identical_error_logs_the_stack_once(registry: CollectorRegistry) -> None:
    """When the same error repeats, only the first failure's log line carries the traceback."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "model load failed":
                records.append(record)

    def broken(_settings: Settings) -> FakeModel:
        raise OSError("GPU busy")

    handler = Collect()
    logging.getLogger("ofa_ve.engine").addHandler(handler)
    engine = _engine(registry, broken)
    try:
        engine.start()
        _wait_for(lambda: len(records) >= 3)
    finally:
        engine.stop()
        logging.getLogger("ofa_ve.engine").removeHandler(handler)
    assert records[0].exc_info is not None
    assert [r.exc_info for r in records[1:3]] == [None, None]


def test_stop_during_backoff_ends_the_loader_at_once(registry: CollectorRegistry) -> None:
    """With a 60 s retry pending, stop() ends the loader thread within a second and no retry is made."""
    calls: list[int] = []

    def broken(_settings: Settings) -> FakeModel:
        calls.append(1)
        raise OSError("GPU busy")

    engine = _engine(registry, broken, load_retry_initial_s=60, load_retry_max_s=60)
    engine.start()
    assert engine.wait_loaded(10) is False
    assert engine.status().state == "failed"
    started = time.monotonic()
    engine.stop()
    assert engine._loader is not None
    engine._loader.join(5)
    assert not engine._loader.is_alive()
    assert time.monotonic() - started < 1.0
    assert len(calls) == 1


def test_stop_during_an_attempt_never_starts_the_worker(registry: CollectorRegistry) -> None:
    """A load that succeeds after stop() leaves the engine not ready, with no batching worker."""
    entered, gate = threading.Event(), threading.Event()

    def slow(_settings: Settings) -> FakeModel:
        entered.set()
        gate.wait(10)
        return FakeModel()

    engine = _engine(registry, slow, warmup=False)
    engine.start()
    assert entered.wait(10)
    engine.stop()
    gate.set()
    assert engine._loader is not None
    engine._loader.join(5)
    assert not engine._loader.is_alive()
    assert not engine.ready
    assert engine._batcher is None
    assert registry.get_sample_value("ofa_ve_model_ready") == 0


def test_status_while_failed_counts_down_to_the_retry(registry: CollectorRegistry) -> None:
    """While failed, status() gives the error, the attempts and a retry time that shrinks towards 0."""
    def broken(_settings: Settings) -> FakeModel:
        raise OSError("GPU busy")

    engine = _engine(registry, broken, load_retry_initial_s=30, load_retry_max_s=60)
    engine.start()
    try:
        assert engine.wait_loaded(10) is False
        first = engine.status()
        time.sleep(0.05)
        second = engine.status()
    finally:
        engine.stop()
    assert (first.state, first.error, first.failed_attempts) == ("failed", "OSError: GPU busy", 1)
    assert first.retry_in_s is not None and second.retry_in_s is not None
    assert 29 < second.retry_in_s < first.retry_in_s <= 30


def test_the_heap_is_frozen_once_the_model_is_ready(make_client: Any, heap_freezes: list[int]) -> None:
    """With gc_freeze on (the default), the engine freezes the heap once the model is loaded."""
    make_client()
    assert heap_freezes == [1]


def test_the_heap_is_left_alone_when_asked(make_client: Any, heap_freezes: list[int]) -> None:
    """OFA_VE_GC_FREEZE=false keeps the collector's default behaviour."""
    make_client(gc_freeze=False)
    assert heap_freezes == []


def test_freeze_heap_exempts_what_is_alive_from_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    """freeze_heap moves the live objects to the permanent generation (undone here for the test process)."""
    monkeypatch.undo()  # the autouse stand-in
    from ofa_ve.engine import freeze_heap

    try:
        assert freeze_heap() > 1000
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
