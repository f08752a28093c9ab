"""perf_gate.gate: an undecided A/B gets more rounds, up to max_rounds, and no more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from perf_gate import gate
from perf_gate.decision import OK, REGRESSION
from perf_gate.load import StepRun
from perf_gate.profile import Profile, load_profile
from perf_gate.report import GateResult

from tests.unit.perf_gate.test_profile import DEFAULT_FILE

# Per-round P50s (ms): the first 8 candidate rounds overlap the baseline's (+15 % in the medians,
# not significant); every later one is clearly slower.
NOISY_BASE = [40, 41, 42, 43, 70, 39, 38, 72]
NOISY_CAND = [48, 49, 50, 47, 36, 37, 75, 46]


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    """One single-call step, 8 rounds growing by 4 up to 16."""
    data = yaml.safe_load(DEFAULT_FILE.read_text())
    data.update(rounds=8, max_rounds=16, extra_rounds=4,
                steps=[{"name": "s", "kind": "single", "concurrency": 1, "requests": 10}])
    path = tmp_path / "p.yml"
    path.write_text(yaml.safe_dump(data))
    return load_profile(path)


def _run(p50_ms: float) -> dict[str, StepRun]:
    latencies = [p50_ms / 1000] * 10
    return {"s": StepRun(step="s", batch=False, wall_s=sum(latencies), calls=10, outcomes=10,
                         latencies_s=latencies, rss_bytes=[1e9])}


def _fake_measure(base: Iterator[float], cand: Iterator[float], calls: list[tuple[int, int]]):
    async def measure(profile, plan, builds, rounds=None, first_round=0):
        calls.append((rounds, first_round))
        return {"baseline": [_run(next(base)) for _ in range(rounds)],
                "candidate": [_run(next(cand)) for _ in range(rounds)]}

    return measure


def test_undecided_metric_gets_more_rounds_until_significant(profile: Profile,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """8 overlapping rounds, then clearly slower ones: 4 more rounds at a time until it is significant."""
    calls: list[tuple[int, int]] = []
    base = iter(NOISY_BASE + [40] * 8)
    cand = iter(NOISY_CAND + [60] * 8)
    monkeypatch.setattr(gate, "measure", _fake_measure(base, cand, calls))
    result = GateResult(mode="ab")
    _, candidate, comparisons = gate._until_decided(profile, {}, [], 8, 16, None, result)
    verdicts = {c.key: c.verdict for c in comparisons}
    assert verdicts["s p50"] == REGRESSION
    assert calls[0] == (8, 0) and calls[1] == (4, 8)
    assert result.rounds == len(candidate.series["s p50"]) == sum(n for n, _ in calls)
    assert "more rounds" in result.notes[0]


def test_extension_stops_at_max_rounds(profile: Profile, monkeypatch: pytest.MonkeyPatch) -> None:
    """A metric that stays undecided ends at max_rounds as a pass, never measuring past it."""
    calls: list[tuple[int, int]] = []
    base = iter(NOISY_BASE * 2)
    cand = iter(NOISY_CAND * 2)
    monkeypatch.setattr(gate, "measure", _fake_measure(base, cand, calls))
    result = GateResult(mode="ab")
    _, _, comparisons = gate._until_decided(profile, {}, [], 8, 16, None, result)
    assert {c.key: c.verdict for c in comparisons}["s p50"] == OK
    assert calls == [(8, 0), (4, 8), (4, 12)]
    assert result.rounds == 16


def test_clear_results_take_no_extra_rounds(profile: Profile, monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal builds, or a clear regression, are decided after the first 8 rounds."""
    for cand_ms in (40, 60):
        calls: list[tuple[int, int]] = []
        monkeypatch.setattr(gate, "measure", _fake_measure(iter([40] * 8), iter([cand_ms] * 8), calls))
        gate._until_decided(profile, {}, [], 8, 16, None, GateResult(mode="ab"))
        assert calls == [(8, 0)]
