"""The relay image: builds from the repository root, runs non-root, outbox on a volume, becomes healthy."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.integration.relay.harness import wait_for
from tests.support.env import ROOT, require_docker

pytestmark = [pytest.mark.integration, pytest.mark.docker]
IMAGE = "ofa-ve-observability/webhook-relay:dev"


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def image() -> str:
    """The image built from webhook-relay/Dockerfile with the repository root as context."""
    require_docker()
    command = ("build", "-q", "-f", "webhook-relay/Dockerfile", "-t", IMAGE, str(ROOT))
    build = docker(*command, timeout=900, check=False)
    if build.returncode != 0:
        # pip inside the build reaches PyPI through the machine's proxy: allow one network hiccup.
        build = docker(*command, timeout=900, check=False)
    if build.returncode != 0:
        pytest.fail(f"docker build failed ({build.returncode}):\n{build.stderr[-3000:]}")
    return IMAGE


def test_image_metadata(image):
    """Non-root user, the outbox directory declared as a volume, port 8080, a healthcheck."""
    [info] = json.loads(docker("image", "inspect", image).stdout)
    config = info["Config"]
    assert config["User"] not in ("", "root", "0")
    assert "/var/lib/webhook-relay" in config["Volumes"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert "python" in " ".join(config["Healthcheck"]["Test"])


def test_container_becomes_healthy_and_writes_outbox(image):
    """With only its token (no robot at all: the inbox is the one channel) the container turns healthy and
    creates the SQLite outbox on the volume."""
    name = f"relay-test-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "-e", "RELAY_AUTH_TOKEN=t", image)
    try:
        wait_for(
            lambda: docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() == "healthy",
            90,
            "healthy relay container",
            interval=1,
        )
        assert docker("exec", name, "id", "-u").stdout.strip() != "0"
        files = docker("exec", name, "ls", "/var/lib/webhook-relay").stdout.split()
        assert "outbox.db" in files
    finally:
        docker("rm", "-f", "-v", name, check=False)


def test_missing_secret_stops_the_container_naming_the_key(image):
    """Without a token (neither RELAY_AUTH_TOKEN nor a token file) the relay exits 2 naming the key."""
    run = docker("run", "--rm", "-e", "WECOM_KEY=k", image, check=False)
    assert run.returncode == 2
    assert "server: `auth_token` and `auth_token_file` are empty" in run.stderr
