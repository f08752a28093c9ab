"""`metrics-snapshot compare` against a real VictoriaMetrics: a planted 30 % P95 regression between two
revisions is found, and identical data shows no change."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.integration.metrics_snapshot.conftest import day_start, snapshot_command
from tests.support.victoriametrics import VictoriaMetrics
from tests.support.vmdata import Replica, SyntheticDay, import_lines

pytestmark = pytest.mark.integration

BEFORE, AFTER = date(2025, 7, 1), date(2025, 7, 2)


@pytest.fixture(scope="module")
def upgrade(victoriametrics: VictoriaMetrics) -> VictoriaMetrics:
    """Three replicas on r1 for a day, then the same traffic on r2 (30 % slower) and r1-copy (unchanged)."""
    def replicas(revision: str, scale: float) -> list[Replica]:
        return [Replica(f"10.0.1.{i}:8000", lambda h, r=revision: r, lambda h: 1.0, latency_scale=scale)
                for i in (1, 2, 3)]

    import_lines(victoriametrics.url, SyntheticDay(day_start(BEFORE), 24, replicas("r1", 1.0)).lines())
    import_lines(victoriametrics.url, SyntheticDay(day_start(AFTER), 24, replicas("r2", 1.3)).lines())
    import_lines(victoriametrics.url, SyntheticDay(day_start(AFTER), 24, replicas("r1-copy", 1.0)).lines())
    return victoriametrics


def _compare(vm: VictoriaMetrics, tmp_path: Path, a: str, b: str) -> dict[str, list[str]]:
    markdown, html = tmp_path / "compare.md", tmp_path / "compare.html"
    args = ["compare", "--a", a, "--b", b, "--markdown", str(markdown), "--html", str(html),
            "--fail-on-regression"]
    process = snapshot_command(args, vm, tmp_path)
    rows = {}
    for line in markdown.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0] not in ("metric", "---"):
            rows[cells[0]] = cells[1:]
    assert html.read_text(encoding="utf-8").startswith("<!doctype html>")
    rows["exit"] = [str(process.returncode)]
    return rows


def _range(day: date) -> str:
    return f"from={day.isoformat()},to={(day + timedelta(days=1)).isoformat()}"


def test_a_planted_30_percent_p95_regression_between_revisions_is_found(
    upgrade: VictoriaMetrics, tmp_path: Path
) -> None:
    """r1 against r2 (every request 1.3x slower): P95 1.2 s to 1.56 s, +30 %, significant, a regression;
    traffic and errors unchanged; exit status 2 with --fail-on-regression."""
    rows = _compare(upgrade, tmp_path, f"revision=r1,{_range(BEFORE)}", f"revision=r2,{_range(AFTER)}")
    a, b, change, p, windows, verdict = rows["latency entailment P95"]
    assert (a, b, change, windows, verdict) == ("1.2 s", "1.56 s", "+30.0 %", "24 / 24", "**regression**")
    assert p == "<0.0001"
    assert rows["requests per second"][-1] == "no change"
    assert rows["server error ratio"][-1] == "no change"
    assert rows["exit"] == ["2"]


def test_identical_data_shows_no_change(upgrade: VictoriaMetrics, tmp_path: Path) -> None:
    """r1 against its copy on the next day: every metric unchanged, exit status 0."""
    rows = _compare(upgrade, tmp_path, f"revision=r1,{_range(BEFORE)}", f"revision=r1-copy,{_range(AFTER)}")
    verdicts = {name: cells[-1] for name, cells in rows.items() if name != "exit"}
    assert len(verdicts) >= 8 and set(verdicts.values()) == {"no change"}
    assert rows["exit"] == ["0"]


def test_a_side_without_data_is_an_error_naming_it(upgrade: VictoriaMetrics, tmp_path: Path) -> None:
    """A revision that never ran (a typo) is reported as such with exit status 1, not as an empty report."""
    process = snapshot_command(["compare", "--a", f"revision=r1,{_range(BEFORE)}", "--b", "revision=r9"],
                               upgrade, tmp_path)
    assert process.returncode == 1
    assert "no requests found for one side" in process.stderr and "revision=r9" in process.stderr
