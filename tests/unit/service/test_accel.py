"""The accelerator helpers: failure kinds, TF32 precision, half precision, device identity (CPU torch)."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from ofa_ve import accel

from tests.support.env import ROOT


def _accelerator_error(message: str, code: int | None = None) -> torch.AcceleratorError:
    error = torch.AcceleratorError(message)
    if code is not None:
        error.error_code = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(("exc", "kind"), [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"), "oom"),
    (_accelerator_error("CUDA error: out of memory", accel.CUDA_ERROR_MEMORY_ALLOCATION), "oom"),
    (_accelerator_error("CUDA error: an illegal memory access was encountered", 700), "fault"),
    (_accelerator_error("CUDA error: uncorrectable ECC error encountered", 214), "fault"),
    (RuntimeError("CUDA error: an illegal memory access was encountered"), "fault"),
    (RuntimeError("CUDA error: out of memory"), "oom"),
    (RuntimeError("shape '[2, 3]' is invalid for input of size 5"), "other"),
    (KeyError("decoder_prompts"), "other"),
], ids=["allocator-oom", "launch-oom", "illegal-access", "ecc", "old-torch-illegal-access", "old-torch-oom",
        "bad-shape", "key-error"])
def test_failures_are_classified(exc: BaseException, kind: str) -> None:
    """OOMs (allocator or launch), device faults (new and old torch spellings) and the rest are told apart."""
    assert accel.classify_failure(exc, torch) == kind


def _fake_torch(new_api: bool) -> Any:
    matmul = SimpleNamespace(fp32_precision="none") if new_api else SimpleNamespace()
    conv = SimpleNamespace(fp32_precision="none")
    calls: list[str] = []
    return SimpleNamespace(
        backends=SimpleNamespace(cuda=SimpleNamespace(matmul=matmul), cudnn=SimpleNamespace(conv=conv)),
        set_float32_matmul_precision=calls.append, legacy_calls=calls,
    )


def test_precision_uses_the_new_api_only_where_it_exists() -> None:
    """torch >= 2.9: per-backend fp32_precision = tf32 and the legacy call untouched (mixing them makes
    torch refuse to read either); older torch: set_float32_matmul_precision."""
    new = _fake_torch(new_api=True)
    assert accel.configure_matmul_precision(new, "high") == "cuda.matmul.fp32_precision=tf32"
    backends = new.backends
    assert (backends.cuda.matmul.fp32_precision, backends.cudnn.conv.fp32_precision) == ("tf32", "tf32")
    assert new.legacy_calls == []
    old = _fake_torch(new_api=False)
    assert accel.configure_matmul_precision(old, "high") == "float32_matmul_precision=high"
    assert old.legacy_calls == ["high"]
    highest = _fake_torch(new_api=True)
    accel.configure_matmul_precision(highest, "highest")
    assert highest.backends.cuda.matmul.fp32_precision == "ieee"


def test_precision_on_the_real_torch_turns_tf32_on() -> None:
    """On the installed torch (in a child process: the setting is global) TF32 ends up enabled for matmuls."""
    code = ("import torch; from ofa_ve.accel import configure_matmul_precision as c; "
            "print(c(torch, 'high')); print(torch.backends.cuda.matmul.fp32_precision)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "services" / "ofa-ve" / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=True).stdout.split()
    assert out[-1] == "tf32"


def test_cast_floating_reaches_into_nested_inputs_and_leaves_the_rest() -> None:
    """Float tensors in dicts, lists and tuples become half; ints, bools and other values stay."""
    batch = {"net_input": {"patch_images": torch.zeros(1, 3, 4, 4), "patch_masks": torch.tensor([True]),
                           "input_ids": torch.tensor([[1, 2]])},
             "prompts": [torch.ones(2)], "pair": (torch.ones(1), "x"), "n": 1}
    cast = accel.cast_floating(batch, torch.float16)
    assert cast["net_input"]["patch_images"].dtype == torch.float16
    assert cast["net_input"]["patch_masks"].dtype == torch.bool
    assert cast["net_input"]["input_ids"].dtype == torch.int64
    assert cast["prompts"][0].dtype == torch.float16
    assert cast["pair"][0].dtype == torch.float16 and cast["pair"][1] == "x"
    assert cast["n"] == 1


def test_half_weights_need_half_inputs() -> None:
    """The reference() bug in miniature: a half module refuses float32 input; cast_floating fixes it."""
    module = torch.nn.Conv2d(3, 2, 1)
    cuda = SimpleNamespace(is_available=lambda: False)
    accel.to_half(module, SimpleNamespace(cuda=cuda))
    image = torch.rand(1, 3, 4, 4)
    with pytest.raises(RuntimeError):
        module(image)
    assert module(accel.cast_floating(image, torch.float16)).dtype == torch.float16


def test_to_half_empties_the_cache_so_reserved_memory_drops() -> None:
    """After .half() the float32 copies' memory goes back to the driver (empty_cache on CUDA)."""
    emptied: list[int] = []
    cuda = SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True,
                           empty_cache=lambda: emptied.append(1))
    module = accel.to_half(torch.nn.Linear(4, 4), SimpleNamespace(cuda=cuda))
    assert next(module.parameters()).dtype == torch.float16
    assert emptied == [1]


def test_device_uuids_are_spelled_like_nvml() -> None:
    """torch's uuid gets NVML's "GPU-" prefix; a device without one gives ""."""

    def props(index: int) -> Any:
        if index == 1:
            raise RuntimeError("no properties")
        return SimpleNamespace(uuid="abcd-1234")

    cuda = SimpleNamespace(device_count=lambda: 2, get_device_properties=props)
    assert accel.device_uuids(SimpleNamespace(cuda=cuda)) == ["GPU-abcd-1234", ""]
