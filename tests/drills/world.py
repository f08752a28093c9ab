"""The pipeline as real local processes, on compressed time, for incident drills.

Prometheus 2.53.3 and Alertmanager 0.28.1 (the pinned binaries), the relay (`python -m webhook_relay`),
ofa-ve replicas on the tiny model and the fake chat robots (with a push-monitor endpoint for the external
heartbeat), every one configured from the committed files through `Compression`. Each drill gets its
own Prometheus, Alertmanager and relay with empty state; replicas and the fake chat are shared.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from tests.drills.compression import Compression, compose_command, load_yaml
from tests.drills.transcript import Entry, parse, render
from tests.fakechat import FakeChatServer
from tests.support.env import ROOT, free_port, tool
from tests.support.service import Server, ensure_tiny_model, stop_server

T = TypeVar("T")
START_TIMEOUT_S = 60
# Real seconds: Prometheus' discovery batches (5 s) and a process start, whatever the compression.
DISCOVERY_TIMEOUT_S = 30


class DrillError(AssertionError):
    pass


def poll(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call `check` until it returns something truthy; fail naming `what` after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise DrillError(f"timed out after {timeout:.1f} s waiting for {what}; last: {last!r}"[:2000])
        time.sleep(interval)


@dataclass
class Proc:
    """A child process with its log file; started again with the same arguments after a kill."""

    name: str
    cmd: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> Proc:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, cwd=ROOT
            )
        if self.ready_url:
            poll(self._ready, timeout, f"{self.name} ready", interval=0.1)
        return self

    def _ready(self) -> bool:
        assert self.process is not None and self.ready_url is not None
        if self.process.poll() is not None:
            raise DrillError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
        return httpx.get(self.ready_url, timeout=1).status_code == 200

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as when a container is killed or the host loses power."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)  # a stopped process must be able to die
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


class World:
    """One drill's pipeline. Times given to its methods are SIMULATED seconds."""

    def __init__(
        self, work: Path, chat: FakeChatServer, replicas: list[Server], compression: Compression
    ) -> None:
        self.work = work
        self.chat = chat
        self.c = compression
        self.replicas: list[Server] = list(replicas)
        self.extra: list[Server] = []
        self.relay_port, self.am_port, self.prom_port = free_port(), free_port(), free_port()
        self.relay_url = f"http://127.0.0.1:{self.relay_port}"
        self.am_url = f"http://127.0.0.1:{self.am_port}"
        self.prom_url = f"http://127.0.0.1:{self.prom_port}"
        self.token = secrets.token_urlsafe(24)
        self.ping_token = f"drill-{secrets.token_hex(8)}"
        self.grafana_url = "http://grafana.drill.invalid:3000"
        self.targets_file = work / "ofa-ve-targets.json"
        self.relay_data = work / "relay-data"
        self.relay_data.mkdir(exist_ok=True)
        self.t0 = time.time()
        self.relay_config = self._relay_config()
        self.relay = self._relay_proc()
        self.alertmanager = self._alertmanager_proc()
        self.prometheus = self._prometheus_proc()
        self.set_targets(self.replicas)

    # --- configuration, from the committed files ------------------------------------------------------

    def _relay_config(self) -> Any:
        from webhook_relay.config import parse_config

        chat = self.chat.url
        dingtalk, wecom = "dt-" + secrets.token_hex(8), secrets.token_hex(8)
        secret = "SEC" + secrets.token_hex(16)
        self.chat.state.configure({"dingtalk": {dingtalk: secret}, "wecom": [wecom]})
        env = {
            "RELAY_AUTH_TOKEN": self.token,
            "DINGTALK_ACCESS_TOKEN": dingtalk,
            "DINGTALK_SECRET": secret,
            "WECOM_KEY": wecom,
            "DINGTALK_URL": f"{chat}/robot/send",
            "WECOM_URL": f"{chat}/cgi-bin/webhook/send",
            "RELAY_PUBLIC_URL": self.relay_url,
            "GRAFANA_ROOT_URL": self.grafana_url,
            "HEARTBEAT_URL": f"{chat}/ping/{self.ping_token}",
        }
        config = parse_config((ROOT / "webhook-relay" / "config.yml").read_text(encoding="utf-8"), env=env)
        doc = self.c.relay(config)
        doc["server"].update(host="127.0.0.1", port=self.relay_port, runbook_path=str(ROOT / "runbook.md"))
        doc["storage"]["path"] = str(self.relay_data / "outbox.db")
        # The robots' own limit, compressed like the relay's window: a burst the relay lets through
        # would be refused here, as the real robots would.
        messages, period = self.c.relay_rate_limit(config, "dingtalk-ops")
        self.chat.state.configure({"rate_limit": {"messages": messages, "period_seconds": period}})
        path = self.work / "relay.yml"
        # `$` would be read as substitution by the relay: there is none in these values.
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return config

    def _relay_proc(self) -> Proc:
        return Proc(
            "webhook-relay",
            [sys.executable, "-m", "webhook_relay", "--config", str(self.work / "relay.yml"), "serve"],
            self.work / "relay.log",
            env={"WEBHOOK_RELAY_LOG_FORMAT": "json"},
            ready_url=f"{self.relay_url}/-/ready",
        )

    def _alertmanager_proc(self) -> Proc:
        token_file = self.work / "relay_token"
        token_file.write_text(self.token, encoding="utf-8")
        committed = load_yaml(ROOT / "alertmanager" / "alertmanager.yml")
        doc = self.c.alertmanager(committed, relay_url=self.relay_url, token_file=token_file)
        (self.work / "alertmanager.yml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        (self.work / "am-data").mkdir(exist_ok=True)
        return Proc(
            "alertmanager",
            [tool("alertmanager"), f"--config.file={self.work / 'alertmanager.yml'}",
             f"--storage.path={self.work / 'am-data'}", f"--web.listen-address=127.0.0.1:{self.am_port}",
             "--cluster.listen-address=", f"--web.external-url={self.am_url}"],
            self.work / "alertmanager.log",
            ready_url=f"{self.am_url}/-/ready",
        )

    def _prometheus_proc(self) -> Proc:
        rules_dir = self.work / "rules"
        rules_dir.mkdir(exist_ok=True)
        files = []
        for folder in ("rules", "alerts"):
            for src in sorted((ROOT / "prometheus" / folder).glob("*.yml")):
                dest = rules_dir / f"{folder}-{src.name}"
                rules = self.c.rule_file(load_yaml(src))
                dest.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
                files.append(str(dest))
        addresses = {
            "webhook-relay:8080": f"127.0.0.1:{self.relay_port}",
            "alertmanager:9093": f"127.0.0.1:{self.am_port}",
            "localhost:9090": f"127.0.0.1:{self.prom_port}",
        }
        doc = self.c.prometheus(
            load_yaml(ROOT / "prometheus" / "prometheus.yml"),
            addresses=addresses, ofa_ve_targets_file=self.targets_file, rule_files=files,
        )
        self._prometheus_config = {"rules": doc, "no-rules": {**doc, "rule_files": []}}
        self._write_prometheus_config("no-rules")
        return Proc(
            "prometheus",
            [tool("prometheus"), f"--config.file={self.work / 'prometheus.yml'}", "--web.enable-lifecycle",
             f"--storage.tsdb.path={self.work / 'prom-data'}",
             f"--web.listen-address=127.0.0.1:{self.prom_port}", f"--web.external-url={self.prom_url}",
             *self.c.prometheus_flags(compose_command("prometheus"))],
            self.work / "prometheus.log",
            ready_url=f"{self.prom_url}/-/ready",
        )

    def _write_prometheus_config(self, which: str) -> None:
        doc = self._prometheus_config[which]
        (self.work / "prometheus.yml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")

    def _start_prometheus(self) -> None:
        """Prometheus, with its rules switched on only once it has discovered and scraped its targets.

        Prometheus hands discovered targets (Alertmanager's included) to its scrape and notify loops
        in batches every 5 real seconds, a constant of the binary. In production that is 5 seconds
        without data after a start; at 60x it would be 5 simulated minutes, enough to fire
        OfaVeNoReplicas (`for: 5m`) on every start. Rules load by a config reload instead, once the
        targets are there: the compression artifact goes, the rules' behaviour stays.
        """
        self._write_prometheus_config("no-rules")
        self.prometheus.start()
        poll(self._discovered, DISCOVERY_TIMEOUT_S, "Prometheus to discover Alertmanager and every target")
        self._write_prometheus_config("rules")
        httpx.post(f"{self.prom_url}/-/reload", timeout=10).raise_for_status()
        poll(self._rules_loaded, DISCOVERY_TIMEOUT_S, "Prometheus to load the rules")

    def _rules_loaded(self) -> bool:
        groups = httpx.get(f"{self.prom_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        return len(groups) > 0

    # --- the running world -----------------------------------------------------------------------------

    def start(self) -> World:
        """Start the pipeline and wait for its steady state; the drill's clock starts then.

        The relay starts last, once Prometheus scrapes and notifies (see `_start_prometheus`), so its
        dead-man's switch does not count the start-up.
        """
        self.alertmanager.start()
        self._start_prometheus()
        self.relay.start()
        poll(lambda: self.pings(), DISCOVERY_TIMEOUT_S, "the first heartbeat at the push monitor")
        poll(self._all_targets_up, DISCOVERY_TIMEOUT_S, "every scrape target up")
        self.t0 = time.time()
        if self.transcript():
            raise DrillError(f"the pipeline spoke before the drill began:\n{render(self.transcript())}")
        return self

    def restart_prometheus(self) -> None:
        """Start Prometheus again on the same TSDB (rules switched on as in `_start_prometheus`)."""
        self._start_prometheus()

    def _targets(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.prom_url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]

    def scrape_targets(self, job: str) -> list[dict[str, Any]]:
        return [t for t in self._targets() if t["labels"]["job"] == job]

    def _discovered(self) -> bool:
        managers = httpx.get(f"{self.prom_url}/api/v1/alertmanagers", timeout=5).json()["data"]
        jobs = {t["labels"]["job"] for t in self._targets()}
        return bool(managers["activeAlertmanagers"]) and {"ofa-ve", "alertmanager", "prometheus"} <= jobs

    def _all_targets_up(self) -> bool:
        targets = self._targets()
        return len(targets) == 3 + len(self.replicas) and all(t["health"] == "up" for t in targets)

    def close(self) -> None:
        for proc in (self.prometheus, self.alertmanager, self.relay):
            proc.stop()
        for server in self.extra:
            stop_server(server)

    def set_targets(self, replicas: list[Server]) -> None:
        """What Docker's DNS would answer for `ofa-ve` (written atomically, as file discovery needs)."""
        self.replicas = list(replicas)
        doc = [{"targets": [r.url.removeprefix("http://") for r in replicas], "labels": {}}]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        tmp.replace(self.targets_file)

    def sim_now(self) -> float:
        return self.c.sim(time.time() - self.t0)

    def sleep(self, sim_seconds: float) -> None:
        time.sleep(self.c.real(sim_seconds))

    def sleep_until(self, sim_t: float) -> None:
        """Sleep until `sim_t` simulated seconds after the drill started."""
        time.sleep(max(0.0, self.c.real(sim_t - self.sim_now())))

    def wait_for(self, check: Callable[[], T], sim_timeout: float, what: str) -> T:
        return poll(check, self.c.real(sim_timeout), what, interval=min(0.05, self.c.real(5)))

    # --- what the outside world saw ----------------------------------------------------------------------

    def transcript(self) -> list[Entry]:
        with self.chat.state.lock:
            messages = list(self.chat.state.messages)
        return parse(messages, self.t0, self.c.factor)

    def report(self) -> str:
        """Transcript, pings and the tail of each log: printed when a drill fails."""
        pings = self.ping_times()
        gap = max((b - a for a, b in itertools.pairwise(pings)), default=0.0)
        lines = [render(self.transcript())]
        lines.append(f"--- push monitor: {len(pings)} pings; longest gap {gap:.0f} s (simulated) ---")
        rejected = [r.get("errcode") for r in self.chat.state.rejected]
        if rejected:
            lines.append(f"--- chat rejected {len(rejected)} requests: {rejected[:20]}")
        for proc in (self.relay, self.alertmanager, self.prometheus):
            lines.append(f"--- {proc.name} log (tail) ---\n{proc.tail(15)}")
        return "\n".join(lines)

    def pings(self) -> list[float]:
        with self.chat.state.lock:
            return [at for at, token in self.chat.state.pings if token == self.ping_token]

    def ping_times(self) -> list[float]:
        """Simulated times of the heartbeat pings of this drill."""
        return [self.c.sim(at - self.t0) for at in self.pings()]

    # --- incidents ---------------------------------------------------------------------------------------

    def inject(self, name: str, severity: str = "critical", **labels: str) -> dict[str, Any]:
        """Post an alert to Alertmanager as an operator's `amtool alert add` would (held for a day)."""
        (alert,) = self.inject_many([self.alert(name, severity, **labels)])
        return alert

    def alert(self, name: str, severity: str, description: str = "", **labels: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "labels": {"alertname": name, "severity": severity, "service": "drill", **labels},
            "annotations": {
                "summary": f"{name} ({severity})",
                "description": description or f"Drill alert {name}.",
                "runbook_url": "/runbook#servicedown",
            },
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(days=1)).isoformat(),
            "generatorURL": f"{self.prom_url}/graph",
        }

    def inject_many(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Post alerts together, as one rule evaluation's results arrive from Prometheus."""
        httpx.post(f"{self.am_url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()
        return alerts

    def resolve(self, *alerts: dict[str, Any]) -> None:
        now = datetime.now(UTC).isoformat()
        body = [{**a, "endsAt": now} for a in alerts]
        httpx.post(f"{self.am_url}/api/v2/alerts", json=body, timeout=5).raise_for_status()

    def relay_metric(self, name: str, **labels: str) -> float:
        """Sum of the relay's samples called `name` whose labels include `labels`."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.relay_url}/metrics", timeout=5).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def firing(self) -> set[str]:
        """Names of the alerts Prometheus has firing now."""
        data = httpx.get(f"{self.prom_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return {a["labels"]["alertname"] for a in data if a["state"] == "firing"}


def tiny_model() -> Path:
    return ensure_tiny_model()
