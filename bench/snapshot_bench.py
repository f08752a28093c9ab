"""Long-term history benchmark: VictoriaMetrics disk per day of this stack's history, and how long the daily
snapshot of a day of 3 replicas takes.

1. Capture: three ofa-ve replicas (the real metrics module, a fake NVML, steady synthetic traffic on one
   model revision) scraped with the bundle's recording and alert rules by the pinned Prometheus, which
   remote-writes (the committed queue settings) into VictoriaMetrics, for --capture-s seconds at a 1 s
   scrape and evaluation interval. Prometheus also scrapes itself and VictoriaMetrics, as in the stack.
2. A day: every series captured (its real labels and values: each step of a counter adds one of its
   captured increments, each gauge sample is one of its captured values, drawn at random, which
   compresses worse than real, autocorrelated data: the disk figure errs high) written out to 24 hours
   at the stack's 15 s interval into a fresh VictoriaMetrics through the import API; merged; the data
   directory measured.
3. The snapshot: `metrics-snapshot run --day` of that day (queries, CSV, JSON, HTML, then vmbackup),
   timed as a process, as the service runs it.

    .venv/bin/python bench/snapshot_bench.py [--capture-s 240]

Prints a table and writes bench/results/snapshot_bench.json. Needs scripts/provision-tools.sh (the
prometheus, victoria-metrics and vmbackup binaries).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.env import free_port, tool  # noqa: E402
from tests.support.fake_nvml import make_fake_nvml, make_fake_torch  # noqa: E402
from tests.support.victoriametrics import VictoriaMetrics, running_victoriametrics  # noqa: E402

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2025, 6, 1)
STEP_S = 15
SAMPLES_PER_DAY = 86400 // STEP_S
REPLICAS = 3


def start_replicas(stop: threading.Event) -> list[str]:
    """Three replicas' /metrics on free ports, with traffic recorded by a background thread; their targets."""
    from ofa_ve.gpu import GpuCollector
    from ofa_ve.metrics import STAGES, ServiceMetrics
    from prometheus_client import CollectorRegistry, start_http_server

    targets, replicas = [], []
    for i in range(REPLICAS):
        registry = CollectorRegistry()
        metrics = ServiceMetrics(registry)
        nvml = make_fake_nvml(gpu_count=1)
        registry.register(GpuCollector(nvml=nvml, torch_module=make_fake_torch()))
        model = "damo/ofa_visual-entailment_snli-ve_large_en"
        metrics.model_info.labels(model, "v1.0.0", "cuda", "float16").set(1)
        metrics.set_model_state("ready")
        metrics.queue_capacity.set(256)
        port = free_port()
        start_http_server(port, addr="127.0.0.1", registry=registry)
        targets.append(f"127.0.0.1:{port}")
        replicas.append((metrics, nvml, random.Random(i)))

    def traffic() -> None:
        while not stop.is_set():
            for metrics, nvml, rng in replicas:
                for _ in range(rng.randint(5, 15)):  # ~10 requests per replica per 0.5 s
                    latency = rng.lognormvariate(-1.0, 0.5)
                    status = 200 if rng.random() > 0.01 else rng.choice((400, 500, 503))
                    endpoint = rng.choice(("entailment", "entailment", "batch", "ui"))
                    metrics.record_request(endpoint, status, latency)
                    for stage in STAGES:
                        metrics.observe_stage(stage, latency * rng.uniform(0.05, 0.3))
                    if status >= 400:
                        metrics.record_error(rng.choice(("bad_image", "inference_failed", "overloaded")))
                metrics.batch_size.observe(rng.choice((1, 2, 4, 8)))
                metrics.queue_depth.set(rng.randint(0, 20))
                metrics.in_flight.set(rng.randint(0, 8))
                gpu = nvml.gpus[0]
                gpu.memory_used = int(6e9 + rng.uniform(0, 2e9))
                gpu.utilization_percent = rng.randint(20, 90)
                gpu.energy_mj += rng.randint(50_000, 100_000)
            stop.wait(0.5)

    threading.Thread(target=traffic, daemon=True).start()
    return targets


