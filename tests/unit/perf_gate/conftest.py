"""Fixtures for perf-gate's unit tests: a throwaway git repository holding a fake service tree."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Repo:
    path: Path
    first: str  # commit ids
    second: str


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Repo:
    """Two commits of services/ofa-ve/src/ofa_ve/__init__.py (VERSION 1, then 2)."""
    repo = tmp_path / "repo"
    pkg = repo / "services" / "ofa-ve" / "src" / "ofa_ve"
    pkg.mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (pkg / "__init__.py").write_text("VERSION = 1\n")
    (repo / "README.md").write_text("not exported\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "one")
    first = _git(repo, "rev-parse", "HEAD")
    (pkg / "__init__.py").write_text("VERSION = 2\n")
    _git(repo, "commit", "-q", "-am", "two")
    return Repo(repo, first, _git(repo, "rev-parse", "HEAD"))
