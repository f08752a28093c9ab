"""Prometheus config and rules checked by the pinned promtool, rule unit tests included."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.env import ROOT, tool
from tests.support.monitoring import PROMETHEUS_DIR
from tests.support.promql import rule_files

pytestmark = pytest.mark.integration

RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*-test.yml"))


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_check_config_accepts_prometheus_yml() -> None:
    """`promtool check config` accepts prometheus.yml and the rule files it loads."""
    result = _promtool("check", "config", "prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules_accepts_every_rule_file() -> None:
    """`promtool check rules` accepts every recording and alerting rule file, with no duplicates."""
    files = [str(p.relative_to(ROOT)) for p in rule_files(ROOT)]
    assert len(files) >= 4
    result = _promtool("check", "rules", "--lint=all", "--lint-fatal", *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests_pass(test_file: Path) -> None:
    """Every case of a rule test file passes under `promtool test rules`."""
    assert RULE_TESTS, "no rule tests found"
    result = _promtool("test", "rules", str(test_file.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_catch_a_wrong_annotation(tmp_path: Path) -> None:
    """The rule tests really compare annotations: one changed description makes promtool fail."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    alerts = copy / "alerts" / "ofa-ve.alerts.yml"
    alerts.write_text(
        alerts.read_text(encoding="utf-8").replace("for more than 2 minutes (up =", "for a while (up ="),
        encoding="utf-8",
    )
    result = _promtool("test", "rules", "tests/ofa-ve-test.yml", cwd=copy)
    assert result.returncode != 0
    assert "ServiceDown" in result.stdout + result.stderr
