"""perf_gate.baseline: the rule behind `--baseline auto`, and the stored baseline file's round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from perf_gate.baseline import ENV_REF, object_exists, read_stored, resolve_auto, write_stored
from perf_gate.builds import BuildOptions, make_build, service_tree
from perf_gate.decision import StepTotals, Summary
from perf_gate.errors import CouldNotMeasure
from perf_gate.profile import load_profile

from tests.support.env import ROOT
from tests.unit.perf_gate.conftest import Repo

COMMITTED = ROOT / "tools" / "perf-gate" / "baselines" / "cpu-tiny.json"


def _stored(path: Path, commit: str | None, tree: str | None = None) -> Path:
    summary = Summary(series={"single-c1 p50": [0.04, 0.041]}, slo={"p95_s": 0.09},
                      steps={"single-c1": StepTotals(calls=48, outcomes=48)})
    write_stored(path, load_profile(), summary, {"source": "ref:main"}, commit, tree)
    return path


def test_env_ref_wins(git_repo: Repo, tmp_path: Path) -> None:
    """PERF_GATE_BASELINE_REF (a pipeline that knows the target's commit) beats the file."""
    file = _stored(tmp_path / "b.json", git_repo.first)
    chosen = resolve_auto(git_repo.path, file, {ENV_REF: "origin/main"})
    assert chosen == ("ref:origin/main", f"{ENV_REF} is set")


def test_recorded_commit_is_rerun_when_the_clone_has_it(git_repo: Repo, tmp_path: Path) -> None:
    """Without the variable, the file's commit is the baseline, run live next to the candidate."""
    file = _stored(tmp_path / "b.json", git_repo.first)
    source, why = resolve_auto(git_repo.path, file, {})
    assert source == f"ref:{git_repo.first}"
    assert "recorded" in why


def test_recorded_tree_when_the_commit_was_squashed_away(git_repo: Repo, tmp_path: Path) -> None:
    """A commit id main no longer has (squash or rebase merge) falls back to its service tree, same code."""
    tree = service_tree(git_repo.path, git_repo.first)
    assert tree is not None
    file = _stored(tmp_path / "b.json", "0" * 40, tree)
    source, why = resolve_auto(git_repo.path, file, {})
    assert source == f"tree:{tree}"
    assert "not in this clone" in why
    build = make_build("baseline", source, BuildOptions(workdir=tmp_path / "w", repo=git_repo.path))
    build.prepare()
    assert (build.tree / "services/ofa-ve/src/ofa_ve/__init__.py").read_text() == "VERSION = 1\n"


def test_recorded_numbers_when_neither_commit_nor_tree_is_there(git_repo: Repo, tmp_path: Path) -> None:
    """A shallow clone without that commit or tree falls back to the file's numbers, and says why."""
    file = _stored(tmp_path / "b.json", "0" * 40, "1" * 40)
    source, why = resolve_auto(git_repo.path, file, {})
    assert source == f"stored:{file}"
    assert "is in this clone" in why and why.startswith("neither")


def test_no_baseline_at_all_could_not_measure(git_repo: Repo, tmp_path: Path) -> None:
    """Neither the variable nor a file: exit 2 with the remedy."""
    with pytest.raises(CouldNotMeasure, match="perf-gate record"):
        resolve_auto(git_repo.path, tmp_path / "missing.json", {})


def test_stored_file_round_trips(tmp_path: Path) -> None:
    """What record writes, the A/B reads back: series, SLO values, step totals, commit, profile hash."""
    file = _stored(tmp_path / "b.json", "abc")
    stored = read_stored(file)
    assert stored.commit == "abc"
    assert stored.profile_sha256 == load_profile().sha256
    assert stored.summary.series["single-c1 p50"] == [0.04, 0.041]
    assert stored.summary.steps["single-c1"].calls == 48
    assert stored.machine["cpus"]


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    """A JSON file that is not a baseline of this format is could-not-measure, not a crash."""
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(CouldNotMeasure, match="format"):
        read_stored(path)


def test_committed_baseline_matches_the_default_profile() -> None:
    """The committed baseline names a full commit id and was recorded with the current default profile."""
    stored = read_stored(COMMITTED)
    assert stored.commit and len(stored.commit) == 40
    if object_exists(ROOT, stored.commit, "commit"):
        assert stored.service_tree == service_tree(ROOT, stored.commit)
    assert stored.profile_sha256 == load_profile().sha256, "default.yml changed: run `perf-gate record` again"
    assert set(stored.summary.series) >= {"single-c1 p50", "error ratio", "peak RSS"}
