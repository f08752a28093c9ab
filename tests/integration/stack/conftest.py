"""One compose stack (every service but Grafana, plus the fake chat server) shared by this package's tests.

The stack is the real docker-compose.yml with the CPU override and compose.test.yml, which mounts the
tiny model, shortens intervals (configs derived by testconfig.py), points the relay at the fake chat
server and publishes every port on an ephemeral loopback port, under a unique project name so that
parallel runs do not collide. STACK_KEEP=1 leaves the stack running after the tests, for debugging
(`docker compose -p <project> down -v` removes it; the project name is in the log).
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testcontainers.compose import DockerCompose

from tests.integration.stack.stack import Stack
from tests.integration.stack.testconfig import (
    SCRAPE_INTERVAL,
    write_alertmanager_config,
    write_prometheus_config,
)
from tests.support.env import ROOT, require_docker
from tests.support.promql import duration_seconds

log = logging.getLogger(__name__)

COMPOSE_FILES = ["docker-compose.yml", "docker-compose.cpu.yml", "tests/integration/stack/compose.test.yml"]
TINY_MODEL = ROOT / ".tiny-model"
PING_TOKEN = f"e2e-{secrets.token_hex(8)}"
RELAY_PUBLIC_URL = "http://relay.e2e.invalid:8080"


def _ensure_tiny_model() -> Path:
    # A no-op when a current tiny model is already there; the builder makes it world-readable, as the
    # image runs as a non-root user.
    subprocess.run([sys.executable, "-m", "ofa_ve.tiny_model", str(TINY_MODEL)], check=True, timeout=300)
    return TINY_MODEL


def _write_env_file(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Build the images, start the stack and wait until every service is healthy; tear it all down after."""
    require_docker()
    # Keeps the ofa-ve image build local: no 4 GB download and no fairseq compile inside `docker build`.
    subprocess.run([str(ROOT / "scripts" / "fetch-image-wheels.sh")], check=True, timeout=900)
    work = tmp_path_factory.mktemp("stack")
    write_prometheus_config(ROOT / "prometheus", work / "prometheus")
    write_alertmanager_config(ROOT / "alertmanager" / "alertmanager.yml", work / "alertmanager.yml")
    project = f"ofave-e2e-{secrets.token_hex(4)}"
    env = {
        "COMPOSE_PROJECT_NAME": project,
        "STACK_TINY_MODEL": str(_ensure_tiny_model()),
        "STACK_TEST_CONFIG": str(work),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "RELAY_AUTH_TOKEN": secrets.token_urlsafe(24),
        "DINGTALK_ACCESS_TOKEN": secrets.token_hex(16),
        "DINGTALK_SECRET": "SEC" + secrets.token_hex(24),
        "WECOM_KEY": secrets.token_hex(16),
        # The external dead-man's switch is the fake chat's push-monitor endpoint.
        "HEARTBEAT_URL": f"http://fakechat:9000/ping/{PING_TOKEN}",
        # Where a phone would open the runbook links; nothing listens there in the test.
        "RELAY_PUBLIC_URL": RELAY_PUBLIC_URL,
        "STACK_RULE_INTERVAL_S": str(duration_seconds(SCRAPE_INTERVAL)),
    }
    env_file = work / "stack.env"
    _write_env_file(env_file, env)
    compose = DockerCompose(context=ROOT, compose_file_name=COMPOSE_FILES, env_file=str(env_file), wait=True)
    started = time.monotonic()
    # Built apart from `up` so a build failure shows the build's own output, and its time is logged.
    build = subprocess.run([*compose.compose_command_property, "build"], cwd=ROOT, capture_output=True,
                           text=True, timeout=1800, check=False)
    if build.returncode != 0:
        output = (build.stdout + build.stderr)[-5000:]
        pytest.fail(f"docker compose build failed ({build.returncode}):\n{output}")
    log.info("stack %s: images built in %.0f s", project, time.monotonic() - started)
    try:
        try:
            compose.start()
        except subprocess.CalledProcessError as exc:
            logs, _ = compose.get_logs()
            pytest.fail(f"the stack did not come up healthy: {exc.stderr.decode()[-2000:]}\n{logs[-8000:]}")
        log.info("stack %s: healthy after %.0f s", project, time.monotonic() - started)
        yield Stack(compose=compose, env=env)
    finally:
        if os.environ.get("STACK_KEEP") != "1":
            logs, _ = compose.get_logs()
            (work / "compose.log").write_text(logs, encoding="utf-8")
            log.info("stack %s: container logs in %s", project, work / "compose.log")
            compose.stop(down=True)
