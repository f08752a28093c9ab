"""Out-of-memory splits the batch instead of failing it; a device fault takes the replica out for good.

The model double raises torch's real exception classes (OutOfMemoryError, AcceleratorError); the
`torch` the engine sees is the real module with a fake `cuda` that counts empty_cache calls.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from ofa_ve.__main__ import FatalExit
from ofa_ve.batching import BatchInfo
from ofa_ve.engine import Engine
from ofa_ve.errors import GpuOutOfMemoryError
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.settings import Settings
from ofa_ve.splitting import halves, run_splitting
from prometheus_client import CollectorRegistry

from tests.unit.service.conftest import FakeModel, png_bytes

MakeClient = Callable[..., TestClient]
IMAGE = base64.b64encode(png_bytes()).decode()


class FakeCuda:
    """torch.cuda as the engine uses it after an OOM: available, initialised, empty_cache counted."""

    def __init__(self) -> None:
        self.emptied = 0

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def empty_cache(self) -> None:
        self.emptied += 1


def _torch() -> Any:
    return SimpleNamespace(OutOfMemoryError=torch.OutOfMemoryError, AcceleratorError=torch.AcceleratorError,
                           cuda=FakeCuda())


def _oom(size: int) -> torch.OutOfMemoryError:
    return torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {size} GiB")


def _engine(model: FakeModel, fake_torch: Any, **kwargs: Any) -> Engine:
    settings = Settings(model="fake/model", enable_ui=False, warmup=False, max_wait_ms=0)
    metrics = ServiceMetrics(CollectorRegistry(), process_collectors=False)
    engine = Engine(settings, metrics, model_factory=lambda _s: model, torch_module=fake_torch, **kwargs)
    engine.start()
    assert engine.wait_loaded(10)
    return engine


def _samples(texts: Sequence[str]) -> list[Any]:
    return [((8, 8), text, None) for text in texts]


def test_halves_give_the_odd_item_to_the_first() -> None:
    """Splitting 5 gives 3 + 2; splitting 1 leaves nothing to split."""
    assert halves([1, 2, 3, 4, 5]) == ([1, 2, 3], [4, 5])
    assert halves([1]) == ([1], [])


def test_run_splitting_retries_halves_until_they_fit() -> None:
    """A batch of 8 that only fits 2 at a time runs as 2+2+2+2, in order, after 3 OOM levels."""
    sizes: list[int] = []
    released: list[int] = []

    def run(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        if len(items) > 2:
            raise _oom(len(items))
        return [i * 10 for i in items]

    out = run_splitting(run, list(range(8)), is_oom=lambda e: isinstance(e, torch.OutOfMemoryError),
                        release=lambda: released.append(1))
    assert out == [i * 10 for i in range(8)]
    assert sizes == [8, 4, 2, 2, 4, 2, 2]
    assert len(released) == 3  # one per OOM caught


def test_an_item_that_does_not_fit_alone_fails_alone() -> None:
    """Only the item that runs out of memory by itself gets gpu_out_of_memory; the rest succeed."""

    def run(items: Sequence[str]) -> list[str]:
        if "huge" in items:
            raise _oom(len(items))
        return [s.upper() for s in items]

    out = run_splitting(run, ["a", "huge", "b"], is_oom=lambda e: isinstance(e, torch.OutOfMemoryError),
                        release=lambda: None)
    assert out[0] == "A" and out[2] == "B"
    assert isinstance(out[1], GpuOutOfMemoryError)
    assert (out[1].status_code, out[1].code) == (503, "gpu_out_of_memory")


def test_other_exceptions_are_not_retried() -> None:
    """An exception that is not an OOM propagates at once, without splitting."""
    calls: list[int] = []

    def run(items: Sequence[int]) -> list[int]:
        calls.append(len(items))
        raise ValueError("bad shape")

    with pytest.raises(ValueError, match="bad shape"):
        run_splitting(run, [1, 2, 3, 4], is_oom=lambda e: isinstance(e, torch.OutOfMemoryError),
                      release=lambda: None)
    assert calls == [4]


def test_engine_splits_on_torch_oom_counts_it_and_empties_the_cache() -> None:
    """A real torch OutOfMemoryError on a batch of 4 (fits 1) is retried down to single items, with the
    OOMs and splits counted and the CUDA cache emptied after each OOM."""
    model = FakeModel(fail=lambda batch: _oom(len(batch)) if len(batch) > 1 else None)
    fake_torch = _torch()
    engine = _engine(model, fake_torch)
    try:
        results = engine._run_batch(_samples(["yes", "no", "yes", "no"]), BatchInfo(1, (None,) * 4))
    finally:
        engine.stop()
    assert [r.prediction.label for r in results] == ["YES", "NO", "YES", "NO"]
    assert all(r.batch_size == 1 for r in results)
    assert model.attempts == [4, 2, 1, 1, 2, 1, 1]
    get = engine.metrics.registry.get_sample_value
    assert get("ofa_ve_gpu_oom_total") == 3
    assert get("ofa_ve_batch_splits_total") == 3
    assert fake_torch.cuda.emptied == 3


def test_an_oom_through_the_api_is_a_named_503(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """A single item that does not fit in GPU memory is 503 gpu_out_of_memory, not 500 inference_failed."""
    model = FakeModel(fail=lambda batch: _oom(1))
    client = make_client(model=model, warmup=False, engine_kwargs={"torch_module": _torch()})
    r = client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "x"})
    assert (r.status_code, r.json()["error"]["code"]) == (503, "gpu_out_of_memory")
    assert r.headers["retry-after"] == "1"
    assert registry.get_sample_value("ofa_ve_errors_total", {"type": "gpu_out_of_memory", "cause": ""}) == 1
    assert registry.get_sample_value("ofa_ve_gpu_oom_total") == 1
    assert client.get("/readyz").status_code == 200  # an OOM is no reason to take the replica out


def test_a_device_fault_marks_the_replica_failed_and_asks_for_a_restart(
    make_client: MakeClient, registry: CollectorRegistry
) -> None:
    """torch.AcceleratorError (illegal access) turns the replica not ready (model_ready 0, /readyz 503),
    is counted, calls on_device_fault once, and later requests are refused instead of failing on the GPU."""
    faults: list[str] = []
    model = FakeModel(fail=lambda batch: torch.AcceleratorError(
        "CUDA error: an illegal memory access was encountered"))
    client = make_client(model=model, warmup=False,
                         engine_kwargs={"torch_module": _torch(), "on_device_fault": faults.append})
    first = client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "x"})
    assert (first.status_code, first.json()["error"]["code"]) == (503, "device_fault")
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert "AcceleratorError" in ready.json()["error"]
    assert ready.json()["retry_in_s"] is None
    assert registry.get_sample_value("ofa_ve_model_ready") == 0
    assert registry.get_sample_value("ofa_ve_model_state", {"state": "failed"}) == 1
    assert registry.get_sample_value("ofa_ve_device_faults_total") == 1
    assert registry.get_sample_value("ofa_ve_errors_total",
                                     {"type": "device_fault", "cause": "AcceleratorError"}) == 1
    again = client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "x"})
    assert (again.status_code, again.json()["error"]["code"]) == (503, "not_ready")
    assert "device fault" in again.json()["error"]["message"]
    assert len(faults) == 1
    assert model.attempts == [1]  # nothing ran on the broken device after the fault


def test_items_already_queued_at_a_fault_fail_with_device_fault() -> None:
    """After a fault the worker runs nothing more: what was queued fails at once with device_fault."""
    gate = threading.Event()
    model = FakeModel(gate=gate, fail=lambda batch: torch.AcceleratorError(
        "CUDA error: unspecified launch failure"))
    engine = _engine(model, _torch())
    try:
        first = engine.submit(_samples(["a"])[0], time.monotonic() + 30)
        assert model.entered.wait(5)
        queued = engine._batcher.submit(_samples(["b"])[0], time.monotonic() + 30)  # type: ignore[union-attr]
        gate.set()
        for future in (first, queued):
            with pytest.raises(Exception) as failed:
                future.result(5)
            assert getattr(failed.value, "code", None) == "device_fault"
    finally:
        engine.stop()
    assert model.attempts == [1]


def test_a_memory_allocation_accelerator_error_is_an_oom_not_a_fault() -> None:
    """cudaErrorMemoryAllocation reaches Python as AcceleratorError: it is split like any OOM."""

    def fail(batch: list[Any]) -> BaseException | None:
        if len(batch) < 2:
            return None
        error = torch.AcceleratorError("CUDA error: out of memory")
        error.error_code = 2  # type: ignore[attr-defined]
        return error

    engine = _engine(FakeModel(fail=fail), _torch())
    try:
        results = engine._run_batch(_samples(["yes", "no"]), BatchInfo(1, (None, None)))
    finally:
        engine.stop()
    assert [r.prediction.label for r in results] == ["YES", "NO"]
    assert engine.fault is None


def test_fatal_exit_stops_the_server_after_the_delay_once() -> None:
    """The entrypoint's fault handler sets uvicorn's should_exit after the delay, and only arms once."""
    fatal = FatalExit(delay_s=0.05)
    server = SimpleNamespace(should_exit=False)
    fatal.server = server  # type: ignore[assignment]
    fatal("AcceleratorError: illegal memory access")
    fatal("AcceleratorError: again")
    assert fatal.triggered.is_set()
    assert not server.should_exit
    deadline = time.monotonic() + 5
    while not server.should_exit and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.should_exit
