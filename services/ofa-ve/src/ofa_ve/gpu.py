"""GPU metrics through NVML (and torch's allocator), kept off the request path.

NVML is initialised once, on a worker thread of its own, which also makes every reading; a scrape
takes the last readings when they are younger than `ttl_s`, otherwise asks for fresh ones and waits
at most `timeout_s` for them, then serves whatever it has (`ofa_ve_gpu_sample_age_seconds` says how
old). A slow or hung NVML call therefore costs a scrape at most `timeout_s` and never holds the event
loop. Each GPU is read on its own: one that fails (a lost handle, an unsupported query) hides only
itself, and a temperature read that fails is logged once instead of vanishing silently.

Without NVML or a GPU only `ofa_ve_gpu_available 0` is exported; no NVML failure escapes a scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ofa_ve.accel import device_uuids

log = logging.getLogger(__name__)

CACHE_TTL_S = 2.0  # readings younger than this are served as they are
SCRAPE_TIMEOUT_S = 0.5  # longest a scrape waits for fresh readings
INIT_RETRY_S = 60.0  # a failed nvmlInit (no driver) is retried this rarely, not at every scrape
NVML_ERROR_FUNCTION_NOT_FOUND = 13  # pynvml's code when the driver lacks a function (old drivers)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment, in base units; None where the board does not say."""

    index: int
    name: str
    uuid: str
    memory_used: float | None = None
    memory_total: float | None = None
    utilization: float | None = None
    temperature: float | None = None
    power_watts: float | None = None
    energy_joules: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """Readings of every GPU that answered, taken at `taken` (time.monotonic())."""

    taken: float
    gpus: tuple[GpuReading, ...] = ()
    failed_gpus: tuple[int, ...] = field(default_factory=tuple)


def _call(func: Any, *args: Any) -> Any:
    # One unsupported query (power on some boards) must not hide the others.
    try:
        return func(*args)
    except Exception:
        return None


