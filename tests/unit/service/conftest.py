"""Fixtures for the service's unit tests: a fake model behind the real engine, batcher and API."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ofa_ve.app import create_app
from ofa_ve.engine import Engine
from ofa_ve.gpu import GpuCollector
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.model import ModelDescription, Prediction
from ofa_ve.settings import Settings
from PIL import Image
from prometheus_client import CollectorRegistry


class FakeModel:
    """Answers YES when the sentence contains 'yes', else NO; `gate` holds every forward pass.

    `fail(batch)` may return an exception for a forward pass to raise (torch's real OutOfMemoryError,
    AcceleratorError, ...); `fail_infer` raises a plain RuntimeError on every pass.
    """

    def __init__(
        self, gate: threading.Event | None = None, fail_infer: bool = False,
        fail: Callable[[list[Any]], BaseException | None] | None = None,
    ) -> None:
        self.description = ModelDescription("fake/model", "local", "cpu", "float32")
        self.gate = gate
        self.fail_infer = fail_infer
        self.fail = fail
        self.batches: list[int] = []
        self.attempts: list[int] = []
        self.entered = threading.Event()

    def prepare(self, image: Image.Image, text: str, premise: str | None) -> Any:
        return (image.size, text, premise)

    def collate(self, samples: Sequence[Any]) -> list[Any]:
        return list(samples)

    def infer(self, batch: list[Any]) -> list[Any]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        self.attempts.append(len(batch))
        if self.fail_infer:
            raise RuntimeError("the model broke")
        failure = self.fail(batch) if self.fail is not None else None
        if failure is not None:
            raise failure
        self.batches.append(len(batch))
        return batch

    def postprocess(self, output: list[Any]) -> list[Prediction]:
        return [Prediction("YES" if "yes" in text else "NO", 0.75) for _, text, _ in output]


def png_bytes(size: tuple[int, int] = (32, 24), fmt: str = "PNG") -> bytes:
    """A small valid image."""
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def heap_freezes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the engine's gc.freeze() calls instead of freezing the test process's heap."""
    calls: list[int] = []
    monkeypatch.setattr("ofa_ve.engine.freeze_heap", lambda: calls.append(1) or 0)
    return calls


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry per test."""
    return CollectorRegistry()


@pytest.fixture
def make_client(registry: CollectorRegistry) -> Iterator[Callable[..., TestClient]]:
    """Factory: a started TestClient over create_app with a fake model; kwargs override Settings,
    `engine_kwargs` / `app_kwargs` go to Engine / create_app."""
    clients: list[TestClient] = []

    def make(model: Any = None, wait: bool = True, factory: Any = None, engine_kwargs: Any = None,
             app_kwargs: Any = None, **overrides: Any) -> TestClient:
        values: dict[str, Any] = {"model": "fake/model", "enable_ui": False, "max_wait_ms": 0, **overrides}
        settings = Settings(**values)
        metrics = ServiceMetrics(registry, exemplar_interval_s=settings.exemplar_interval_s)
        chosen = model if model is not None else FakeModel()
        engine = Engine(settings, metrics, model_factory=factory or (lambda _s: chosen),
                        **(engine_kwargs or {}))
        app = create_app(settings, registry, engine, gpu_collector=GpuCollector(nvml=None),
                         **(app_kwargs or {}))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        if wait:
            engine.wait_loaded(10)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
