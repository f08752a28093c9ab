"""The whole A/B path (interleaved rounds, decisions, report, exit code) against fake services over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from perf_gate.__main__ import main
from perf_gate.builds import BuildOptions
from perf_gate.gate import RunConfig, run_ab

from tests.integration.perf_gate.fake import Behaviour, fake_service
from tests.unit.perf_gate.test_profile import DEFAULT_FILE

pytestmark = pytest.mark.integration


@pytest.fixture
def small_profile(tmp_path: Path) -> Path:
    """The default profile's thresholds and mix with 6 short rounds (6 a side still reach alpha)."""
    data = yaml.safe_load(DEFAULT_FILE.read_text())
    data.update(rounds=6, warmup_calls=2, rss_poll_s=0.2, steps=[
        {"name": "single-c1", "kind": "single", "concurrency": 1, "requests": 6, "slo": True},
        {"name": "single-c4", "kind": "single", "concurrency": 4, "requests": 12},
        {"name": "batch-c2", "kind": "batch", "concurrency": 2, "requests": 2, "batch_items": 4},
    ])
    path = tmp_path / "small.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _config(tmp_path: Path, profile: Path, **kwargs) -> RunConfig:
    return RunConfig(options=BuildOptions(workdir=tmp_path / "work", start_timeout_s=5), profile=str(profile),
                     **kwargs)


def test_equal_services_pass(tmp_path: Path, small_profile: Path) -> None:
    """Two services with the same 20 ms per call: exit 0, every metric measured, SLO class found by device."""
    with fake_service(Behaviour(0.02)) as a, fake_service(Behaviour(0.02)) as b:
        result = run_ab(_config(tmp_path, small_profile), f"url:{a}", f"url:{b}", None)
    assert result.error is None
    assert result.exit_code == 0, [c for c in result.comparisons if c.verdict != "ok"]
    assert result.slo_class == "cpu-tiny"
    assert all(c.verdict in ("ok", "improvement") for c in result.comparisons)
    steps = result.summaries["candidate"]["steps"]
    assert steps["single-c1"]["calls"] == 6 * 6 and steps["single-c1"]["unexpected"] == 0
    assert steps["batch-c2"]["unexpected"] == 0


def test_slower_candidate_fails_on_latency_and_throughput(tmp_path: Path, small_profile: Path) -> None:
    """20 -> 40 ms per call: the single-call P50s and throughputs regress, the report says FAIL."""
    with fake_service(Behaviour(0.02)) as a, fake_service(Behaviour(0.04)) as b:
        result = run_ab(_config(tmp_path, small_profile, slo_class="none"), f"url:{a}", f"url:{b}", None)
    assert result.exit_code == 1
    flagged = {c.key for c in result.regressions}
    assert {"single-c1 p50", "single-c1 throughput", "single-c4 p50"} <= flagged
    assert result.slo == []


def test_failing_candidate_regresses_the_error_ratio(tmp_path: Path, small_profile: Path) -> None:
    """A candidate answering 500 to everything: error ratio regression, latency 'no answer'."""
    with fake_service(Behaviour(0.01)) as a, fake_service(Behaviour(0.01, status=500)) as b:
        result = run_ab(_config(tmp_path, small_profile), f"url:{a}", f"url:{b}", None)
    assert result.exit_code == 1
    keys = {c.key for c in result.regressions}
    assert "error ratio" in keys and "single-c1 p50" in keys
    assert any(c.name == "error_ratio" and c.passed is False for c in result.slo)


def test_candidate_that_is_not_there_could_not_be_measured(tmp_path: Path, small_profile: Path) -> None:
    """A candidate URL nobody answers on is exit 2, not a regression and not a pass."""
    with fake_service(Behaviour(0.01)) as a:
        result = run_ab(_config(tmp_path, small_profile), f"url:{a}", "url:http://127.0.0.1:9", None)
    assert result.exit_code == 2
    assert "candidate" in result.error.reason and "not ready" in result.error.reason


def test_cli_prints_markdown_writes_json_and_exits_1(tmp_path: Path, small_profile: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`perf-gate ab` end to end: Markdown on stdout, progress on stderr, the JSON file, exit status 1."""
    out = tmp_path / "out" / "gate.json"
    with fake_service(Behaviour(0.02)) as a, fake_service(Behaviour(0.05)) as b:
        code = main(["ab", "--baseline", f"url:{a}", "--candidate", b, "--profile", str(small_profile),
                     "--json", str(out), "--markdown", str(tmp_path / "gate.md")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith("### perf-gate (ab): FAIL")
    assert "round 6/6" in captured.err
    data = json.loads(out.read_text())
    assert data["exit_code"] == 1 and data["rounds"] == 6
    assert (tmp_path / "gate.md").read_text() == captured.out


def test_stored_baseline_is_compared_without_a_second_service(tmp_path: Path, small_profile: Path) -> None:
    """record writes the numbers; ab --baseline stored:FILE compares a live candidate with them, saying so."""
    stored = tmp_path / "baseline.json"
    with fake_service(Behaviour(0.02)) as a:
        recorded = main(["record", "--build", f"url:{a}", "--out", str(stored), "--commit", "f" * 40,
                         "--profile", str(small_profile), "-q"])
    assert recorded == 0 and json.loads(stored.read_text())["commit"] == "f" * 40
    with fake_service(Behaviour(0.04)) as b:
        result = run_ab(_config(tmp_path, small_profile), f"stored:{stored}", f"url:{b}", None)
    assert result.exit_code == 1
    assert any("not interleaved" in n for n in result.notes)
    assert result.builds[0]["detail"] == "stored numbers"
