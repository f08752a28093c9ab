"""GPU metrics read through NVML (and torch's allocator) at scrape time.

A custom collector: fresh metric families are built inside every `collect()` and nothing is kept
between scrapes. Without NVML or a GPU it exports only `ofa_ve_gpu_available 0`; no NVML failure
ever escapes a scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class GpuCollector(Collector):
    """Per-GPU memory, utilisation, temperature, power, energy; torch allocator bytes per device."""

    def __init__(self, nvml: ModuleType | Any | None, torch_module: ModuleType | Any | None = None) -> None:
        self._nvml = nvml
        self._torch = torch_module

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from calling collect() (and NVML) at start-up.
        return []

    def collect(self) -> Iterator[Metric]:
        available = GaugeMetricFamily(
            "ofa_ve_gpu_available", "1 when NVML answers and reports at least one GPU, else 0."
        )
        families: list[Metric] = []
        try:
            families = self._nvml_families()
        except Exception as exc:  # a scrape must never fail because of the GPU driver
            log.debug("NVML unavailable: %s", exc)
            families = []
        available.add_metric([], 1.0 if families else 0.0)
        yield available
        yield from families
        yield from self._torch_families()

    def _nvml_families(self) -> list[Metric]:
        nvml = self._nvml
        if nvml is None:
            return []
        nvml.nvmlInit()
        try:
            count = nvml.nvmlDeviceGetCount()
            if count < 1:
                return []
            gpu_l = ["gpu"]
            info = GaugeMetricFamily(
                "ofa_ve_gpu_info", "GPU identity (value 1).", labels=["gpu", "name", "uuid"]
            )
            used = GaugeMetricFamily("ofa_ve_gpu_memory_used_bytes", "GPU memory in use.", labels=gpu_l)
            total = GaugeMetricFamily("ofa_ve_gpu_memory_total_bytes", "GPU memory installed.", labels=gpu_l)
            util = GaugeMetricFamily(
                "ofa_ve_gpu_utilization_ratio", "Fraction of the last sample period the GPU was busy (0..1).",
                labels=["gpu"],
            )
            temp = GaugeMetricFamily("ofa_ve_gpu_temperature_celsius", "GPU core temperature.", labels=gpu_l)
            power = GaugeMetricFamily("ofa_ve_gpu_power_watts", "GPU power draw.", labels=["gpu"])
            energy = CounterMetricFamily(
                "ofa_ve_gpu_energy_joules", "Energy used by the GPU since the driver loaded.", labels=["gpu"]
            )
            for index in range(count):
                gpu = str(index)
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                info.add_metric(
                    [gpu, _text(self._read(nvml.nvmlDeviceGetName, handle, "?")),
                     _text(self._read(nvml.nvmlDeviceGetUUID, handle, "?"))],
                    1.0,
                )
                mem = self._read(nvml.nvmlDeviceGetMemoryInfo, handle)
                if mem is not None:
                    used.add_metric([gpu], float(mem.used))
                    total.add_metric([gpu], float(mem.total))
                rates = self._read(nvml.nvmlDeviceGetUtilizationRates, handle)
                if rates is not None:
                    util.add_metric([gpu], rates.gpu / 100.0)
                celsius = self._read(nvml.nvmlDeviceGetTemperature, handle, None, nvml.NVML_TEMPERATURE_GPU)
                if celsius is not None:
                    temp.add_metric([gpu], float(celsius))
                milliwatts = self._read(nvml.nvmlDeviceGetPowerUsage, handle)
                if milliwatts is not None:
                    power.add_metric([gpu], milliwatts / 1000.0)
                millijoules = self._read(nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
                if millijoules is not None:
                    energy.add_metric([gpu], millijoules / 1000.0)
            return [info, used, total, util, temp, power, energy]
        finally:
            try:
                nvml.nvmlShutdown()
            except Exception as exc:  # shutting down is best effort
                log.debug("nvmlShutdown failed: %s", exc)

    @staticmethod
    def _read(func: Any, handle: Any, default: Any = None, *args: Any) -> Any:
        # One unsupported query (e.g. power on some boards) must not hide the others.
        try:
            return func(handle, *args)
        except Exception:
            return default

    def _torch_families(self) -> Iterator[Metric]:
        torch = self._torch
        if torch is None:
            return
        try:
            if not torch.cuda.is_available():
                return
            allocated = GaugeMetricFamily(
                "ofa_ve_torch_memory_allocated_bytes", "Memory held by live torch tensors.", labels=["device"]
            )
            reserved = GaugeMetricFamily(
                "ofa_ve_torch_memory_reserved_bytes", "Memory reserved by torch's caching allocator.",
                labels=["device"],
            )
            for index in range(torch.cuda.device_count()):
                device = f"cuda:{index}"
                allocated.add_metric([device], float(torch.cuda.memory_allocated(index)))
                reserved.add_metric([device], float(torch.cuda.memory_reserved(index)))
        except Exception as exc:
            log.debug("torch CUDA memory unavailable: %s", exc)
            return
        yield allocated
        yield reserved


def load_nvml() -> ModuleType | None:
    """The real `pynvml` module from nvidia-ml-py, or None when it is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml
