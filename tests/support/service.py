"""The ofa-ve service as a process for the tests: the tiny model and `python -m ofa_ve` on loopback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.env import ROOT, free_port

TINY_MODEL = ROOT / ".tiny-model"


@dataclass
class Server:
    """A running service process."""

    url: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def ensure_tiny_model() -> Path:
    """Builds <repo>/.tiny-model once (about 6 s) unless a current one is there."""
    from ofa_ve import tiny_model

    if not tiny_model.is_current(TINY_MODEL):
        subprocess.run([sys.executable, "-m", "ofa_ve.tiny_model", str(TINY_MODEL)], check=True, timeout=600)
    return TINY_MODEL


def start_server(log_dir: Path, name: str, wait_ready: bool = True, **env: str) -> Server:
    """Starts the service on a free loopback port and waits for /readyz (or only /healthz)."""
    model_dir = ensure_tiny_model()
    port = free_port()
    log_path = log_dir / f"{name}.log"
    environ = {
        **os.environ,
        "OFA_VE_MODEL": str(model_dir),
        "OFA_VE_DEVICE": "cpu",
        "OFA_VE_HOST": "127.0.0.1",
        "OFA_VE_PORT": str(port),
        "OFA_VE_TORCH_THREADS": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **env,
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ofa_ve"], stdout=log, stderr=subprocess.STDOUT,
                                env=environ, cwd=ROOT)
    server = Server(f"http://127.0.0.1:{port}", log_path, proc)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ofa_ve exited with {proc.returncode}:\n{server.log_text()[-4000:]}")
        try:
            probe = "/readyz" if wait_ready else "/healthz"
            if httpx.get(f"{server.url}{probe}", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(server)
    pytest.fail(f"ofa_ve not ready in time:\n{server.log_text()[-4000:]}")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(10)


def image_bytes(size: tuple[int, int] = (96, 64), color: tuple[int, int, int] = (200, 30, 30),
                fmt: str = "PNG") -> bytes:
    """An encoded test image."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()
