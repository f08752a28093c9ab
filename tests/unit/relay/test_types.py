"""The type checker sees the relay's one `Channel` Protocol: `mypy --strict` over the whole package."""

from __future__ import annotations

import subprocess
import sys

from tests.support.env import ROOT


def test_webhook_relay_type_checks_strictly(tmp_path):
    """Every channel class satisfies `Channel` where `open_channel` returns it, and the rest is typed."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--cache-dir", str(tmp_path),
         "-p", "webhook_relay"],
        cwd=ROOT, env={"MYPYPATH": str(ROOT / "webhook-relay" / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
