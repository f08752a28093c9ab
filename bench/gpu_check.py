"""Checks ofa-ve's GPU paths on a real GPU, with plain torch and the service's own torch-only modules.

    PYTHONPATH=services/ofa-ve/src python3 bench/gpu_check.py

Needs Python 3.11+, torch (a CUDA build), numpy, prometheus-client and nvidia-ml-py; not ModelScope,
pydantic or FastAPI (the modules used here, ofa_ve.accel / splitting / batching / gpu / metrics, import
none of them). Without CUDA every GPU check reports SKIP. Runs in well under 3 minutes on one GPU and
never provokes a fault that could wedge the device (no illegal memory access: out-of-memory and an
invalid device ordinal are the only errors it causes, both recoverable).

What it checks (issue 9, item 7 and the GPU side of items 3 and 6):
  env                  torch / CUDA / driver / NVML versions, devices, CUDA_DEVICE_ORDER
  tf32                 accel.configure_matmul_precision turns TF32 on for float32 matmuls (error and speed
                       against IEEE float32), and what reading torch's legacy flags does afterwards
  fp16_decision        an OFA-large-sized transformer in IEEE fp32, TF32 and fp16: latency, memory, argmax
                       agreement with fp32 -> a recommendation for the OFA_VE_FP16 default
  fp16_inputs          half weights refuse float32 images; accel.cast_floating (reference() in fp16) fixes it
  half_memory          reserved memory after .half() alone vs accel.to_half (empty_cache), and the
                       ofa_ve_torch_memory_reserved_bytes gauge
  nvml                 GpuCollector on the real NVML: values, temperature via nvmlDeviceGetTemperatureV,
                       scrape time cold and cached
  uuid                 torch's device UUIDs against NVML's, index order with CUDA_DEVICE_ORDER=PCI_BUS_ID
  oom_split            a real CUDA OOM on a batch of 8 through MicroBatcher + run_splitting: split, retried,
                       every item answered, memory given back; an item too big alone -> gpu_out_of_memory
  accelerator_error    a safe AcceleratorError (invalid device ordinal): its class, error_code, how
                       accel.classify_failure names it, and CUDA still usable afterwards

Prints a table (PASS / FAIL / SKIP / INFO, one line of detail each, then the decisive numbers) and writes
the full results as JSON to $OUT/gpu_check.json ($OUT when set, else bench/results/).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# As the service's entrypoint does, before torch initialises CUDA: cuda:N is then NVML's GPU N.
os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")

import torch
from ofa_ve import accel
from ofa_ve.splitting import run_splitting

TIME_BUDGET_S = 160.0
STARTED = time.monotonic()
Result = tuple[str, str, dict[str, Any]]  # status, one-line summary, details
CHECKS: list[tuple[str, Callable[[], Result]]] = []


def check(name: str) -> Callable[[Callable[[], Result]], Callable[[], Result]]:
    def register(func: Callable[[], Result]) -> Callable[[], Result]:
        CHECKS.append((name, func))
        return func

    return register


def cuda() -> bool:
    return torch.cuda.is_available()


def skip_without_cuda() -> Result | None:
    return None if cuda() else ("SKIP", "no CUDA device", {})


def sync() -> None:
    torch.cuda.synchronize()


def timed_ms(func: Callable[[], Any], repeat: int = 10, warmup: int = 3) -> float:
    """Median milliseconds of `func` on the GPU."""
    for _ in range(warmup):
        func()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        func()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1000


def rel_err(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value.double() - reference).norm() / reference.norm())


def _nvml() -> Any:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _precision_state() -> dict[str, Any]:
    state: dict[str, Any] = {}
    for label, getter in (("cuda.matmul.fp32_precision", lambda: torch.backends.cuda.matmul.fp32_precision),
                          ("cudnn.conv.fp32_precision", lambda: torch.backends.cudnn.conv.fp32_precision),
                          ("legacy matmul.allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32),
                          ("legacy get_float32_matmul_precision", torch.get_float32_matmul_precision)):
        try:
            state[label] = getter()
        except Exception as exc:  # torch >= 2.9 refuses to read legacy flags once the new API was used
            state[label] = f"raises {type(exc).__name__}: {str(exc)[:120]}"
    return state


# ---------------------------------------------------------------- checks
@check("env")
def env() -> Result:
    details: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "cuda_available": cuda(), "CUDA_DEVICE_ORDER": os.environ.get("CUDA_DEVICE_ORDER"),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "NVIDIA_VISIBLE_DEVICES": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
    }
    if cuda():
        details["devices"] = [
            {"index": i, "name": torch.cuda.get_device_name(i),
             "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
             "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
            for i in range(torch.cuda.device_count())
        ]
    nvml = _nvml()
    if nvml is not None:
        try:
            nvml.nvmlInit()
            details["driver"] = nvml.nvmlSystemGetDriverVersion()
            details["nvml_cuda_driver_version"] = nvml.nvmlSystemGetCudaDriverVersion_v2()
            nvml.nvmlShutdown()
        except Exception as exc:
            details["nvml"] = f"{type(exc).__name__}: {exc}"
    names = ", ".join(d["name"] for d in details.get("devices", [])) or "no CUDA device"
    return "INFO", f"torch {torch.__version__}, {names}", details


@check("tf32")
def tf32() -> Result:
    if (skipped := skip_without_cuda()) is not None:
        return skipped
    n = 4096
    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(n, n, device="cuda", generator=gen)
    b = torch.randn(n, n, device="cuda", generator=gen)
    reference = a.double() @ b.double()
    before = _precision_state()
    accel.configure_matmul_precision(torch, "highest")
    err_ieee, ms_ieee = rel_err(a @ b, reference), timed_ms(lambda: a @ b)
    applied = accel.configure_matmul_precision(torch, "high")
    err_tf32, ms_tf32 = rel_err(a @ b, reference), timed_ms(lambda: a @ b)
    after = _precision_state()
    major = torch.cuda.get_device_capability()[0]
    tf32_on = err_tf32 > 20 * err_ieee
    details = {"applied": applied, "state_before": before, "state_after": after,
               "rel_err_ieee": err_ieee, "rel_err_tf32": err_tf32, "ms_ieee": ms_ieee, "ms_tf32": ms_tf32,
               "speedup": ms_ieee / ms_tf32, "tf32_active": tf32_on, "compute_capability_major": major}
    summary = (f"{applied}: matmul {ms_ieee:.2f} -> {ms_tf32:.2f} ms ({ms_ieee / ms_tf32:.1f}x), "
               f"rel err {err_ieee:.1e} -> {err_tf32:.1e}")
    if major < 8:
        return "INFO", summary + " (pre-Ampere: no TF32 tensor cores)", details
    ok = tf32_on and str(after.get("cuda.matmul.fp32_precision", "tf32")) in {"tf32", "high"}
    return ("PASS" if ok else "FAIL"), summary, details


class _Encoder(torch.nn.Module):
    """OFA-large's shape: 1024 wide, 16 heads, 4096 feed-forward; a 3-way head like yes/no/maybe."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(1024, 16, 4096, batch_first=True, dropout=0.0)
        self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = torch.nn.Linear(1024, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


@check("fp16_decision")
def fp16_decision() -> Result:
    if (skipped := skip_without_cuda()) is not None:
        return skipped
    torch.manual_seed(0)
    layers, batch, seq = 12, 8, 950  # 30x30 image patches + ~50 text tokens at 480 px
    model = _Encoder(layers).cuda().eval()
    inputs = [torch.randn(batch, seq, 1024, device="cuda") * 0.5 for _ in range(8)]
    out: dict[str, Any] = {"layers": layers, "batch": batch, "seq": seq}
    logits: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for mode in ("fp32_ieee", "tf32", "fp16"):
            accel.configure_matmul_precision(torch, "highest" if mode == "fp32_ieee" else "high")
            if mode == "fp16":
                accel.to_half(model, torch)
            dtype = torch.float16 if mode == "fp16" else torch.float32
            torch.cuda.reset_peak_memory_stats()
            ms = timed_ms(lambda dtype=dtype: model(inputs[0].to(dtype)), repeat=8)
            logits[mode] = torch.cat([model(x.to(dtype)).float() for x in inputs])
            out[mode] = {"ms_per_batch": ms, "items_per_s": batch / ms * 1000,
                         "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30}
    reference = logits["fp32_ieee"]
    for mode in ("tf32", "fp16"):
        out[mode]["argmax_agreement"] = float((logits[mode].argmax(1) == reference.argmax(1)).float().mean())
        out[mode]["max_abs_logit_diff"] = float((logits[mode] - reference).abs().max())
        out[mode]["speedup_vs_fp32"] = out["fp32_ieee"]["ms_per_batch"] / out[mode]["ms_per_batch"]
    gain = out["tf32"]["ms_per_batch"] / out["fp16"]["ms_per_batch"]
    out["fp16_speedup_over_tf32"] = gain
    agree = out["fp16"]["argmax_agreement"]
    enable = gain >= 1.3 and agree >= 0.995
    out["recommendation"] = (
        f"OFA_VE_FP16 default: {'true' if enable else 'keep false'} "
        f"(fp16 is {gain:.2f}x TF32's speed, argmax agreement with fp32 {agree:.1%}; rule: enable when "
        ">= 1.3x and >= 99.5%; confirm on real images with the real model before changing the default)"
    )
    ms = {mode: out[mode]["ms_per_batch"] for mode in ("fp32_ieee", "tf32", "fp16")}
    summary = (f"ms/batch fp32 {ms['fp32_ieee']:.1f}, tf32 {ms['tf32']:.1f}, fp16 {ms['fp16']:.1f}; "
               f"agreement tf32 {out['tf32']['argmax_agreement']:.1%}, fp16 {agree:.1%}")
    return "INFO", summary, out  # the model's memory goes with this frame; later checks empty the cache


@check("fp16_inputs")
def fp16_inputs() -> Result:
    if (skipped := skip_without_cuda()) is not None:
        return skipped
    layers = (torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 3))
    module = torch.nn.Sequential(*layers)
    accel.to_half(module.cuda(), torch)
    batch = {"net_input": {"patch_images": torch.rand(2, 3, 16, 16, device="cuda"),
                           "patch_masks": torch.tensor([True, True], device="cuda"),
                           "input_ids": torch.tensor([[0, 5, 2]], device="cuda")}}
    try:
        module(batch["net_input"]["patch_images"])
        plain = "no error (unexpected: float32 input into half weights)"
    except RuntimeError as exc:
        plain = f"{type(exc).__name__}: {str(exc)[:100]}"
    cast = accel.cast_floating(batch, torch.float16)
    out = module(cast["net_input"]["patch_images"])
    net_input = cast["net_input"]
    ok = (plain.startswith("RuntimeError") and out.dtype == torch.float16
          and net_input["patch_masks"].dtype == torch.bool and net_input["input_ids"].dtype == torch.int64)
    return ("PASS" if ok else "FAIL"), f"float32 into half weights: {plain[:60]}; cast: {out.dtype}", {
        "without_cast": plain, "with_cast_dtype": str(out.dtype)}


@check("half_memory")
def half_memory() -> Result:
    if (skipped := skip_without_cuda()) is not None:
        return skipped
    from ofa_ve.gpu import GpuCollector
    from prometheus_client import CollectorRegistry

    def build() -> torch.nn.Module:
        return torch.nn.Sequential(*[torch.nn.Linear(4096, 4096) for _ in range(16)]).cuda()  # ~1.07 GB

    accel.release_cached_memory(torch)
    base = torch.cuda.memory_reserved()
    plain = build()
    fp32_reserved = torch.cuda.memory_reserved() - base
    plain.half()
    plain_reserved = torch.cuda.memory_reserved() - base
    del plain
    accel.release_cached_memory(torch)
    base = torch.cuda.memory_reserved()
    fixed = accel.to_half(build(), torch)
    fixed_reserved = torch.cuda.memory_reserved() - base
    registry = CollectorRegistry()
    collector = GpuCollector(nvml=None, torch_module=torch)
    registry.register(collector)
    uuid = accel.device_uuids(torch)[torch.cuda.current_device()]
    gauge = registry.get_sample_value("ofa_ve_torch_memory_reserved_bytes",
                                      {"device": f"cuda:{torch.cuda.current_device()}", "uuid": uuid})
    actual = torch.cuda.memory_reserved()
    collector.close()
    del fixed
    accel.release_cached_memory(torch)
    gib = 2**30
    details = {"fp32_reserved_gib": fp32_reserved / gib, "after_half_only_gib": plain_reserved / gib,
               "after_to_half_gib": fixed_reserved / gib, "gauge_bytes": gauge,
               "memory_reserved_bytes": actual}
    ok = fixed_reserved < 0.75 * plain_reserved and gauge == actual
    return ("PASS" if ok else "FAIL"), (
        f"reserved: fp32 {fp32_reserved / gib:.2f} GiB, .half() alone {plain_reserved / gib:.2f}, "
        f"to_half {fixed_reserved / gib:.2f}; gauge {'matches' if gauge == actual else 'DIFFERS'}"), details


@check("nvml")
def nvml_collector() -> Result:
    nvml = _nvml()
    if nvml is None:
        return "SKIP", "nvidia-ml-py not installed", {}
    from ofa_ve.gpu import GpuCollector
    from prometheus_client import CollectorRegistry, generate_latest

    collector = GpuCollector(nvml=nvml, torch_module=torch if cuda() else None)
    registry = CollectorRegistry()
    registry.register(collector)
    t = time.perf_counter()
    snapshot = collector.reader.snapshot(timeout_s=20.0)  # nvmlInit and the first read, however slow
    first_read_ms = (time.perf_counter() - t) * 1000
    if snapshot is None or not snapshot.gpus:
        collector.close()
        return "SKIP", "NVML finds no GPU (no driver here)", {"first_read_ms": first_read_ms}
    time.sleep(collector.reader.ttl_s + 0.1)  # the cache has expired: the next scrape reads afresh
    t = time.perf_counter()
    text = generate_latest(registry).decode()
    fresh_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    generate_latest(registry)
    cached_ms = (time.perf_counter() - t) * 1000
    get = registry.get_sample_value
    snapshot = collector.reader.snapshot()
    gpus = [] if snapshot is None else [g.__dict__ for g in snapshot.gpus]
    direct: dict[str, Any] = {}
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(0)
        direct["temperature_v"] = nvml.nvmlDeviceGetTemperatureV(handle, nvml.NVML_TEMPERATURE_GPU)
        direct["temperature_legacy"] = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
    except Exception as exc:
        direct["error"] = f"{type(exc).__name__}: {exc}"
    collector.close()
    temps = [g["temperature"] for g in gpus]
    ok = bool(gpus) and all(t is not None for t in temps) and all(g["memory_total"] for g in gpus)
    ok = ok and get("ofa_ve_gpu_available") == 1 and "ofa_ve_gpu_temperature_celsius{" in text
    summary = (f"{len(gpus)} GPU(s), temperatures {temps}; NVML init + first read {first_read_ms:.0f} ms, "
               f"scrape {fresh_ms:.1f} ms with a fresh read / {cached_ms:.2f} ms cached")
    return ("PASS" if ok else "FAIL"), summary, {
        "gpus": gpus, "failed_gpus": [] if snapshot is None else list(snapshot.failed_gpus),
        "first_read_ms": first_read_ms, "scrape_fresh_ms": fresh_ms, "scrape_cached_ms": cached_ms,
        "direct_calls": direct, "sample_age_s": get("ofa_ve_gpu_sample_age_seconds")}


@check("uuid")
def uuid_labels() -> Result:
    if (skipped := skip_without_cuda()) is not None:
        return skipped
    nvml = _nvml()
    if nvml is None:
        return "SKIP", "nvidia-ml-py not installed", {}
    nvml.nvmlInit()
    try:
        by_index = [str(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i)))
                    for i in range(nvml.nvmlDeviceGetCount())]
    finally:
        nvml.nvmlShutdown()
    torch_uuids = accel.device_uuids(torch)
    all_found = all(u in by_index for u in torch_uuids)
    restricted = bool(os.environ.get("CUDA_VISIBLE_DEVICES"))
    same_order = torch_uuids == by_index[: len(torch_uuids)]
    details = {"nvml_by_index": by_index, "torch_by_index": torch_uuids, "same_order": same_order,
               "CUDA_VISIBLE_DEVICES_set": restricted}
    ok = all_found and (same_order or restricted)
    return ("PASS" if ok else "FAIL"), (
        f"torch uuids {'all' if all_found else 'NOT all'} in NVML; cuda:N == NVML N: {same_order}"
        + (" (CUDA_VISIBLE_DEVICES set: join by uuid)" if restricted else "")), details


