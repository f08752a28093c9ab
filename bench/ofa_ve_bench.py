"""ofa-ve benchmark: instrumentation overhead, throughput/latency with and without micro-batching,
and /metrics scrape time. Prints a table and writes bench/results/ofa_ve_bench.json.

    .venv/bin/python bench/ofa_ve_bench.py [--seconds 6] [--concurrency 1 8 32]

Goals (issue 2): instrumentation adds at most 0.05 ms per request (median); micro-batching at least
doubles throughput at concurrency 32. The service runs as a real process (`python -m ofa_ve`) with
the real ModelScope pipeline on the tiny model; the load generator shares the machine with it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from prometheus_client import CollectorRegistry, generate_latest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.responses import JSONResponse  # noqa: E402
from ofa_ve import tiny_model  # noqa: E402
from ofa_ve.api import Tracker  # noqa: E402
from ofa_ve.errors import ERROR_CODES  # noqa: E402
from ofa_ve.gpu import GpuCollector  # noqa: E402
from ofa_ve.metrics import ENDPOINTS, STAGES, ServiceMetrics  # noqa: E402
from ofa_ve.settings import Settings  # noqa: E402

from tests.support.fake_nvml import make_fake_nvml, make_fake_torch  # noqa: E402

TINY = ROOT / ".tiny-model"
RESULTS = ROOT / "bench" / "results"


# ---------------------------------------------------------------- instrumentation overhead
def bench_overhead(iterations: int) -> dict[str, float]:
    """The same handler awaited bare and through the service's per-request instrumentation."""
    settings = Settings(model="bench")
    metrics = ServiceMetrics(CollectorRegistry())
    tracker = Tracker(settings, metrics)
    logging.getLogger("ofa_ve.api").setLevel(logging.WARNING)  # metrics only: the log line is not counted
    body = {"label": "YES", "score": 0.5}

    async def bare() -> JSONResponse:
        return JSONResponse(body)

    async def observed() -> JSONResponse:
        # Every metric a successful request touches besides the tracker's own.
        metrics.image_size.observe(34_000)
        metrics.image_pixels.observe(307_200)
        for stage in STAGES:
            metrics.observe_stage(stage, 0.004)
        metrics.batch_size.observe(4)
        return JSONResponse(body)

    async def run() -> tuple[list[int], list[int]]:
        plain: list[int] = []
        instrumented: list[int] = []
        clock = time.perf_counter_ns
        for i in range(iterations):
            # Interleaved, so drift (frequency scaling, other tenants) hits both alike.
            if i % 2:
                t = clock()
                await bare()
                plain.append(clock() - t)
                t = clock()
                await tracker.run("entailment", observed)
                instrumented.append(clock() - t)
            else:
                t = clock()
                await tracker.run("entailment", observed)
                instrumented.append(clock() - t)
                t = clock()
                await bare()
                plain.append(clock() - t)
        return plain, instrumented

    plain, instrumented = asyncio.run(run())
    p, q = statistics.median(plain) / 1e6, statistics.median(instrumented) / 1e6
    return {"without_ms": p, "with_ms": q, "added_ms": q - p, "iterations": iterations}


