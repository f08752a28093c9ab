"""A model that cannot load: the real process stays up, reports why, retries, and recovers on its own."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.service import TINY_MODEL, Server, image_bytes, start_server, stop_server

pytestmark = pytest.mark.integration

# Retries every 0.5 s, then every 1 s: several failed attempts within seconds of the first.
RETRY_ENV = {"OFA_VE_LOAD_RETRY_INITIAL_S": "0.5", "OFA_VE_LOAD_RETRY_MAX_S": "1"}


def _samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _wait_for(what: str, server: Server, check: Callable[[], bool], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached in {timeout} s:\n{server.log_text()[-4000:]}")
        time.sleep(0.25)


def test_missing_model_directory_is_retried_until_it_appears(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With a missing model directory /healthz is 200, /readyz 503 with the cause, and the load is retried
    (failures counter past 1); once the directory appears the replica becomes ready and answers."""
    missing = tmp_path_factory.mktemp("models") / "absent"
    server = start_server(tmp_path_factory.mktemp("ofa-ve-fail"), "fail", wait_ready=False,
                          OFA_VE_MODEL=str(missing), OFA_VE_ENABLE_UI="false", **RETRY_ENV)
    try:
        # The first attempt fails only after the torch/ModelScope imports (seconds), the next ones at once.
        _wait_for("two failed attempts", server,
                  lambda: (_value(_samples(server), "ofa_ve_model_load_failures_total") or 0) >= 2)
        ready = httpx.get(f"{server.url}/readyz", timeout=5)
        body = ready.json()
        assert ready.status_code == 503
        assert body["status"] in {"failed", "loading"}
        assert body["error"].startswith("FileNotFoundError: ") and "does not exist" in body["error"]
        assert body["failed_attempts"] >= 2
        if body["status"] == "failed":
            assert 0 <= body["retry_in_s"] <= 1
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        samples = _samples(server)
        assert _value(samples, "ofa_ve_model_ready") == 0
        assert _value(samples, "ofa_ve_model_state", state="ready") == 0
        assert (_value(samples, "ofa_ve_model_state", state="failed"),
                _value(samples, "ofa_ve_model_state", state="loading")) in {(1, 0), (0, 1)}
        lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
        failed = [line for line in lines if line["message"] == "model load failed"]
        assert len(failed) >= 2
        assert failed[0]["error_type"] == "FileNotFoundError"
        assert [line["attempt"] for line in failed[:2]] == [1, 2]
        assert [line["retry_in_s"] for line in failed[:3]] == [0.5, 1, 1][: len(failed[:3])]

        # The volume "gets mounted": a complete model appears at once (renamed into place, never half-copied).
        staging = missing.with_name("absent.staging")
        shutil.copytree(TINY_MODEL, staging)
        os.rename(staging, missing)
        _wait_for("ready after the model appeared", server,
                  lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200)
        assert httpx.get(f"{server.url}/readyz", timeout=5).json() == {"status": "ready"}
        samples = _samples(server)
        assert _value(samples, "ofa_ve_model_ready") == 1
        assert [_value(samples, "ofa_ve_model_state", state=s) for s in ("loading", "ready", "failed")] == [
            0, 1, 0
        ]
        assert (_value(samples, "ofa_ve_model_load_failures_total") or 0) >= 2
        r = httpx.post(f"{server.url}/v1/entailment", files={"image": ("x.png", image_bytes(), "image/png")},
                       data={"text": "a red square"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["label"] in {"YES", "NO", "MAYBE"}
    finally:
        stop_server(server)
