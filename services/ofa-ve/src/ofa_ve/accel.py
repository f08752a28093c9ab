"""What the service needs from torch about the accelerator: failure kinds, memory, precision, identity.

Plain functions over a `torch` module passed in (a fake one in unit tests), and nothing else of the
service: bench/gpu_check.py imports this on a bare torch install (no ModelScope, no pydantic) to check
the same code on a real GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

log = logging.getLogger(__name__)

# cudaErrorMemoryAllocation: a kernel launch or cuBLAS/cuDNN workspace that could not get memory. torch
# raises it as an AcceleratorError (not its allocator's OutOfMemoryError), but it is an OOM like the other.
CUDA_ERROR_MEMORY_ALLOCATION = 2
# Messages of older torch versions (before AcceleratorError) for errors that poison the CUDA context:
# after one of these every later kernel fails too, until the process exits.
_STICKY_MESSAGES = (
    "illegal memory access",
    "unspecified launch failure",
    "device-side assert",
    "uncorrectable ecc",
    "misaligned address",
    "illegal instruction",
    "launch timed out",
    "cublas_status_execution_failed",
)

Failure = Literal["oom", "fault", "other"]
MatmulPrecision = Literal["highest", "high", "medium"]
# torch's new per-backend API (2.9+) spells the legacy precision names this way.
_NEW_API_PRECISION = {"highest": "ieee", "high": "tf32", "medium": "tf32"}


def classify_failure(exc: BaseException, torch: Any) -> Failure:
    """`oom` for any out-of-memory, `fault` for an accelerator error that leaves the device unusable,
    `other` for everything else (a bug, a bad tensor shape)."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return "oom"
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None and isinstance(exc, accelerator_error):
        if getattr(exc, "error_code", None) == CUDA_ERROR_MEMORY_ALLOCATION or "out of memory" in str(exc):
            return "oom"
        return "fault"
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        if text.startswith("cuda error") and "out of memory" in text:
            return "oom"
        if "cuda error" in text and any(m in text for m in _STICKY_MESSAGES):
            return "fault"
    return "other"


def release_cached_memory(torch: Any) -> None:
    """Returns the caching allocator's free blocks to the driver (no-op without an initialised CUDA)."""
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception as exc:  # after a device fault even this may fail; nothing more to do
        log.debug("empty_cache failed: %s", exc)


def configure_matmul_precision(torch: Any, precision: MatmulPrecision) -> str:
    """Lets float32 matmuls (and convolutions) use TF32 tensor cores unless `highest`; returns what is set.

    torch leaves TF32 off for matmuls (cuDNN convolutions have it on). torch 2.9 added a per-backend API
    and refuses to READ the legacy flags once the new one was written ("mix of the legacy and new APIs"),
    so only one of the two is used: the new one where it exists.
    """
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        value = _NEW_API_PRECISION[precision]
        matmul.fp32_precision = value
        torch.backends.cudnn.conv.fp32_precision = value
        return f"cuda.matmul.fp32_precision={value}"
    torch.set_float32_matmul_precision(precision)
    return f"float32_matmul_precision={precision}"


def cast_floating(value: Any, dtype: Any) -> Any:
    """`value` with every floating-point tensor in it (nested dicts, lists, tuples) cast to `dtype`.

    ModelScope's preprocessor makes float32 images; half-precision weights need half inputs.
    """
    if hasattr(value, "is_floating_point") and hasattr(value, "to"):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, Mapping):
        return {key: cast_floating(item, dtype) for key, item in value.items()}
    if isinstance(value, list | tuple):
        cast = [cast_floating(item, dtype) for item in value]
        return cast if isinstance(value, list) else tuple(cast)
    return value


def to_half(module: Any, torch: Any) -> Any:
    """`module.half()`, then hands the float32 copies' memory back: without empty_cache the allocator
    keeps it reserved and the memory gauges show the float32 footprint for the life of the process."""
    module.half()
    release_cached_memory(torch)
    return module


def device_uuids(torch: Any) -> list[str]:
    """NVML-style ids ("GPU-<uuid>") of the CUDA devices torch sees, in torch's order; "" where unknown.

    NVML numbers GPUs in PCI bus order, CUDA (unless CUDA_DEVICE_ORDER=PCI_BUS_ID) fastest first, so an
    index can name two different cards; the UUID cannot.
    """
    uuids: list[str] = []
    for index in range(torch.cuda.device_count()):
        try:
            raw = str(torch.cuda.get_device_properties(index).uuid)
        except Exception:
            raw = ""
        uuids.append(raw if not raw or raw.startswith("GPU-") else f"GPU-{raw}")
    return uuids

