"""A VictoriaMetrics single node from the pinned Debian binary (scripts/provision-tools.sh) on a free port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.env import free_port, tool

START_TIMEOUT_S = 30


@dataclass
class VictoriaMetrics:
    """A running server: its URL and data directory."""

    url: str
    data: Path
    process: subprocess.Popen[bytes]

    def flush(self) -> None:
        """Make everything imported so far searchable."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=30).raise_for_status()

    def export(self, match: str, start: int, end: int) -> list[dict]:
        """Raw series as /api/v1/export gives them (JSON lines), sorted by labels, for comparisons."""
        import json

        reply = httpx.post(f"{self.url}/api/v1/export", data={"match[]": match, "start": start, "end": end},
                           timeout=60)
        reply.raise_for_status()
        series = [json.loads(line) for line in reply.text.splitlines() if line.strip()]
        return sorted(series, key=lambda s: sorted(s["metric"].items()))


@contextmanager
def running_victoriametrics(data: Path, log: Path, *extra: str) -> Iterator[VictoriaMetrics]:
    """Start victoria-metrics on `data` (retention long enough for any test date), stop it on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [tool("victoria-metrics"), f"-storageDataPath={data}", f"-httpListenAddr=127.0.0.1:{port}",
           "-retentionPeriod=100y", *extra]
    with log.open("ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"victoria-metrics exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"victoria-metrics not healthy in {START_TIMEOUT_S}s:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield VictoriaMetrics(url, data, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
