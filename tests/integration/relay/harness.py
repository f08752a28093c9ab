"""Real processes for the relay integration tests: the relay, Alertmanager, and polling helpers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.env import ROOT, free_port, tool

TOKEN = "integration-relay-token"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class RelayProcess:
    """`python -m webhook_relay` with a config and SQLite file under a temp dir."""

    def __init__(self, workdir: Path, config_text: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "relay.yml"
        self.log_path = workdir / "relay.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_config(config_text)

    def write_config(self, config_text: str) -> None:
        self.config_path.write_text(
            config_text.replace("@PORT@", str(self.port)).replace("@DB@", str(self.workdir / "outbox.db")),
            encoding="utf-8",
        )

    def start(self) -> RelayProcess:
        env = {**os.environ, "RELAY_AUTH_TOKEN": TOKEN, "WEBHOOK_RELAY_LOG_FORMAT": "json"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "webhook_relay", "--config", str(self.config_path), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
        wait_for(self._ready, 30, f"relay ready on {self.url}; log:\n{self.log_tail()}")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"relay exited with {self.proc.returncode}:\n{self.log_tail()}")
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels` (0 when none)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def api(self, method: str, path: str) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )


ALERTMANAGER_YML = """
route:
  receiver: chat-warning
  group_by: [alertname, instance]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="Watchdog"']
      receiver: heartbeat
      group_wait: 0s
    - matchers: ['severity="critical"']
      receiver: chat-critical
receivers:
  - name: heartbeat
    webhook_configs:
      - url: {relay}/webhook/watchdog
        send_resolved: false
        http_config:
          authorization:
            credentials_file: {token_file}
  - name: chat-critical
    webhook_configs:
      - url: {relay}/webhook/critical
        send_resolved: true
        http_config:
          authorization:
            credentials_file: {token_file}
  - name: chat-warning
    webhook_configs:
      - url: {relay}/webhook/warning
        send_resolved: true
        http_config:
          authorization:
            credentials_file: {token_file}
"""


class AlertmanagerProcess:
    """The pinned Alertmanager binary, clustering off, sending to the relay with a bearer token file."""

    def __init__(self, workdir: Path, relay_url: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        token_file = workdir / "relay_token"
        token_file.write_text(TOKEN, encoding="utf-8")
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(
            ALERTMANAGER_YML.format(relay=relay_url, token_file=token_file), encoding="utf-8"
        )
        self.log_path = workdir / "alertmanager.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AlertmanagerProcess:
        (self.workdir / "am-data").mkdir(exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    tool("alertmanager"),
                    f"--config.file={self.config_path}",
                    f"--storage.path={self.workdir / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                    f"--web.external-url=http://alertmanager.test:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200, 30, "alertmanager ready"
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def fire(self, *names: str, severity: str = "critical", instance: str = "ofa-ve:8000") -> None:
        """Post one firing alert per name through Alertmanager's API v2."""
        now = datetime.now(UTC).isoformat()
        alerts = [
            {
                "labels": {"alertname": n, "severity": severity, "instance": instance},
                "annotations": {"summary": f"{n} is firing"},
                "startsAt": now,
                "generatorURL": "http://prometheus:9090/graph",
            }
            for n in names
        ]
        reply = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        assert reply.status_code == 200, reply.text


def relay_config(
    chat_url: str,
    *,
    wecom_key: str = "wecom-key",
    rate: str = "{messages: 100, period_seconds: 1}",
    backoff: float = 0.1,
    heartbeat_after: float = 3600,
) -> str:
    """Relay YAML for the tests; @PORT@ and @DB@ are filled in by RelayProcess."""
    return f"""
server: {{host: 127.0.0.1, port: @PORT@, auth_token: "${{RELAY_AUTH_TOKEN}}"}}
storage: {{path: "@DB@"}}
delivery:
  backoff_initial_seconds: {backoff}
  backoff_max_seconds: 0.5
  poll_interval_seconds: 0.1
  timeout_seconds: 2
targets:
  dingtalk-ops:
    kind: dingtalk
    access_token: dt-token
    secret: dt-secret
    url: {chat_url}/robot/send
    rate_limit: {rate}
  wecom-ops:
    kind: wecom
    key: {wecom_key}
    url: {chat_url}/cgi-bin/webhook/send
    language: en
    rate_limit: {rate}
routes:
  critical: {{targets: [dingtalk-ops]}}
  warning: {{targets: [wecom-ops]}}
  watchdog:
    targets: []
    heartbeat: {{missing_after_seconds: {heartbeat_after}, notify: [dingtalk-ops]}}
"""


def alert_counts(texts: list[str], names: list[str]) -> dict[str, int]:
    """How many received messages mention each alert name (as a heading)."""
    return {n: sum(len(re.findall(rf"[\]>] {re.escape(n)}\n", t)) for t in texts) for n in names}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)[:4000]
