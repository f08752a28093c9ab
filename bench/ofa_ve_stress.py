"""ofa-ve under stress: this tree against a baseline revision, interleaved in one run.

    .venv/bin/python bench/ofa_ve_stress.py [--baseline main] [--quick]

Three measurements, each run on the baseline's service and on this tree's, alternately, as real
`python -m ofa_ve` processes on the tiny model (bench/stress_server.py), default settings:

1. Load shedding. 200 concurrent clients (keep-alive connections, a lean raw-HTTP client) offer 10x the
   sustainable rate (measured first) for a few seconds, paced. Client-measured latency of the 503s and of the
   successes, connection errors, the server's peak RSS, /metrics probed every 250 ms throughout, and
   recovery afterwards (sequential requests and /readyz). Goal: 503 p99 <= 50 ms, success p99 bounded by
   the admission budget, RSS bounded, /metrics answering, full recovery. Then the issue's own
   measurement: 600 requests from 200 clients that all start at once (3 each, back to back).
2. Body memory. 20 concurrent maximum-size requests (a ~10 MiB image as base64 JSON), then 20 concurrent
   batch calls at this tree's batch body cap; a 503 is retried after its Retry-After, so both versions do
   the same work. Peak RSS growth of the server.
3. Scrape impact. Request latency at concurrency 4 with and without a scrape every second, with a fake
   NVML whose every call takes 50 ms.

Prints tables (with after/before ratios) and writes bench/results/ofa_ve_stress.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "services" / "ofa-ve" / "src"
TINY = ROOT / ".tiny-model"
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
MIB = 1024 * 1024


# ---------------------------------------------------------------- the services under test
@dataclass
class Variant:
    name: str
    src: Path


def baseline_source(rev: str, into: Path) -> Path:
    """The service's source at `rev`, unpacked (git archive) under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "services/ofa-ve/src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "services" / "ofa-ve" / "src"


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_service(variant: Variant, logdir: Path, tag: str, **env: str) -> Service:
    import httpx

    port = _free_port()
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(variant.src), str(ROOT)]),
        "OFA_VE_MODEL": str(TINY), "OFA_VE_DEVICE": "cpu", "OFA_VE_HOST": HOST, "OFA_VE_PORT": str(port),
        "OFA_VE_TORCH_THREADS": "1", "OFA_VE_ENABLE_UI": "false", "OFA_VE_LOG_LEVEL": "WARNING",
        "GRADIO_ANALYTICS_ENABLED": "False", **env,
    }
    log = logdir / f"{variant.name}-{tag}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "stress_server.py")], stdout=out,
                                stderr=subprocess.STDOUT, env=environ)
    service = Service(proc, port, log)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{variant.name} exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=2).status_code == 200:
                return service
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    service.stop()
    raise RuntimeError(f"{variant.name} not ready: {log.read_text()[-3000:]}")