@check("oom_split")
def oom_split() -> Result:
    if (skipped := skip_without_cuda()) is not None:
        return skipped
    from ofa_ve.batching import BatchInfo, MicroBatcher
    from ofa_ve.errors import GpuOutOfMemoryError
    from ofa_ve.metrics import ServiceMetrics
    from prometheus_client import CollectorRegistry

    accel.release_cached_memory(torch)
    free, _total = torch.cuda.mem_get_info()
    per_item = int(free * 0.3)  # 8 items: 2.4x free (OOM), 4: 1.2x (OOM), 2: 0.6x (fits)
    allocated_before = torch.cuda.memory_allocated()
    sizes: list[int] = []
    metrics = ServiceMetrics(CollectorRegistry(), process_collectors=False)

    def forward(chunk: Any) -> list[int]:
        sizes.append(len(chunk))
        work = torch.empty(per_item * sum(n for n, _ in chunk), dtype=torch.uint8, device="cuda")
        work[:: 1 << 20] = 1  # touch it
        sync()
        del work
        return [n for n, _ in chunk]

    def run_batch(payloads: Any, info: BatchInfo) -> Any:
        return run_splitting(
            forward, list(zip(payloads, info.contexts, strict=True)),
            is_oom=lambda exc: accel.classify_failure(exc, torch) == "oom",
            release=lambda: accel.release_cached_memory(torch),
            on_oom=lambda _n: metrics.gpu_oom.inc(), on_split=lambda _n: metrics.batch_splits.inc(),
        )

    batcher = MicroBatcher(run_batch, max_batch_size=8, max_wait_s=0.5, capacity=16, metrics=metrics)
    deadline = time.monotonic() + 60
    futures = [batcher.submit(1, deadline) for _ in range(8)]
    batcher.start()
    answers = [f.result(60).value for f in futures]
    too_big = batcher.submit(4, deadline)  # 1.2x free memory alone
    try:
        too_big.result(60)
        alone = "answered (unexpected)"
    except GpuOutOfMemoryError as exc:
        alone = f"{exc.code}: {exc.message[:80]}"
    batcher.stop()
    accel.release_cached_memory(torch)
    get = metrics.registry.get_sample_value
    details = {"per_item_gib": per_item / 2**30, "attempt_sizes": sizes, "answers": answers,
               "oom_total": get("ofa_ve_gpu_oom_total"), "splits_total": get("ofa_ve_batch_splits_total"),
               "too_big_alone": alone, "allocated_before": allocated_before,
               "allocated_after": torch.cuda.memory_allocated()}
    ok = (answers == [1] * 8 and sizes[:3] == [8, 4, 2] and alone.startswith("gpu_out_of_memory")
          and torch.cuda.memory_allocated() <= allocated_before)
    summary = (f"batch of 8 ran as {sizes[:8]}, {int(details['oom_total'] or 0)} OOMs, "
               f"{int(details['splits_total'] or 0)} splits, all answered: {answers == [1] * 8}; "
               f"alone: {alone[:40]}")
    return ("PASS" if ok else "FAIL"), summary, details