class NvmlReader:
    """Owns NVML: one init, one worker thread for every call, a short cache."""

    def __init__(
        self, nvml: ModuleType | Any | None, *, ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nvml = nvml
        self.ttl_s = ttl_s
        self._clock = clock
        self._cond = threading.Condition()
        self._snapshot: Snapshot | None = None
        self._requested = False
        self._closed = False
        self._initialised = False
        self._init_failed_at: float | None = None
        self._temperature_warned: set[int] = set()
        self._thread: threading.Thread | None = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="nvml-reader", daemon=True)
            self._thread.start()

    def snapshot(self, timeout_s: float = SCRAPE_TIMEOUT_S) -> Snapshot | None:
        """Readings no older than `ttl_s` if they come within `timeout_s`, else the latest there are."""
        if self._nvml is None:
            return None
        with self._cond:
            current = self._snapshot
            if current is not None and self._clock() - current.taken < self.ttl_s:
                return current
            self._requested = True
            self._ensure_thread()
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._snapshot is not current or self._closed, timeout_s)
            return self._snapshot

    def close(self) -> None:
        """Stops the worker, which shuts NVML down."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._requested or self._closed)
                if self._closed:
                    break
                self._requested = False
            snapshot = self._read()
            with self._cond:
                self._snapshot = snapshot
                self._cond.notify_all()
        if self._initialised:
            try:
                self._nvml.nvmlShutdown()
            except Exception as exc:  # shutting down is best effort
                log.debug("nvmlShutdown failed: %s", exc)

    def _init(self) -> bool:
        if self._initialised:
            return True
        now = self._clock()
        if self._init_failed_at is not None and now - self._init_failed_at < INIT_RETRY_S:
            return False
        try:
            self._nvml.nvmlInit()
        except Exception as exc:
            self._init_failed_at = now
            log.debug("NVML unavailable: %s", exc)
            return False
        self._initialised = True
        return True

    def _read(self) -> Snapshot:
        taken = self._clock()
        if not self._init():
            return Snapshot(taken)
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:  # the driver went away: start over at the next scrape
            log.warning("NVML device count failed: %s", exc)
            return Snapshot(taken)
        gpus: list[GpuReading] = []
        failed: list[int] = []
        for index in range(count):
            try:
                gpus.append(self._read_gpu(index))
            except Exception as exc:
                failed.append(index)
                log.debug("GPU %d unreadable: %s", index, exc)
        return Snapshot(taken, tuple(gpus), tuple(failed))

    def _read_gpu(self, index: int) -> GpuReading:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        mem = _call(nvml.nvmlDeviceGetMemoryInfo, handle)
        rates = _call(nvml.nvmlDeviceGetUtilizationRates, handle)
        milliwatts = _call(nvml.nvmlDeviceGetPowerUsage, handle)
        millijoules = _call(nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
        return GpuReading(
            index=index,
            name=_text(_call(nvml.nvmlDeviceGetName, handle) or "?"),
            uuid=_text(_call(nvml.nvmlDeviceGetUUID, handle) or "?"),
            memory_used=None if mem is None else float(mem.used),
            memory_total=None if mem is None else float(mem.total),
            utilization=None if rates is None else rates.gpu / 100.0,
            temperature=self._temperature(index, handle),
            power_watts=None if milliwatts is None else milliwatts / 1000.0,
            energy_joules=None if millijoules is None else millijoules / 1000.0,
        )

    def _temperature(self, index: int, handle: Any) -> float | None:
        """nvmlDeviceGetTemperatureV where the driver has it (the old call goes with CUDA 14), else the
        old call; a failure is logged once per GPU."""
        nvml = self._nvml
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        error: Exception | None = None
        versioned = getattr(nvml, "nvmlDeviceGetTemperatureV", None)
        if versioned is not None:
            try:
                return float(versioned(handle, sensor))
            except Exception as exc:
                if getattr(exc, "value", None) != NVML_ERROR_FUNCTION_NOT_FOUND:
                    error = exc
        if error is None:
            try:
                return float(nvml.nvmlDeviceGetTemperature(handle, sensor))
            except Exception as exc:
                error = exc
        if index not in self._temperature_warned:
            self._temperature_warned.add(index)
            log.warning("GPU %d temperature unreadable: %s", index, error)
        return None


class GpuCollector(Collector):
    """Per-GPU memory, utilisation, temperature, power, energy; torch allocator bytes per device.

    A custom collector: metric families are built fresh at every collect() from the reader's snapshot.
    """

    def __init__(
        self, nvml: ModuleType | Any | None, torch_module: ModuleType | Any | None = None, *,
        ttl_s: float = CACHE_TTL_S, timeout_s: float = SCRAPE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = NvmlReader(nvml, ttl_s=ttl_s, clock=clock)
        self._torch = torch_module
        self._timeout_s = timeout_s
        self._clock = clock

    def describe(self) -> list[Metric]:
        # Returning nothing keeps registration from calling collect() (and NVML) at start-up.
        return []

    def close(self) -> None:
        self.reader.close()

    def collect(self) -> Iterator[Metric]:
        snapshot: Snapshot | None = None
        try:
            snapshot = self.reader.snapshot(self._timeout_s)
        except Exception as exc:  # a scrape must never fail because of the GPU driver
            log.debug("NVML snapshot failed: %s", exc)
        available = GaugeMetricFamily(
            "ofa_ve_gpu_available", "1 when NVML answers and reports at least one GPU, else 0."
        )
        available.add_metric([], 1.0 if snapshot is not None and snapshot.gpus else 0.0)
        yield available
        if snapshot is not None and snapshot.gpus:
            yield from self._nvml_families(snapshot)
        yield from self._torch_families()

    def _nvml_families(self, snapshot: Snapshot) -> list[Metric]:
        age = GaugeMetricFamily(
            "ofa_ve_gpu_sample_age_seconds", "Age of the GPU readings this scrape serves (cached, read off "
            "the request path; large when NVML is slow or hung)."
        )
        age.add_metric([], max(0.0, self._clock() - snapshot.taken))
        gpu_l = ["gpu"]
        info = GaugeMetricFamily("ofa_ve_gpu_info", "GPU identity (value 1).", labels=["gpu", "name", "uuid"])
        used = GaugeMetricFamily("ofa_ve_gpu_memory_used_bytes", "GPU memory in use.", labels=gpu_l)
        total = GaugeMetricFamily("ofa_ve_gpu_memory_total_bytes", "GPU memory installed.", labels=gpu_l)
        util = GaugeMetricFamily(
            "ofa_ve_gpu_utilization_ratio", "Fraction of the last sample period the GPU was busy (0..1).",
            labels=gpu_l,
        )
        temp = GaugeMetricFamily("ofa_ve_gpu_temperature_celsius", "GPU core temperature.", labels=gpu_l)
        power = GaugeMetricFamily("ofa_ve_gpu_power_watts", "GPU power draw.", labels=gpu_l)
        energy = CounterMetricFamily(
            "ofa_ve_gpu_energy_joules", "Energy used by the GPU since the driver loaded.", labels=gpu_l
        )
        for g in snapshot.gpus:
            gpu = [str(g.index)]
            info.add_metric([str(g.index), g.name, g.uuid], 1.0)
            for family, value in ((used, g.memory_used), (total, g.memory_total), (util, g.utilization),
                                  (temp, g.temperature), (power, g.power_watts), (energy, g.energy_joules)):
                if value is not None:
                    family.add_metric(gpu, value)
        return [age, info, used, total, util, temp, power, energy]

    def _torch_families(self) -> Iterator[Metric]:
        torch = self._torch
        if torch is None:
            return
        try:
            if not torch.cuda.is_available():
                return
            labels = ["device", "uuid"]
            allocated = GaugeMetricFamily(
                "ofa_ve_torch_memory_allocated_bytes", "Memory held by live torch tensors.", labels=labels
            )
            reserved = GaugeMetricFamily(
                "ofa_ve_torch_memory_reserved_bytes", "Memory reserved by torch's caching allocator.",
                labels=labels,
            )
            for index, uuid in enumerate(device_uuids(torch)):
                device = [f"cuda:{index}", uuid]
                allocated.add_metric(device, float(torch.cuda.memory_allocated(index)))
                reserved.add_metric(device, float(torch.cuda.memory_reserved(index)))
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