@contextmanager
def rss_peak(service: Service, every_s: float = 0.02) -> Iterator[dict[str, int]]:
    """Samples the server's RSS while the block runs: {'before', 'peak'} in bytes."""
    out = {"before": service.rss(), "peak": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                out["peak"] = max(out["peak"], service.rss())
            except OSError:
                return
            stop.wait(every_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out["peak"] = max(out["peak"], out["before"])


def settle(service: Service, seconds: float = 1.0) -> None:
    """Lets the service finish what an earlier phase left (the baseline may still be working)."""
    time.sleep(seconds)


# ---------------------------------------------------------------- a lean HTTP/1.1 client
def raw_request(method: str, path: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if body or method == "POST":
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class Connection:
    """One keep-alive connection; reconnects after the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port, limit=4 * MIB)

    async def request(self, raw: bytes) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        pairs = (line.split(":", 1) for line in lines[1:] if ":" in line)
        headers = {k.strip().lower(): v.strip() for k, v in pairs}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def timed(conn: Connection, raw: bytes, limit_s: float) -> tuple[int, float, dict[str, str]]:
    """(status or -1 for a connection error or no answer within limit_s, seconds, headers)."""
    started = time.perf_counter()
    try:
        status, headers = await asyncio.wait_for(conn.request(raw), limit_s)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
        conn.close()
        return -1, time.perf_counter() - started, {}
    return status, time.perf_counter() - started, headers


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# ---------------------------------------------------------------- request bodies
def small_body() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 40, 200)).save(buf, format="JPEG")
    image = base64.b64encode(buf.getvalue()).decode()
    return json.dumps({"image_base64": image, "text": "a purple wall"}).encode()


def max_size_png(limit: int = 10 * MIB - 64 * 1024) -> bytes:
    """Random pixels (incompressible): a valid PNG just under the 10 MiB image limit."""
    side = int((limit / 3.02) ** 0.5)
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    assert len(data) <= limit, len(data)
    return data


# ---------------------------------------------------------------- 1. load shedding
async def sustainable_rate(port: int, raw: bytes, seconds: float = 6.0, concurrency: int = 16) -> float:
    """Successful requests per second in a closed loop: what the replica can do."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        conn = Connection(port)
        while time.perf_counter() < stop_at:
            status, _, _ = await timed(conn, raw, 60)
            done += status == 200
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def overload(port: int, raw: bytes, rate: float, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` connections offering `rate` requests/s in all for `seconds`, /metrics probed throughout."""
    loop = asyncio.get_running_loop()
    conns = [Connection(port) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    results: list[tuple[int, float]] = []
    interval = clients / rate
    start = loop.time() + 0.2
    end = start + seconds
    finished = asyncio.Event()

    async def client(i: int, conn: Connection) -> None:
        next_at = start + i * interval / clients
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            status, took, _ = await timed(conn, raw, 60)
            results.append((status, took))
            next_at += interval
        conn.close()

    probes: list[tuple[int, float]] = []

    async def probe() -> None:
        conn = Connection(port)
        metrics = raw_request("GET", "/metrics")
        while not finished.is_set():
            status, took, _ = await timed(conn, metrics, 10)
            probes.append((status, took))
            await asyncio.sleep(0.25)
        conn.close()

    prober = asyncio.create_task(probe())
    t0 = loop.time()
    await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    drained_s = loop.time() - t0
    finished.set()
    await prober
    shed = [t for s, t in results if s == 503]
    ok = [t for s, t in results if s == 200]
    return {
        "offered_rps": rate, "requests": len(results), "ok": len(ok), "shed": len(shed),
        "conn_errors": sum(s == -1 for s, _ in results),
        "other": sum(s not in (200, 503, -1) for s, _ in results),
        "shed_p50_ms": pct(shed, 50) * 1000, "shed_p99_ms": pct(shed, 99) * 1000,
        "ok_p50_ms": pct(ok, 50) * 1000, "ok_p99_ms": pct(ok, 99) * 1000,
        "metrics_probes": len(probes), "metrics_failed": sum(s != 200 for s, _ in probes),
        "metrics_p99_ms": pct([t for _, t in probes], 99) * 1000,
        "metrics_max_ms": max((t for _, t in probes), default=float("nan")) * 1000,
        "drained_s": drained_s,
    }


async def burst(port: int, raw: bytes, clients: int, each: int) -> dict[str, Any]:
    """The issue's measurement: `clients` connections at once, each sending `each` requests back to back."""
    conns = [Connection(port) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    results: list[tuple[int, float]] = []

    async def client(conn: Connection) -> None:
        for _ in range(each):
            status, took, _ = await timed(conn, raw, 60)
            results.append((status, took))
        conn.close()

    await asyncio.gather(*(client(c) for c in conns))
    shed = [t for s, t in results if s == 503]
    ok = [t for s, t in results if s == 200]
    return {"requests": len(results), "ok": len(ok), "shed": len(shed),
            "conn_errors": sum(s == -1 for s, _ in results),
            "shed_p50_ms": pct(shed, 50) * 1000, "shed_p99_ms": pct(shed, 99) * 1000,
            "ok_p50_ms": pct(ok, 50) * 1000, "ok_p99_ms": pct(ok, 99) * 1000}


async def recovery(port: int, raw: bytes, n: int = 10) -> dict[str, Any]:
    """After the burst: sequential requests all answered, quickly; /readyz 200."""
    await asyncio.sleep(1.0)
    conn = Connection(port)
    outcomes = [await timed(conn, raw, 30) for _ in range(n)]
    ready, _, _ = await timed(conn, raw_request("GET", "/readyz"), 10)
    conn.close()
    return {"ok": sum(s == 200 for s, _, _ in outcomes), "of": n,
            "p50_ms": pct([t for _, t, _ in outcomes], 50) * 1000, "readyz": ready}


# ---------------------------------------------------------------- 2. body memory
async def big_bodies(port: int, raw: bytes, n: int = 20, max_tries: int = 120) -> dict[str, Any]:
    """`n` concurrent requests of `raw`; a 503 is retried after its Retry-After, until each succeeds."""
    finals: list[int] = []
    shed = 0

    async def client() -> None:
        nonlocal shed
        conn = Connection(port)
        for _ in range(max_tries):
            status, _, headers = await timed(conn, raw, 120)
            if status != 503:
                finals.append(status)
                break
            shed += 1
            await asyncio.sleep(float(headers.get("retry-after", "1")))
        else:
            finals.append(503)
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(n)))
    return {"ok": finals.count(200), "of": n, "statuses": sorted(set(finals)), "shed_then_retried": shed,
            "seconds": time.perf_counter() - started}


# ---------------------------------------------------------------- 3. scrape impact
async def latency_with_scrapes(port: int, raw: bytes, seconds: float, scrape_every: float | None,
                               concurrency: int = 4) -> dict[str, Any]:
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    scrapes: list[float] = []

    async def worker() -> None:
        conn = Connection(port)
        while time.perf_counter() < stop_at:
            status, took, _ = await timed(conn, raw, 60)
            if status == 200:
                latencies.append(took)
        conn.close()

    async def scraper() -> None:
        conn = Connection(port)
        metrics = raw_request("GET", "/metrics")
        while time.perf_counter() < stop_at:
            _, took, _ = await timed(conn, metrics, 30)
            scrapes.append(took)
            await asyncio.sleep(max(0.0, scrape_every - took))  # type: ignore[operator]
        conn.close()

    jobs = [worker() for _ in range(concurrency)] + ([scraper()] if scrape_every else [])
    await asyncio.gather(*jobs)
    return {"requests": len(latencies), "p50_ms": pct(latencies, 50) * 1000,
            "p99_ms": pct(latencies, 99) * 1000,
            "max_ms": max(latencies, default=float("nan")) * 1000,
            "scrapes": len(scrapes), "scrape_p50_ms": pct(scrapes, 50) * 1000}


# ---------------------------------------------------------------- orchestration and report
@dataclass
class Report:
    rows: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, section: str, variant: str, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, int | float):
                self.rows.setdefault(f"{section}.{key}", {}).setdefault(variant, []).append(float(value))


def _fmt(value: float) -> str:
    return "nan" if value != value else (f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}")


def print_table(report: Report, names: tuple[str, str]) -> None:
    before, after = names
    print(f"\n| measure | {before} (before) | {after} (after) | after / before |")
    print("| --- | --- | --- | --- |")
    for key, by_variant in report.rows.items():
        b = statistics.median(by_variant.get(before, [float("nan")]))
        a = statistics.median(by_variant.get(after, [float("nan")]))
        ratio = a / b if b not in (0.0,) and b == b and a == a else float("nan")
        print(f"| {key} | {_fmt(b)} | {_fmt(a)} | {_fmt(ratio)} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="main", help="git revision to compare with (default: main)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved overload rounds per version")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--factor", type=float, default=10.0,
                    help="offered load as a multiple of the sustainable rate")
    ap.add_argument("--seconds", type=float, default=6.0, help="duration of each overload burst")
    ap.add_argument("--quick", action="store_true", help="one round, shorter phases (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds = 1, 3.0
    if not TINY.joinpath("config.json").exists():
        subprocess.run([sys.executable, "-m", "ofa_ve.tiny_model", str(TINY)], check=True,
                       env={**os.environ, "PYTHONPATH": str(SRC)})
    small = raw_request("POST", "/v1/entailment", small_body())
    image = base64.b64encode(max_size_png()).decode()
    big_single = raw_request("POST", "/v1/entailment",
                             json.dumps({"image_base64": image, "text": "noise"}).encode())
    big_batch = raw_request("POST", "/v1/entailment/batch", json.dumps(
        {"items": [{"image_base64": image, "text": "noise"}] * 2}).encode())
    report = Report()
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "node": platform.node()}, "baseline": args.baseline, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        before = Variant(f"baseline {args.baseline}", baseline_source(args.baseline, work))
        after = Variant("this tree", SRC)
        names = (before.name, after.name)

        # 1. Load shedding: both services up, bursts alternately.
        services = {v.name: start_service(v, work, "overload") for v in (before, after)}
        try:
            sustainable = asyncio.run(sustainable_rate(services[after.name].port, small))
            rate = args.factor * sustainable
            print(f"sustainable rate (this tree, closed loop, concurrency 16): {sustainable:.1f} req/s; "
                  f"offering {rate:.0f} req/s from {args.clients} clients for {args.seconds:g} s")
            result["sustainable_rps"] = sustainable
            order = [before, after, after, before] * args.rounds
            for variant in order[: 2 * args.rounds]:
                service = services[variant.name]
                settle(service)
                with rss_peak(service) as rss:
                    paced = asyncio.run(overload(service.port, small, rate, args.clients, args.seconds))
                after_burst = asyncio.run(recovery(service.port, small))
                paced["rss_growth_mb"] = (rss["peak"] - rss["before"]) / MIB
                paced["recovered_ok"] = after_burst["ok"]
                paced["recovery_p50_ms"] = after_burst["p50_ms"]
                paced["readyz_after"] = after_burst["readyz"]
                report.add("overload", variant.name, paced)
                result["runs"].append({"phase": "overload", "variant": variant.name, **paced})
                print(f"  {variant.name}: {json.dumps({k: round(v, 1) for k, v in paced.items()})}")
            # The issue's own measurement: 600 requests from 200 clients that all start at once.
            for variant in order[: 2 * args.rounds]:
                service = services[variant.name]
                settle(service)
                with rss_peak(service) as rss:
                    rush = asyncio.run(burst(service.port, small, args.clients, 3))
                rush["rss_growth_mb"] = (rss["peak"] - rss["before"]) / MIB
                report.add("burst_200x3", variant.name, rush)
                result["runs"].append({"phase": "burst_200x3", "variant": variant.name, **rush})
                print(f"  {variant.name} burst: {json.dumps({k: round(v, 1) for k, v in rush.items()})}")
        finally:
            for service in services.values():
                service.stop()

        # 2. Body memory: a fresh process per version, so the peak is this phase's alone.
        for variant in (before, after):
            service = start_service(variant, work, "bodies")
            try:
                for label, raw in (("max_single", big_single), ("max_batch", big_batch)):
                    with rss_peak(service) as rss:
                        outcome = asyncio.run(big_bodies(service.port, raw))
                    outcome["rss_growth_mb"] = (rss["peak"] - rss["before"]) / MIB
                    outcome["rss_peak_mb"] = rss["peak"] / MIB
                    report.add(f"bodies_20x_{label}", variant.name, outcome)
                    result["runs"].append({"phase": f"bodies_{label}", "variant": variant.name, **outcome})
                    print(f"  {variant.name} 20 x {label}: {outcome}")
            finally:
                service.stop()

        # 3. Scrape impact with a slow NVML.
        services = {v.name: start_service(v, work, "scrape", STRESS_NVML_DELAY_S="0.05")
                    for v in (before, after)}
        try:
            for variant in (before, after, after, before):
                port = services[variant.name].port
                for label, every in (("no_scrapes", None), ("scrape_every_1s", 1.0)):
                    seconds = 4.0 if args.quick else 8.0
                    outcome = asyncio.run(latency_with_scrapes(port, small, seconds, every))
                    report.add(f"scrape.{label}", variant.name, outcome)
                    result["runs"].append({"phase": f"scrape_{label}", "variant": variant.name, **outcome})
        finally:
            for service in services.values():
                service.stop()

    print(f"\nofa-ve stress ({platform.node()}, {os.cpu_count()} CPUs, tiny model on CPU, 1 torch thread); "
          "medians over rounds; ratio = this tree / baseline")
    print_table(report, names)
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["table"] = report.rows
    (RESULTS / "ofa_ve_stress.json").write_text(json.dumps(result, indent=2))
    print(f"\nwritten {RESULTS / 'ofa_ve_stress.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
