"""A real Alertmanager and Prometheus (the pinned binaries) loaded with the bundle's own files.

Alertmanager gets alertmanager/alertmanager.yml with only the deployment paths rewritten: the
relay URL to a closed local port and the token file to a temporary one. Prometheus gets the
repository's rule files, an empty TSDB and that Alertmanager as its target, so both expose the
metric families the dashboards and alerts name.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.env import ROOT, free_port, tool
from tests.support.monitoring import ALERTMANAGER_CONFIG, RELAY_TOKEN_FILE
from tests.support.promql import rule_files

START_TIMEOUT_S = 30


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _start(cmd: list[str], url: str, log: Path) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{cmd[0]} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return Server(url, process, log)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"{cmd[0]} not ready within {START_TIMEOUT_S}s:\n{log.read_text()[-2000:]}")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def local_alertmanager_config(dest: Path, relay_port: int) -> Path:
    """alertmanager.yml with the relay at 127.0.0.1:relay_port and the token file under dest."""
    token = dest / "relay_token"
    token.write_text("test-token\n", encoding="utf-8")
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    text = text.replace("http://webhook-relay:8080/", f"http://127.0.0.1:{relay_port}/")
    text = text.replace(RELAY_TOKEN_FILE, str(token))
    path = dest / "alertmanager.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running Alertmanager with the bundle's routing and inhibition config."""
    work = tmp_path_factory.mktemp("alertmanager")
    config = local_alertmanager_config(work, relay_port=free_port())
    port = free_port()
    server = _start(
        [
            tool("alertmanager"),
            f"--config.file={config}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        f"http://127.0.0.1:{port}",
        work / "alertmanager.log",
    )
    yield server
    stop(server)


def _wait_for_alertmanager(prometheus: Server) -> None:
    """Wait until Prometheus has discovered its Alertmanager: only then it exports the notifier's series."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = httpx.get(f"{prometheus.url}/api/v1/alertmanagers", timeout=5).json()["data"]
        if found["activeAlertmanagers"]:
            return
        time.sleep(0.2)
    pytest.fail(f"Prometheus did not discover its Alertmanager within {START_TIMEOUT_S}s")


def start_prometheus(work: Path, config: dict, extra_args: tuple[str, ...] = ()) -> Server:
    """Prometheus on a free port with `config` (the bundle's rule files added) and an empty TSDB."""
    config = {**config, "rule_files": [str(p) for p in rule_files(ROOT)]}
    (work / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    return _start(
        [
            tool("prometheus"),
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *extra_args,
        ],
        f"http://127.0.0.1:{port}",
        work / "prometheus.log",
    )


class _AcceptEverything(BaseHTTPRequestHandler):
    """A remote-write receiver that takes every request and keeps nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="session")
def remote_write_sink() -> Iterator[str]:
    """URL of a remote-write receiver that accepts everything (so Prometheus exports its queue metrics)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AcceptEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/write"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, alertmanager: Server, remote_write_sink: str
) -> Iterator[Server]:
    """A running Prometheus with the bundle's rule files, sending to the test Alertmanager and remote-writing
    (as the stack does) to a receiver that accepts everything."""
    config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager.url.removeprefix("http://")]}]}]
        },
        "remote_write": [{"name": "victoriametrics", "url": remote_write_sink,
                          "queue_config": {"batch_send_deadline": "1s"}}],
    }
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), config)
    _wait_for_alertmanager(server)
    yield server
    stop(server)
