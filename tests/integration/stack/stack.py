"""Handle on a running test stack: service URLs, compose commands, Prometheus queries, the relay, polling."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from testcontainers.compose import DockerCompose

from tests.support.env import ROOT

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float, interval: float = 1.0) -> T:
    """Call `check` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except (httpx.HTTPError, AssertionError, KeyError, ValueError) as exc:
            # Services restart under these tests: a refused connection just means "not yet".
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last result: {last!r}"[:4000])
        time.sleep(interval)


@dataclass
class Stack:
    """A compose project under test."""

    compose: DockerCompose
    env: dict[str, str]
    work: Path

    def url(self, service: str, port: int) -> str:
        """Base URL of a service's published port (looked up each time: a restart may change it)."""
        return f"http://127.0.0.1:{self.compose.get_service_port(service, port)}"

    def run(self, *args: str, timeout: float = 300) -> str:
        """Run `docker compose <args>` on the project; fail with its stderr when it fails."""
        proc = subprocess.run(
            [*self.compose.compose_command_property, *args],
            cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"docker compose {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-3000:]}")
        return proc.stdout

    def health(self) -> dict[str, str]:
        """Service name -> health status of every running container."""
        return {c.Service or "?": c.Health or c.State or "?" for c in self.compose.get_containers()}

    def log_records(self, service: str) -> list[dict[str, Any]]:
        """The JSON log lines of a service (terminal control codes before them dropped)."""
        records = []
        for line in self.run("logs", "--no-log-prefix", "--no-color", service).splitlines():
            if "{" in line:
                try:
                    records.append(json.loads(line[line.index("{"):]))
                except ValueError:
                    continue  # a plain-text line (uvicorn at start, a traceback)
        return records

    def secret(self, name: str) -> str:
        """A secret init wrote, read the way `make secrets` does."""
        return self.run("run", "--rm", "--no-deps", "init", "show", name, timeout=120).strip()

    def inbox(self) -> dict[str, Any]:
        """The relay's /api/v1/inbox, logged in with the generated token (HTTP Basic, as a browser)."""
        reply = httpx.get(f"{self.url('webhook-relay', 8080)}/api/v1/inbox", params={"limit": 1000},
                          auth=("e2e", self.secret("relay_token")), timeout=10)
        reply.raise_for_status()
        return reply.json()

    def relay_metric(self, name: str, **labels: str) -> float:
        """One sample of the relay's /metrics; AssertionError when the series does not exist."""
        text = httpx.get(f"{self.url('webhook-relay', 8080)}/metrics", timeout=10).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name}{{{want}}} not exposed by the relay")

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Result vector of an instant PromQL query (at `at`, a Unix time, when given)."""
        params: dict[str, str | float] = {"query": promql}
        if at is not None:
            params["time"] = at
        response = httpx.get(f"{self.url('prometheus', 9090)}/api/v1/query", params=params, timeout=15)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {response.status_code} {body}")
        return body["data"]["result"]
