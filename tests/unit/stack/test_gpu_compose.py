"""scripts/gen_gpu_compose.py: one ofa-ve service per GPU, each pinned to its card, found as `ofa-ve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.env import ROOT
from tests.unit.stack.test_compose_files import _ComposeLoader

sys.path.insert(0, str(ROOT / "scripts"))
from gen_gpu_compose import render


def _services(text: str) -> dict[str, Any]:
    return yaml.load(text, Loader=_ComposeLoader)["services"]  # noqa: S506 - a SafeLoader subclass


def test_every_gpu_gets_its_own_service_device_port_and_the_shared_alias() -> None:
    """Three GPUs give three services, each reserving exactly its card, on its own port, aliased ofa-ve."""
    services = _services(render(["0", "1", "3"]))
    assert services["ofa-ve"] == {"profiles": ["replaced-by-per-gpu-services"]}
    pinned = {name: s for name, s in services.items() if name != "ofa-ve"}
    assert sorted(pinned) == ["ofa-ve-gpu0", "ofa-ve-gpu1", "ofa-ve-gpu3"]
    devices, ports = [], []
    for name, service in pinned.items():
        assert service["extends"] == {"file": "docker-compose.yml", "service": "ofa-ve"}
        (device,) = service["deploy"]["value"]["resources"]["reservations"]["devices"]
        assert "count" not in device  # count: 1 is what put every replica on GPU 0
        devices.append(device["device_ids"])
        ports.append(service["ports"]["value"][0])
        assert service["networks"]["value"] == {"monitoring": {"aliases": ["ofa-ve"]}}
        assert service["environment"] == {"OFA_VE_EXPECTED_REPLICAS": "3", "OFA_VE_REPLICA": name}
    assert devices == [["0"], ["1"], ["3"]]
    assert len(set(ports)) == 3 and ports[0] == "${BIND_ADDR:-127.0.0.1}:8000:8000"


def test_gpus_can_be_named_by_uuid_but_not_twice_or_by_junk() -> None:
    """UUIDs pin a card whatever its index; a repeated or malformed GPU is refused."""
    uuid = "GPU-8f2c1a3e-0000-1111-2222-333344445555"
    (device,) = _services(render([uuid]))["ofa-ve-gpu0"]["deploy"]["value"]["resources"]["reservations"][
        "devices"]
    assert device["device_ids"] == [uuid]
    with pytest.raises(ValueError, match="twice"):
        render(["0", "0"])
    with pytest.raises(ValueError, match="not a GPU"):
        render(["0; rm -rf /"])


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client to merge the files")
def test_docker_compose_merges_it_into_pinned_replicas(tmp_path: Path) -> None:
    """`docker compose config` (no daemon needed) merges the override into per-GPU replicas of the real
    service: same image and healthcheck, one device each, the base service gone."""
    override = ROOT / "docker-compose.gpus.test.yml"
    override.write_text(render(["0", "2"]), encoding="utf-8")
    env = {**os.environ, "RELAY_AUTH_TOKEN": "t", "DINGTALK_ACCESS_TOKEN": "t", "WECOM_KEY": "t",
           "GRAFANA_ADMIN_PASSWORD": "p"}
    try:
        proc = subprocess.run(
            ["docker", "compose", "-f", "docker-compose.yml", "-f", override.name, "config",
             "--format", "json"],
            cwd=ROOT, capture_output=True, text=True, env=env, timeout=60, check=False,
        )
    finally:
        override.unlink()
    if proc.returncode != 0 and "is not a docker command" in proc.stderr:
        pytest.skip("docker compose v2 missing")
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert "ofa-ve" not in services
    for gpu in ("0", "2"):
        service = services[f"ofa-ve-gpu{gpu}"]
        assert service["image"] == "ofa-ve-observability/ofa-ve:0.1.0"
        assert service["healthcheck"]["test"][-1].endswith("/readyz', timeout=4)")
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["device_ids"] == [gpu]
        assert service["networks"]["monitoring"]["aliases"] == ["ofa-ve"]
