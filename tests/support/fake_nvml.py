"""Stand-ins for `pynvml` (nvidia-ml-py) and `torch.cuda`, to test the GPU collector without a GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


class NVMLError(Exception):
    """Base error, like pynvml.NVMLError (whose `value` is NVML's return code)."""

    def __init__(self, message: str = "", value: int = 999) -> None:
        super().__init__(message)
        self.value = value


NVML_ERROR_FUNCTION_NOT_FOUND = 13


class NVMLError_LibraryNotFound(NVMLError):
    """Raised by nvmlInit on a machine without the NVIDIA driver."""


class NVMLError_NotSupported(NVMLError):
    """Raised by queries a board does not support."""


@dataclass
class FakeGpu:
    """Readings of one fake GPU, in NVML's own units (bytes, percent, C, mW, mJ)."""

    name: str = "NVIDIA A10"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_used: int = 2 * 1024**3
    memory_total: int = 24 * 1024**3
    utilization_percent: int = 37
    temperature_c: int = 55
    power_mw: int = 150_000
    energy_mj: int = 9_000_000
    unsupported: set[str] = field(default_factory=set)


class FakeNvml:
    """Module-like object exposing the pynvml functions GpuCollector calls."""

    NVML_TEMPERATURE_GPU = 0
    NVMLError = NVMLError

    def __init__(self, gpus: list[FakeGpu], *, library_missing: bool = False) -> None:
        self.gpus = gpus
        self.library_missing = library_missing
        self.init_calls = 0
        self.shutdown_calls = 0
        # nvmlDeviceGetTemperatureV: False = the module has no such function (older nvidia-ml-py),
        # True = it works, "missing" = the module has it but the driver does not (Function Not Found).
        self.versioned_temperature: bool | str = False
        self.temperature_calls: list[str] = []

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.library_missing:
            raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    @staticmethod
    def _check(gpu: FakeGpu, what: str) -> None:
        if what in gpu.unsupported:
            raise NVMLError_NotSupported(f"{what} not supported")

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> Any:
        self._check(gpu, "memory")
        free = gpu.memory_total - gpu.memory_used
        return SimpleNamespace(used=gpu.memory_used, total=gpu.memory_total, free=free)

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> Any:
        self._check(gpu, "utilization")
        return SimpleNamespace(gpu=gpu.utilization_percent, memory=10)

    def nvmlDeviceGetTemperature(self, gpu: FakeGpu, sensor: int) -> int:
        self.temperature_calls.append("legacy")
        self._check(gpu, "temperature")
        return gpu.temperature_c

    @property
    def nvmlDeviceGetTemperatureV(self) -> Any:
        if self.versioned_temperature is False:
            raise AttributeError("nvmlDeviceGetTemperatureV")

        def versioned(gpu: FakeGpu, sensor: int) -> int:
            self.temperature_calls.append("V")
            if self.versioned_temperature == "missing":
                raise NVMLError("Function Not Found", NVML_ERROR_FUNCTION_NOT_FOUND)
            self._check(gpu, "temperature")
            return gpu.temperature_c

        return versioned

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        self._check(gpu, "power")
        return gpu.power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        self._check(gpu, "energy")
        return gpu.energy_mj


def make_fake_nvml(gpu_count: int = 1, *, library_missing: bool = False) -> FakeNvml:
    """A fake NVML with `gpu_count` GPUs numbered in their uuid."""
    gpus = [FakeGpu(uuid=f"GPU-{i:08d}-0000-0000-0000-000000000000") for i in range(gpu_count)]
    return FakeNvml(gpus, library_missing=library_missing)


class _FakeCuda:
    def __init__(self, device_count: int, allocated: int, reserved: int) -> None:
        self._count = device_count
        self._allocated = allocated
        self._reserved = reserved

    def is_available(self) -> bool:
        return self._count > 0

    def device_count(self) -> int:
        return self._count

    def memory_allocated(self, index: int) -> int:
        return self._allocated

    def memory_reserved(self, index: int) -> int:
        return self._reserved

    def get_device_properties(self, index: int) -> Any:
        # torch's uuid prints without NVML's "GPU-" prefix.
        return SimpleNamespace(uuid=f"{index:08d}-1111-2222-3333-444444444444")


def make_fake_torch(device_count: int = 1, allocated: int = 512 * 1024**2, reserved: int = 1024**3) -> Any:
    """Module-like object with the `torch.cuda` calls GpuCollector makes."""
    return SimpleNamespace(cuda=_FakeCuda(device_count, allocated, reserved))