@check("accelerator_error")
def accelerator_error() -> Result:
    if (skipped := skip_without_cuda()) is not None:
        return skipped
    bogus = torch.cuda.device_count() + 7
    seen: list[dict[str, Any]] = []
    for label, provoke in (("set_device", lambda: torch.cuda.set_device(bogus)),
                           ("empty on cuda:bogus", lambda: torch.empty(1, device=f"cuda:{bogus}"))):
        try:
            provoke()
            seen.append({"call": label, "raised": None})
        except Exception as exc:
            seen.append({"call": label, "raised": type(exc).__name__,
                         "error_code": getattr(exc, "error_code", None),
                         "is_AcceleratorError": isinstance(exc, getattr(torch, "AcceleratorError", ())),
                         "classified": accel.classify_failure(exc, torch), "message": str(exc)[:160]})
    x = torch.ones(64, 64, device="cuda")
    still_works = float((x @ x).sum()) == 64.0 ** 3
    accelerator_errors = [s for s in seen if s.get("is_AcceleratorError")]
    summary = "; ".join(f"{s['call']}: {s.get('raised')} code={s.get('error_code')} -> {s.get('classified')}"
                        for s in seen) + f"; CUDA usable after: {still_works}"
    ok = still_works and all(s["classified"] == "fault" for s in accelerator_errors)
    status = ("PASS" if accelerator_errors else "INFO") if ok else "FAIL"
    return status, summary, {"provoked": seen, "cuda_usable_after": still_works,
                             "note": "an invalid ordinal is not sticky; accel treats every non-OOM "
                                     "AcceleratorError as a fault (the replica restarts)"}


