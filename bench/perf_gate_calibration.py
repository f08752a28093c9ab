"""perf-gate calibration: false-alarm rate on identical builds and the smallest regression it catches.

    .venv/bin/python bench/perf_gate_calibration.py [--aa 20] [--delays 5 10 20] [--per-case 4]
                                                    [--batching-off 0] [--mode spin|sleep]

Runs the real command (`python -m perf_gate ab`, default profile, tiny model, as .ci/run does) again
and again: A/A runs compare two identical exports of HEAD's service source; each planted case
compares HEAD against a copy whose image decoding is slower by the given milliseconds
(tests/support/planted.py), or against HEAD with micro-batching turned off. Cases are interleaved
run by run, so a quiet or a busy hour on the machine spreads over all of them. Prints a table and
writes bench/results/perf_gate_calibration.json after every run (an interrupted run keeps its data).
Issue 11 asks for at most 1 false alarm in 20 A/A runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.planted import export_head, plant_delay  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OUT = RESULTS / "perf_gate_calibration.json"


def gate(candidate: Path, json_path: Path, extra: list[str]) -> dict[str, Any]:
    """One run of the gate as CI runs it; the parts of its JSON the table needs."""
    cmd = [sys.executable, "-m", "perf_gate", "ab", "--baseline", "ref:HEAD",
           "--candidate", f"path:{candidate}", "--repo", str(ROOT), "--tiny-model", str(ROOT / ".tiny-model"),
           "--json", str(json_path), "-q", *extra]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    took = time.monotonic() - started
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError):
        data = {"error": {"reason": proc.stderr[-500:]}}
    comparisons = data.get("comparisons", [])
    return {
        "exit": proc.returncode,
        "seconds": round(took, 1),
        "regressions": [c["key"] for c in comparisons if c["verdict"] == "regression"],
        "slo_breaches": [s["name"] for s in data.get("slo", []) if s["passed"] is False],
        "error": (data.get("error") or {}).get("reason"),
        "rounds": data.get("rounds"),
        "changes": {c["key"]: [c["change"], c["p_worse"]] for c in comparisons},
        "slo": {s["name"]: [s["candidate"], s["baseline"], s["limit"]] for s in data.get("slo", [])},
    }


def _rounds(runs: list[dict[str, Any]]) -> str:
    counts: dict[int, int] = {}
    for r in runs:
        counts[r["rounds"] or 0] = counts.get(r["rounds"] or 0, 0) + 1
    return ", ".join(f"{n} x {k}" if n > 1 else str(k) for k, n in sorted(counts.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa", type=int, default=20, help="A/A runs (identical builds)")
    ap.add_argument("--delays", type=float, nargs="*", default=[5, 10, 20], help="planted ms per image")
    ap.add_argument("--per-case", type=int, default=4, help="runs per planted delay")
    ap.add_argument("--batching-off", type=int, default=0,
                    help="runs with micro-batching off in the candidate")
    ap.add_argument("--mode", choices=["spin", "sleep"], default="spin",
                    help="how the planted delay is spent")
    ap.add_argument("--rounds", type=int, help="override the profile's rounds")
    args = ap.parse_args()

    extra = ["--rounds", str(args.rounds)] if args.rounds else []
    cases: list[tuple[str, int]] = [("A/A", args.aa)]
    cases += [(f"+{d:g} ms {args.mode}", args.per_case) for d in args.delays]
    if args.batching_off:
        cases.append(("batching off", args.batching_off))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in cases}
    meta = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "mode": args.mode}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="perf-gate-cal-") as tmp:
        trees: dict[str, Path] = {}
        for name, _ in cases:
            tree = export_head(ROOT, Path(tmp) / name.replace(" ", "_").replace("/", "").replace("+", "p"))
            if name.startswith("+"):
                plant_delay(tree, float(name.split()[0][1:]) / 1000, args.mode)
            trees[name] = tree
        schedule = []
        for i in range(max(n for _, n in cases)):
            schedule += [name for name, n in cases if i < n]
        for index, name in enumerate(schedule, 1):
            case_extra = list(extra)
            if name == "batching off":
                case_extra += ["--candidate-env", "OFA_VE_MAX_BATCH_SIZE=1",
                               "--candidate-env", "OFA_VE_MAX_WAIT_MS=0"]
            result = gate(trees[name], Path(tmp) / "last.json", case_extra)
            runs[name].append(result)
            failed = " ".join(result["regressions"] + result["slo_breaches"])
            print(f"[{index}/{len(schedule)}] {name}: exit {result['exit']} in {result['seconds']:.0f} s "
                  f"{failed} {result['error'] or ''}", flush=True)
            OUT.write_text(json.dumps({**meta, "runs": runs}, indent=1))

    print(f"\nperf-gate calibration ({os.cpu_count()} CPUs, default profile, tiny model, "
          f"planted: {args.mode})\n")
    print("| case | runs | exit 1 (regression) | exit 2 (not measured) | median time | rounds | flagged |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    for name, _ in cases:
        rs = runs[name]
        flagged: dict[str, int] = {}
        for r in rs:
            for key in r["regressions"] + r["slo_breaches"]:
                flagged[key] = flagged.get(key, 0) + 1
        top = ", ".join(f"{k} ({v})" for k, v in sorted(flagged.items(), key=lambda kv: -kv[1])[:4])
        failed, unmeasured = sum(r["exit"] == 1 for r in rs), sum(r["exit"] == 2 for r in rs)
        print(f"| {name} | {len(rs)} | {failed} | {unmeasured} | "
              f"{statistics.median(r['seconds'] for r in rs):.0f} s | {_rounds(rs)} | {top} |")
    print(f"\nwritten {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
