"""Where things are, and whether the environment can run a given kind of test.

A test that needs Docker or a browser skips on a developer machine without one, but fails when
REQUIRE_DOCKER=1 / REQUIRE_BROWSER=1 (CI sets both), so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def tool(name: str) -> str:
    """Absolute path of a pinned tool binary (prometheus, promtool, alertmanager, amtool)."""
    found = shutil.which(name, path=f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} not found in {TOOLS_BIN} or PATH: run scripts/provision-tools.sh")
    return found


def _unavailable(what: str, switch: str, why: str) -> None:
    if os.environ.get(switch) == "1":
        pytest.fail(f"{what} required ({switch}=1) but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")


def require_docker() -> None:
    """Skip, or fail under REQUIRE_DOCKER=1, unless a Docker engine with Compose v2 answers."""
    if shutil.which("docker") is None:
        _unavailable("Docker", "REQUIRE_DOCKER", "no docker client")
    for cmd in (["docker", "info"], ["docker", "compose", "version"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            _unavailable("Docker", "REQUIRE_DOCKER", f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[:200]}")


def require_browser() -> str:
    """Path of Chromium; skip, or fail under REQUIRE_BROWSER=1, when it is not installed."""
    if not CHROMIUM.exists():
        _unavailable("Chromium", "REQUIRE_BROWSER", f"{CHROMIUM} missing (scripts/provision-browser.sh)")
    return str(CHROMIUM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