def capture(work: Path, capture_s: float) -> list[dict]:
    """Everything Prometheus remote-writes for `capture_s` seconds, exported from the receiving node."""
    stop = threading.Event()
    targets = start_replicas(stop)
    committed = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    with running_victoriametrics(work / "capture-data", work / "capture-vm.log") as vm:
        port = free_port()
        relabel = [{"source_labels": ["job"], "target_label": "service"}]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "external_labels": committed["global"]["external_labels"]},
            "rule_files": [str(p) for p in sorted((ROOT / "prometheus").glob("*/*.yml"))
                           if p.parent.name in ("rules", "alerts")],
            "scrape_configs": [
                {"job_name": "ofa-ve", "static_configs": [{"targets": targets}], "relabel_configs": relabel},
                {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                 "relabel_configs": relabel},
                {"job_name": "victoriametrics", "relabel_configs": relabel,
                 "static_configs": [{"targets": [vm.url.removeprefix("http://")]}]},
            ],
            "remote_write": [{**committed["remote_write"][0], "url": f"{vm.url}/api/v1/write"}],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        with (work / "prometheus.log").open("wb") as log:
            prometheus = subprocess.Popen(
                [tool("prometheus"), f"--config.file={work / 'prometheus.yml'}",
                 f"--storage.tsdb.path={work / 'prometheus-data'}", f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            time.sleep(capture_s)
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)
            stop.set()
        time.sleep(2)
        vm.flush()
        now = int(time.time())
        return vm.export('{__name__!=""}', now - int(capture_s) - 120, now)


def extend_to_a_day(series: dict, start: int) -> str | None:
    """The series' pattern over a whole day at 15 s steps, as one import line (None: too short to tell)."""
    # Staleness markers (a replica's series at shutdown) come back as null: not part of the pattern.
    values = [v for v in series["values"] if isinstance(v, int | float)]
    if len(values) < 10:
        return None
    # Each step draws from what was captured (a counter's increments, a gauge's values) at random, not in
    # a repeating cycle: VictoriaMetrics' compression would find a cycle, and real data has none.
    rng = random.Random(json.dumps(series["metric"], sort_keys=True))
    monotonic = all(b >= a for a, b in pairwise(values))
    deltas = [b - a for a, b in pairwise(values)]
    out, value = [], values[0]
    for _ in range(SAMPLES_PER_DAY):
        if monotonic:
            value += rng.choice(deltas)
            out.append(value)
        else:
            out.append(rng.choice(values))
    stamps = [(start + STEP_S * (k + 1)) * 1000 for k in range(SAMPLES_PER_DAY)]
    return json.dumps({"metric": series["metric"], "values": out, "timestamps": stamps})


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def merge_everything(vm: VictoriaMetrics) -> None:
    """Flush, then merge the day's partition into its final parts and wait for the merges to end."""
    vm.flush()
    partition = {"partition_prefix": DAY.strftime("%Y_%m")}
    httpx.get(f"{vm.url}/internal/force_merge", params=partition, timeout=600)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        text = httpx.get(f"{vm.url}/metrics", timeout=10).text
        merges = [line for line in text.splitlines() if line.startswith("vm_active_merges")]
        active = sum(float(line.rsplit(" ", 1)[1]) for line in merges)
        if active == 0:
            return
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture-s", type=float, default=240)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="snapshot-bench-"))
    try:
        captured = capture(work, args.capture_s)
        start = int(datetime.combine(DAY, datetime.min.time(), tzinfo=ZONE).timestamp())
        lines = [line for s in captured if (line := extend_to_a_day(s, start)) is not None]
        names = [s["metric"].get("__name__", "") for s in captured]
        raw = sum(1 for s in captured if s["metric"].get("job") == "ofa-ve")
        recorded = sum(1 for n in names if n.count(":") >= 2)
        kinds = {"ofa-ve raw": raw, "recorded": recorded,
                 "other (Prometheus, VictoriaMetrics, ALERTS)": len(lines) - raw - recorded}
        with running_victoriametrics(work / "day-data", work / "day-vm.log") as vm:
            started = time.monotonic()
            for chunk in range(0, len(lines), 200):
                httpx.post(f"{vm.url}/api/v1/import", content="\n".join(lines[chunk:chunk + 200]),
                           timeout=300).raise_for_status()
            import_s = time.monotonic() - started
            merge_everything(vm)
            data_bytes = directory_bytes(work / "day-data" / "data")
            index_bytes = directory_bytes(work / "day-data" / "indexdb")
            snapshots = work / "snapshots"
            env = {**os.environ, "SNAPSHOT_URL": vm.url, "SNAPSHOT_DIR": str(snapshots), "TZ": str(ZONE),
                   "SNAPSHOT_VM_DATA_PATH": str(vm.data), "SNAPSHOT_VMBACKUP": tool("vmbackup")}
            started = time.monotonic()
            run = subprocess.run([sys.executable, "-m", "metrics_snapshot", "run", "--day", DAY.isoformat()],
                                 env=env, capture_output=True, text=True, timeout=1800, check=False)
            snapshot_s = time.monotonic() - started
            if run.returncode != 0:
                sys.stderr.write(run.stderr[-3000:])
                return 1
        manifest = json.loads((snapshots / DAY.isoformat() / "manifest.json").read_text())
        day_files = {name: info["bytes"] for name, info in manifest["files"].items()}
        samples = len(lines) * SAMPLES_PER_DAY
        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "capture_s": args.capture_s,
            "series": len(lines),
            "series_by_kind": kinds,
            "samples_per_day": samples,
            "import_s": round(import_s, 1),
            "disk_bytes_per_day": {"data": data_bytes, "indexdb": index_bytes,
                                   "total": data_bytes + index_bytes},
            "bytes_per_sample": round((data_bytes + index_bytes) / samples, 3),
            "disk_for_12_months_gib": round((data_bytes + index_bytes) * 365 / 2**30, 2),
            "snapshot_run_s": round(snapshot_s, 1),
            "snapshot_backup_s": round(manifest["backup"]["seconds"], 1),
            "snapshot_files_bytes": day_files,
            "backup_bytes": manifest["backup"]["bytes"],
        }
        rows = [
            ("series remote-written (3 replicas, whole bundle)", f"{len(lines):,}"),
            ("  of which ofa-ve raw / recorded / other", " / ".join(f"{n:,}" for n in kinds.values())),
            ("samples per day at 15 s", f"{samples:,}"),
            ("VictoriaMetrics disk per day (data + index)", f"{(data_bytes + index_bytes) / 2**20:.1f} MiB"),
            ("bytes per sample", f"{result['bytes_per_sample']}"),
            ("12 months of history", f"{result['disk_for_12_months_gib']} GiB"),
            ("snapshot of the day (export + vmbackup)",
             f"{snapshot_s:.1f} s (vmbackup {result['snapshot_backup_s']} s)"),
            ("snapshot files of the day", f"{sum(day_files.values()) / 2**10:.0f} KiB"),
        ]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
        out = ROOT / "bench" / "results" / "snapshot_bench.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"written {out}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
