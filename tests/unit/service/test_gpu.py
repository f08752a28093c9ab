"""The NVML collector against a fake NVML module."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from ofa_ve.gpu import GpuCollector
from prometheus_client import CollectorRegistry, generate_latest

from tests.support.fake_nvml import NVMLError, make_fake_nvml, make_fake_torch


@pytest.fixture(autouse=True)
def _closed_collectors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every collector a test builds has its NVML thread stopped afterwards."""
    built: list[GpuCollector] = []
    init = GpuCollector.__init__

    def tracking(self: GpuCollector, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        built.append(self)

    monkeypatch.setattr(GpuCollector, "__init__", tracking)
    yield
    for collector in built:
        collector.close()


def _registry(collector: GpuCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_reads_every_gpu_in_base_units() -> None:
    """Memory in bytes, utilisation 0..1, power in W and energy in J, per GPU."""
    nvml = make_fake_nvml(gpu_count=2)
    nvml.gpus[1].utilization_percent = 80
    get = _registry(GpuCollector(nvml=nvml)).get_sample_value
    assert get("ofa_ve_gpu_available") == 1
    for gpu in ("0", "1"):
        assert get("ofa_ve_gpu_memory_used_bytes", {"gpu": gpu}) == 2 * 1024**3
        assert get("ofa_ve_gpu_memory_total_bytes", {"gpu": gpu}) == 24 * 1024**3
        assert get("ofa_ve_gpu_temperature_celsius", {"gpu": gpu}) == 55
        assert get("ofa_ve_gpu_power_watts", {"gpu": gpu}) == 150
        assert get("ofa_ve_gpu_energy_joules_total", {"gpu": gpu}) == 9000
    assert get("ofa_ve_gpu_utilization_ratio", {"gpu": "0"}) == 0.37
    assert get("ofa_ve_gpu_utilization_ratio", {"gpu": "1"}) == 0.8
    assert get("ofa_ve_gpu_info", {"gpu": "1", "name": "NVIDIA A10",
                                   "uuid": "GPU-00000001-0000-0000-0000-000000000000"}) == 1


def test_readings_are_cached_for_the_ttl_then_refreshed() -> None:
    """Within the cache TTL a scrape serves the cached readings; after it, fresh ones."""
    nvml = make_fake_nvml()
    now = [100.0]
    registry = _registry(GpuCollector(nvml=nvml, ttl_s=2.0, clock=lambda: now[0]))
    assert registry.get_sample_value("ofa_ve_gpu_temperature_celsius", {"gpu": "0"}) == 55
    nvml.gpus[0].temperature_c = 81
    now[0] += 1.0
    assert registry.get_sample_value("ofa_ve_gpu_temperature_celsius", {"gpu": "0"}) == 55
    assert registry.get_sample_value("ofa_ve_gpu_sample_age_seconds") == 1.0
    now[0] += 1.5
    assert registry.get_sample_value("ofa_ve_gpu_temperature_celsius", {"gpu": "0"}) == 81


def test_nvml_runs_on_its_own_thread_never_the_scrapers() -> None:
    """Every NVML call happens on the reader's worker thread, not on the thread that scrapes."""
    nvml = make_fake_nvml()
    threads: set[str] = set()
    original = nvml.nvmlDeviceGetMemoryInfo

    def spy(gpu: object) -> object:
        threads.add(threading.current_thread().name)
        return original(gpu)  # type: ignore[arg-type]

    nvml.nvmlDeviceGetMemoryInfo = spy  # type: ignore[method-assign]
    assert _registry(GpuCollector(nvml=nvml, ttl_s=0)).get_sample_value("ofa_ve_gpu_available") == 1
    assert threads == {"nvml-reader"}


def test_a_slow_nvml_call_costs_a_scrape_at_most_the_timeout() -> None:
    """A hung NVML read makes the scrape serve the last readings after timeout_s instead of waiting."""
    nvml = make_fake_nvml()
    release = threading.Event()
    registry = _registry(GpuCollector(nvml=nvml, ttl_s=0, timeout_s=0.2))
    assert registry.get_sample_value("ofa_ve_gpu_memory_used_bytes", {"gpu": "0"}) == 2 * 1024**3
    nvml.nvmlDeviceGetUtilizationRates = lambda gpu: release.wait(10)  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        text = generate_latest(registry).decode()
        took = time.monotonic() - started
    finally:
        release.set()
    assert took < 1.0
    assert 'ofa_ve_gpu_memory_used_bytes{gpu="0"} 2.147483648e+09' in text  # the cached readings


def test_without_nvml_only_available_zero() -> None:
    """No NVML module: ofa_ve_gpu_available 0 and no other GPU series."""
    text = generate_latest(_registry(GpuCollector(nvml=None))).decode()
    assert "ofa_ve_gpu_available 0.0" in text
    assert "ofa_ve_gpu_memory" not in text


def test_library_missing_never_raises() -> None:
    """nvmlInit failing (no driver) is a 0, not a failed scrape."""
    nvml = make_fake_nvml(library_missing=True)
    registry = _registry(GpuCollector(nvml=nvml))
    text = generate_latest(registry).decode()
    assert "ofa_ve_gpu_available 0.0" in text
    assert "ofa_ve_gpu_info" not in text
    assert nvml.init_calls == 1


def test_zero_gpus_is_unavailable() -> None:
    """NVML with no devices reports available 0."""
    registry = _registry(GpuCollector(nvml=make_fake_nvml(gpu_count=0)))
    assert registry.get_sample_value("ofa_ve_gpu_available") == 0


def test_unsupported_query_hides_only_that_metric() -> None:
    """A board without power readings still reports memory and temperature."""
    nvml = make_fake_nvml()
    nvml.gpus[0].unsupported = {"power", "energy"}
    get = _registry(GpuCollector(nvml=nvml)).get_sample_value
    assert get("ofa_ve_gpu_power_watts", {"gpu": "0"}) is None
    assert get("ofa_ve_gpu_energy_joules_total", {"gpu": "0"}) is None
    assert get("ofa_ve_gpu_memory_used_bytes", {"gpu": "0"}) == 2 * 1024**3


def test_nvml_is_initialised_once_and_shut_down_on_close() -> None:
    """Many scrapes share one nvmlInit; close() shuts NVML down once."""
    nvml = make_fake_nvml()
    collector = GpuCollector(nvml=nvml, ttl_s=0)
    registry = _registry(collector)
    for _ in range(3):
        generate_latest(registry)
    assert (nvml.init_calls, nvml.shutdown_calls) == (1, 0)
    collector.close()
    collector.reader._thread.join(5)  # type: ignore[union-attr]
    assert nvml.shutdown_calls == 1


def test_one_failing_gpu_hides_only_itself() -> None:
    """A GPU whose handle cannot be had is left out; the others are still reported."""
    nvml = make_fake_nvml(gpu_count=3)
    original = nvml.nvmlDeviceGetHandleByIndex

    def handle(index: int) -> object:
        if index == 1:
            raise NVMLError("GPU is lost")
        return original(index)

    nvml.nvmlDeviceGetHandleByIndex = handle  # type: ignore[method-assign]
    get = _registry(GpuCollector(nvml=nvml)).get_sample_value
    assert get("ofa_ve_gpu_available") == 1
    assert get("ofa_ve_gpu_memory_used_bytes", {"gpu": "0"}) == 2 * 1024**3
    assert get("ofa_ve_gpu_memory_used_bytes", {"gpu": "1"}) is None
    assert get("ofa_ve_gpu_memory_used_bytes", {"gpu": "2"}) == 2 * 1024**3


def test_temperature_uses_the_versioned_call_when_the_driver_has_it() -> None:
    """nvmlDeviceGetTemperatureV (the deprecated call goes with CUDA 14) is preferred when present."""
    nvml = make_fake_nvml()
    nvml.versioned_temperature = True
    nvml.gpus[0].temperature_c = 64
    get = _registry(GpuCollector(nvml=nvml)).get_sample_value
    assert get("ofa_ve_gpu_temperature_celsius", {"gpu": "0"}) == 64
    assert nvml.temperature_calls == ["V"]


def test_temperature_falls_back_when_the_driver_lacks_the_versioned_call() -> None:
    """Function Not Found from the versioned call (an older driver) falls back to the old call."""
    nvml = make_fake_nvml()
    nvml.versioned_temperature = "missing"
    get = _registry(GpuCollector(nvml=nvml)).get_sample_value
    assert get("ofa_ve_gpu_temperature_celsius", {"gpu": "0"}) == 55
    assert nvml.temperature_calls == ["V", "legacy"]


def test_an_unreadable_temperature_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A temperature that cannot be read is a warning (once per GPU), not a silently missing series."""
    nvml = make_fake_nvml()
    nvml.gpus[0].unsupported = {"temperature"}
    registry = _registry(GpuCollector(nvml=nvml, ttl_s=0))
    with caplog.at_level("WARNING", logger="ofa_ve.gpu"):
        generate_latest(registry)
        generate_latest(registry)
    assert registry.get_sample_value("ofa_ve_gpu_temperature_celsius", {"gpu": "0"}) is None
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("GPU 0 temperature unreadable: temperature not supported") == 1


def test_broken_device_count_does_not_raise() -> None:
    """An exception deep inside NVML still yields a successful scrape with available 0."""
    nvml = make_fake_nvml()

    def broken() -> int:
        raise RuntimeError("driver went away")

    nvml.nvmlDeviceGetCount = broken  # type: ignore[method-assign]
    assert _registry(GpuCollector(nvml=nvml)).get_sample_value("ofa_ve_gpu_available") == 0


def test_torch_allocator_bytes_per_device_labelled_with_the_nvml_uuid() -> None:
    """torch's allocated and reserved bytes are exported per CUDA device, with the card's UUID in NVML's
    spelling, so they join ofa_ve_gpu_info whatever order CUDA numbers the devices in."""
    torch = make_fake_torch(2, 100, 300)
    get = _registry(GpuCollector(nvml=None, torch_module=torch)).get_sample_value
    uuid1 = "GPU-" + str(torch.cuda.get_device_properties(1).uuid)
    assert get("ofa_ve_torch_memory_allocated_bytes", {"device": "cuda:1", "uuid": uuid1}) == 100
    uuid0 = "GPU-" + str(torch.cuda.get_device_properties(0).uuid)
    assert get("ofa_ve_torch_memory_reserved_bytes", {"device": "cuda:0", "uuid": uuid0}) == 300


def test_torch_without_cuda_exports_nothing() -> None:
    """CPU-only torch adds no torch memory series."""
    text = generate_latest(_registry(GpuCollector(nvml=None, torch_module=make_fake_torch(0)))).decode()
    assert "ofa_ve_torch_memory" not in text