# ---------------------------------------------------------------- scrape time
def bench_scrape(iterations: int) -> dict[str, float]:
    """generate_latest over a registry with every series of the catalogue populated (8 fake GPUs)."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    registry.register(GpuCollector(nvml=make_fake_nvml(8), torch_module=make_fake_torch(8)))
    for endpoint in ENDPOINTS:
        for status in (200, 400, 413, 415, 422, 500, 503, 504):
            metrics.record_request(endpoint, status, 0.1)
    for code in ERROR_CODES:
        metrics.record_error(code)
    for stage in STAGES:
        metrics.observe_stage(stage, 0.01)
    metrics.batch_size.observe(8)
    metrics.image_size.observe(1e5)
    metrics.image_pixels.observe(1e6)
    model = "damo/ofa_visual-entailment_snli-ve_large_en"
    metrics.model_info.labels(model, "default", "cuda", "float16").set(1)
    times = []
    size = 0
    for _ in range(iterations):
        t = time.perf_counter()
        size = len(generate_latest(registry))
        times.append(time.perf_counter() - t)
    return {"median_ms": statistics.median(times) * 1000, "p99_ms": _pct(times, 99) * 1000, "bytes": size}


# ---------------------------------------------------------------- forward pass alone
def bench_forward(model: str | None, device: str, batch: int, repeats: int = 20) -> dict[str, float]:
    """Items per second of the bare forward pass (collate + infer + postprocess) at batch 1 and `batch`:
    what batching saves in model compute alone, apart from the per-pass overhead it also amortises."""
    from ofa_ve.model import OfaEntailmentModel

    if model is None:
        if not tiny_model.is_current(TINY):
            tiny_model.build(TINY)
        model = str(TINY)
    m = OfaEntailmentModel(Settings(model=model, device=device))
    sample = m.prepare(Image.new("RGB", (320, 240), (120, 40, 200)), "a purple wall", None)
    out = {}
    for size in (1, batch):
        m.postprocess(m.infer(m.collate([sample] * size)))  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            m.postprocess(m.infer(m.collate([sample] * size)))
            times.append(time.perf_counter() - t)
        out[f"items_per_s_batch_{size}"] = size / statistics.median(times)
    out["ratio"] = out[f"items_per_s_batch_{batch}"] / out["items_per_s_batch_1"]
    return out


# ---------------------------------------------------------------- throughput
def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def start_service(port: int, log_path: Path, model: str, device: str, **env: str) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "OFA_VE_MODEL": model, "OFA_VE_DEVICE": device, "OFA_VE_HOST": "127.0.0.1",
               "OFA_VE_PORT": str(port), "OFA_VE_ENABLE_UI": "false", "OFA_VE_LOG_LEVEL": "WARNING",
               "OFA_VE_QUEUE_CAPACITY": "256", **env}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ofa_ve"], stdout=log, stderr=subprocess.STDOUT,
                                env=environ)
    deadline = time.monotonic() + 900  # a hub model may need downloading first
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("service not ready")


async def load(url: str, concurrency: int, seconds: float, body: dict[str, Any]) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    batch_sizes: list[int] = []
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        for _ in range(concurrency):  # warm connections
            await client.get(f"{url}/healthz")
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                r = await client.post(f"{url}/v1/entailment", json=body)
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t)
                    batch_sizes.append(r.json()["batch_size"])
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": _pct(latencies, 50) * 1000,
        "p99_ms": _pct(latencies, 99) * 1000,
        "mean_batch": statistics.mean(batch_sizes) if batch_sizes else 0.0,
        "requests": len(latencies),
        "errors": errors,
    }


def bench_throughput(levels: list[int], seconds: float, max_batch: int, model: str | None,
                     device: str) -> dict[str, Any]:
    if model is None:
        if not tiny_model.is_current(TINY):
            tiny_model.build(TINY)
        model = str(TINY)
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 40, 200)).save(buf, format="JPEG")
    body = {"image_base64": base64.b64encode(buf.getvalue()).decode(), "text": "a purple wall"}
    modes = {"batching_off": {"OFA_VE_MAX_BATCH_SIZE": "1", "OFA_VE_MAX_WAIT_MS": "0"},
             "batching_on": {"OFA_VE_MAX_BATCH_SIZE": str(max_batch), "OFA_VE_MAX_WAIT_MS": "5"}}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, env in modes.items():
            port = 18700 + len(out)
            proc = start_service(port, Path(tmp) / f"{mode}.log", model, device, **env)
            try:
                url = f"http://127.0.0.1:{port}"
                asyncio.run(load(url, 4, 1.0, body))  # warm-up
                out[mode] = {str(c): asyncio.run(load(url, c, seconds, body)) for c in levels}
                with httpx.Client() as client:
                    client.get(f"{url}/metrics")
                    times = []
                    for _ in range(50):
                        t = time.perf_counter()
                        client.get(f"{url}/metrics")
                        times.append(time.perf_counter() - t)
                out[mode]["metrics_http_ms"] = statistics.median(times) * 1000
            finally:
                proc.terminate()
                proc.wait(30)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="load duration per concurrency level")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--overhead-iterations", type=int, default=20_000)
    ap.add_argument("--model", default=None, help="model dir or hub id (default: the tiny model)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    overhead = bench_overhead(args.overhead_iterations)
    scrape = bench_scrape(300)
    forward = bench_forward(args.model, args.device, args.max_batch)
    throughput = bench_throughput(args.concurrency, args.seconds, args.max_batch, args.model, args.device)

    print(f"\nofa-ve benchmark ({platform.node()}, {os.cpu_count()} CPUs, model "
          f"{args.model or 'tiny'} on {args.device})\n")
    print("instrumentation overhead per request (median)")
    print(f"  without {overhead['without_ms']:.4f} ms | with {overhead['with_ms']:.4f} ms | "
          f"added {overhead['added_ms']:.4f} ms  (goal <= 0.05 ms)")
    print(f"\n/metrics render, full catalogue + 8 fake GPUs: median {scrape['median_ms']:.3f} ms, "
          f"p99 {scrape['p99_ms']:.3f} ms, {scrape['bytes']} bytes")
    print(f"\nforward pass alone: {forward['items_per_s_batch_1']:.1f} items/s at batch 1, "
          f"{forward[f'items_per_s_batch_{args.max_batch}']:.1f} at batch {args.max_batch} "
          f"({forward['ratio']:.2f}x from model compute alone)")
    print("\n| concurrency | mode | req/s | p50 ms | p99 ms | mean batch | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c in args.concurrency:
        for mode in ("batching_off", "batching_on"):
            r = throughput[mode][str(c)]
            print(f"| {c} | {mode} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                  f"{r['mean_batch']:.2f} | {r['errors']} |")
    ratios = {str(c): throughput["batching_on"][str(c)]["rps"] / throughput["batching_off"][str(c)]["rps"]
              for c in args.concurrency}
    print("\nthroughput ratio batching on/off: " + ", ".join(f"c={c}: {v:.2f}x" for c, v in ratios.items())
          + "  (goal >= 2x at c=32)")
    modes = ("batching_off", "batching_on")
    print("GET /metrics over HTTP (live service, median of 50): "
          + ", ".join(f"{m}: {throughput[m]['metrics_http_ms']:.2f} ms" for m in modes))
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "model": args.model or "tiny", "device": args.device,
              "overhead": overhead, "scrape": scrape, "forward": forward,
              "throughput": throughput, "ratio": ratios}
    (RESULTS / "ofa_ve_bench.json").write_text(json.dumps(result, indent=2))
    print(f"\nwritten {RESULTS / 'ofa_ve_bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