# ---------------------------------------------------------------- run and report
def main() -> int:
    results: dict[str, Any] = {}
    for name, func in CHECKS:
        if time.monotonic() - STARTED > TIME_BUDGET_S:
            results[name] = {"status": "SKIP", "summary": "time budget used up", "details": {}}
            continue
        t = time.perf_counter()
        try:
            status, summary, details = func()
        except Exception as exc:
            status, summary = "FAIL", f"{type(exc).__name__}: {str(exc)[:150]}"
            details = {"traceback": traceback.format_exc()[-3000:]}
        results[name] = {"status": status, "summary": summary, "details": details,
                         "seconds": round(time.perf_counter() - t, 2)}
        print(f"[{status:4}] {name:18} {summary}", flush=True)
    print("\n| check | status | seconds | summary |\n| --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['status']} | {r.get('seconds', 0)} | {r['summary']} |")
    decision = results.get("fp16_decision", {}).get("details", {}).get("recommendation")
    if decision:
        print(f"\nRECOMMENDATION: {decision}")
    failed = [n for n, r in results.items() if r["status"] == "FAIL"]
    print(f"\n{len(failed)} failed: {', '.join(failed) or '-'}; total {time.monotonic() - STARTED:.0f} s")
    out = os.environ.get("OUT")
    out_dir = Path(out) if out else Path(__file__).resolve().parent / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "gpu_check.json"
    path.write_text(json.dumps({"results": results, "argv": sys.argv}, indent=2, default=str))
    print(f"written {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
