"""The gate can fail: a planted 20 ms in preprocessing is caught at the default profile's thresholds.

Baseline: `ref:HEAD`, exported by the gate itself (the path .ci/run takes). Candidate: the same
commit's service source with every image decode made 20 ms slower (tests/support/planted.py). Both
run the real ModelScope pipeline on the tiny model, side by side, with the default profile: this is
the gate exactly as CI runs it, with one thing changed. How often identical builds pass, and the
smallest planted delay caught, are measured by bench/perf_gate_calibration.py (see the README).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from perf_gate.builds import BuildOptions
from perf_gate.gate import RunConfig, run_ab
from perf_gate.profile import load_profile
from perf_gate.report import markdown

from tests.support.env import ROOT
from tests.support.planted import export_head, plant_delay

pytestmark = pytest.mark.integration


def test_planted_20ms_preprocessing_regression_fails_the_gate(tmp_path: Path) -> None:
    """+20 ms of CPU per image decode: exit 1, named as latency or throughput regressions."""
    candidate = export_head(ROOT, tmp_path / "candidate")
    plant_delay(candidate, 0.020, "spin")
    config = RunConfig(options=BuildOptions(workdir=tmp_path / "work", repo=ROOT, python=sys.executable),
                       tiny_model=ROOT / ".tiny-model", slo_class="cpu-tiny")
    result = run_ab(config, "ref:HEAD", f"path:{candidate}", None)
    report = markdown(result)
    assert result.error is None, report
    assert result.exit_code == 1, report
    # Which metrics cross depends on the machine's noise that minute (a calibration run under load
    # caught +48 % at concurrency 1 only at p = 0.014, and the gate through concurrency 16 and batch):
    # what must hold is a latency or throughput regression, and nothing else.
    flagged = {c.key for c in result.regressions}
    assert flagged, report
    assert {k.split()[-1] for k in flagged} <= {"p50", "p95", "p99", "throughput"}, report
    defaults = load_profile()
    assert (result.rounds, result.alpha) == (defaults.rounds, defaults.thresholds.alpha)
    assert "FAIL" in report.splitlines()[0]
