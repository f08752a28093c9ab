"""perf_gate.profile: the committed default profile and strict validation of profile files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from perf_gate.profile import ProfileError, load_profile

from tests.support.env import ROOT

DEFAULT_FILE = ROOT / "tools" / "perf-gate" / "src" / "perf_gate" / "profiles" / "default.yml"


def _write(tmp_path: Path, change: dict) -> Path:
    data = yaml.safe_load(DEFAULT_FILE.read_text())
    data.update(change)
    path = tmp_path / "profile.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_default_profile_loads_with_both_hardware_classes() -> None:
    """The bundled profile has single and batch steps, SLO steps, and CPU and GPU limits."""
    profile = load_profile()
    kinds = {s.kind for s in profile.steps}
    assert kinds == {"single", "batch"}
    assert any(s.slo for s in profile.steps)
    assert {"cpu-tiny", "gpu-large"} <= set(profile.slo_classes)
    assert profile.slo_classes["gpu-large"].p95_s is not None
    assert len(profile.sha256) == 64
    assert 0 < profile.workload.bad_share < 0.5


def test_default_profile_rounds_can_reach_alpha() -> None:
    """8 rounds a side can give p = 1/C(16,8), so alpha is reachable without the separation fallback."""
    import math

    profile = load_profile()
    assert 1 / math.comb(2 * profile.rounds, profile.rounds) < profile.thresholds.alpha


def test_profile_from_a_file_is_read_and_hashed(tmp_path: Path) -> None:
    """A YAML path loads the same way, and its hash tracks its content."""
    path = _write(tmp_path, {"rounds": 3})
    profile = load_profile(path)
    assert profile.rounds == 3
    assert profile.sha256 != load_profile().sha256


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    """A typo is an error naming the key, not a silent default."""
    with pytest.raises(ProfileError, match="round_count"):
        load_profile(_write(tmp_path, {"round_count": 5}))


def test_batch_step_needs_items_and_single_step_refuses_them(tmp_path: Path) -> None:
    """batch_items belongs to batch steps only, and a batch step must have it."""
    bad_batch = {"steps": [{"name": "b", "kind": "batch", "concurrency": 1, "requests": 2}]}
    with pytest.raises(ProfileError, match="batch_items"):
        load_profile(_write(tmp_path, bad_batch))
    single = {"name": "s", "kind": "single", "concurrency": 1, "requests": 2, "batch_items": 4}
    bad_single = {"steps": [single]}
    with pytest.raises(ProfileError, match="batch_items"):
        load_profile(_write(tmp_path, bad_single))


def test_repeated_step_names_are_refused(tmp_path: Path) -> None:
    """Step names key the metrics, so they must be unique."""
    step = {"name": "s", "kind": "single", "concurrency": 1, "requests": 2}
    with pytest.raises(ProfileError, match="repeat"):
        load_profile(_write(tmp_path, {"steps": [step, step]}))


def test_missing_profile_names_itself() -> None:
    """Neither a bundled name nor a file: the message says which."""
    with pytest.raises(ProfileError, match="no bundled profile named 'nope'"):
        load_profile("nope")
