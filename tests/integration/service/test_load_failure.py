"""A model that cannot load: the real process stays up and reports why."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.service.conftest import start_server, stop_server

pytestmark = pytest.mark.integration


def test_missing_model_directory_is_reported(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With a model directory that does not exist, /healthz is 200, /readyz 503 with the cause, and the
    failure is exported."""
    missing = tmp_path_factory.mktemp("models") / "absent"
    server = start_server(tmp_path_factory.mktemp("ofa-ve-fail"), "fail", wait_ready=False,
                          OFA_VE_MODEL=str(missing), OFA_VE_ENABLE_UI="false")
    try:
        ready = httpx.get(f"{server.url}/readyz", timeout=5)
        for _ in range(240):  # loading fails within seconds (imports), not at once
            if ready.json()["status"] == "failed":
                break
            time.sleep(0.25)
            ready = httpx.get(f"{server.url}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["status"] == "failed"
        assert "does not exist" in ready.json()["error"]
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
        samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples["ofa_ve_model_load_failures_total"] == 1
        assert samples["ofa_ve_model_ready"] == 0
        assert '"model load failed"' in server.log_text()
    finally:
        stop_server(server)
