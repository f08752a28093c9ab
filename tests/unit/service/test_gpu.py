"""The NVML collector against a fake NVML module."""

from __future__ import annotations

from ofa_ve.gpu import GpuCollector
from prometheus_client import CollectorRegistry, generate_latest

from tests.support.fake_nvml import make_fake_nvml, make_fake_torch


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


def test_values_are_read_at_scrape_time() -> None:
    """A change in NVML shows at the next scrape: nothing is cached."""
    nvml = make_fake_nvml()
    registry = _registry(GpuCollector(nvml=nvml))
    assert registry.get_sample_value("ofa_ve_gpu_temperature_celsius", {"gpu": "0"}) == 55
    nvml.gpus[0].temperature_c = 81
    assert registry.get_sample_value("ofa_ve_gpu_temperature_celsius", {"gpu": "0"}) == 81


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


def test_nvml_is_shut_down_after_each_scrape() -> None:
    """Every nvmlInit of a scrape is paired with nvmlShutdown."""
    nvml = make_fake_nvml()
    registry = _registry(GpuCollector(nvml=nvml))
    generate_latest(registry)
    generate_latest(registry)
    assert nvml.init_calls == nvml.shutdown_calls == 2


def test_broken_device_count_does_not_raise() -> None:
    """An exception deep inside NVML still yields a successful scrape with available 0."""
    nvml = make_fake_nvml()

    def broken() -> int:
        raise RuntimeError("driver went away")

    nvml.nvmlDeviceGetCount = broken  # type: ignore[method-assign]
    assert _registry(GpuCollector(nvml=nvml)).get_sample_value("ofa_ve_gpu_available") == 0
    assert nvml.shutdown_calls == 1


def test_torch_allocator_bytes_per_device() -> None:
    """torch's allocated and reserved bytes are exported per CUDA device."""
    get = _registry(GpuCollector(nvml=None, torch_module=make_fake_torch(2, 100, 300))).get_sample_value
    assert get("ofa_ve_torch_memory_allocated_bytes", {"device": "cuda:1"}) == 100
    assert get("ofa_ve_torch_memory_reserved_bytes", {"device": "cuda:0"}) == 300


def test_torch_without_cuda_exports_nothing() -> None:
    """CPU-only torch adds no torch memory series."""
    text = generate_latest(_registry(GpuCollector(nvml=None, torch_module=make_fake_torch(0)))).decode()
    assert "ofa_ve_torch_memory" not in text
