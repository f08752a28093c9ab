"""The service over HTTP with the real ModelScope pipeline on the tiny model."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from PIL import Image
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from tests.support.service import TINY_MODEL, Server, image_bytes

pytestmark = pytest.mark.integration


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_health_and_readiness(service: Server) -> None:
    """/healthz and /readyz answer 200 once the real model is loaded and warmed up."""
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service.url}/readyz").json() == {"status": "ready"}


def test_multipart_and_json_give_the_same_answer(service: Server) -> None:
    """The same pair sent as multipart and as JSON gets the same label and score from the real model."""
    img = image_bytes()
    a = httpx.post(f"{service.url}/v1/entailment", files={"image": ("x.png", img, "image/png")},
                   data={"text": "a red square"}, timeout=30)
    b = httpx.post(f"{service.url}/v1/entailment", json={"image_base64": _b64(img), "text": "a red square"},
                   timeout=30)
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert a.json()["label"] in {"YES", "NO", "MAYBE"}
    assert a.json()["label"] == b.json()["label"]
    assert a.json()["score"] == pytest.approx(b.json()["score"], abs=1e-5)
    assert 0 < a.json()["score"] <= 1


def test_premise_is_accepted(service: Server) -> None:
    """A premise (text2 in ModelScope's terms) is passed on and answered."""
    r = httpx.post(f"{service.url}/v1/entailment", timeout=30, json={
        "image_base64": _b64(image_bytes()), "text": "the box is red", "premise": "a red box on a table"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] in {"YES", "NO", "MAYBE"}


def test_batch_endpoint_equals_single_calls(service: Server) -> None:
    """Each item of a batch call gets the same label and score as the same pair sent alone."""
    pairs = [
        (image_bytes((96, 64), (200, 30, 30)), "a red square", None),
        (image_bytes((50, 120), (30, 30, 200), "JPEG"), "two birds sit on a branch", "a blue sky"),
        (image_bytes((300, 200), (20, 160, 20)), "grass", None),
    ]
    items = [{"image_base64": _b64(i), "text": t, **({"premise": p} if p else {})} for i, t, p in pairs]
    batch = httpx.post(f"{service.url}/v1/entailment/batch", json={"items": items}, timeout=60)
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    for item, result in zip(items, results, strict=True):
        single = httpx.post(f"{service.url}/v1/entailment", json=item, timeout=30).json()
        assert result["label"] == single["label"]
        assert result["score"] == pytest.approx(single["score"], abs=1e-5)


def test_concurrent_requests_are_micro_batched(service: Server) -> None:
    """Concurrent requests are coalesced into forward passes of more than one item."""
    body = {"image_base64": _b64(image_bytes()), "text": "a red square"}
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(16) as pool:
        url = f"{service.url}/v1/entailment"
        responses = list(pool.map(lambda _: client.post(url, json=body), range(32)))
    assert all(r.status_code == 200 for r in responses)
    assert max(r.json()["batch_size"] for r in responses) > 1
    assert len({round(r.json()["score"], 5) for r in responses}) == 1  # batching changes no answer


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buf, format="PNG")
    return buf.getvalue()


def _too_big() -> bytes:
    return image_bytes((700, 600), fmt="BMP")  # 1.26 MB, over the 1 MiB limit of the test server


BAD: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("unsupported type", "/v1/entailment", {"files": {"image": ("x.pdf", b"%PDF-1.4 hello", "image/png")},
                                            "data": {"text": "x"}}, 415, "unsupported_image_type"),
    ("corrupt", "/v1/entailment", {"json": {"image_base64": _b64(b"\xff\xd8\xff\xe0" + b"\x00" * 64),
                                            "text": "x"}}, 422, "corrupt_image"),
    ("truncated", "/v1/entailment",
     {"files": {"image": ("t.png", image_bytes((400, 300))[:300], "image/png")}, "data": {"text": "x"}},
     422, "corrupt_image"),
    ("too many bytes", "/v1/entailment", {"files": {"image": ("b.bmp", _too_big(), "image/bmp")},
                                          "data": {"text": "x"}}, 413, "request_too_large"),
    ("too many bytes json", "/v1/entailment", {"json": {"image_base64": _b64(_too_big()), "text": "x"}},
     413, "request_too_large"),
    ("decompression bomb", "/v1/entailment", {"files": {"image": ("bomb.png", _bomb(), "image/png")},
                                              "data": {"text": "x"}}, 413, "image_too_many_pixels"),
    ("empty text", "/v1/entailment", {"json": {"image_base64": _b64(image_bytes()), "text": ""}},
     422, "empty_text"),
    ("long text", "/v1/entailment", {"json": {"image_base64": _b64(image_bytes()), "text": "y" * 513}},
     422, "text_too_long"),
    ("malformed json", "/v1/entailment",
     {"content": b'{"text": ', "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
    ("malformed base64", "/v1/entailment", {"json": {"image_base64": "!!notbase64!!", "text": "x"}},
     400, "invalid_base64"),
    # Valid JSON, a valid Python str, but not UTF-8: the BART tokenizer raised UnicodeEncodeError (a 500).
    ("lone surrogate", "/v1/entailment",
     {"content": b'{"image_base64": "' + _b64(image_bytes()).encode() + b'", "text": "a \\ud800 b"}',
      "headers": {"content-type": "application/json"}}, 422, "unencodable_text"),
    ("missing image", "/v1/entailment", {"data": {"text": "x"}, "files": {"nope": ("n", b"1")}},
     422, "invalid_request"),
    ("missing text", "/v1/entailment", {"files": {"image": ("x.png", image_bytes(), "image/png")}},
     422, "invalid_request"),
    ("batch too large", "/v1/entailment/batch",
     {"json": {"items": [{"image_base64": _b64(image_bytes()), "text": "x"}] * 9}}, 413, "batch_too_large"),
    ("batch not json", "/v1/entailment/batch", {"data": {"text": "x"}}, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("why", "path", "kwargs", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_clear_4xx(
    service: Server, why: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    """Each bad input gets its 4xx and code, is counted by type, never as a server error, and the
    service stays ready."""
    endpoint = "batch" if path.endswith("batch") else "entailment"
    before = _samples(service)
    r = httpx.post(f"{service.url}{path}", timeout=30, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["request_id"] == r.headers["x-request-id"]
    after = _samples(service)
    errors = "ofa_ve_errors_total"
    assert _value(after, errors, type=code, cause="") == _value(before, errors, type=code, cause="") + 1
    labels = {"endpoint": endpoint, "status_code": str(status), "result": "client_error"}
    requests = "ofa_ve_requests_total"
    assert _value(after, requests, **labels) == _value(before, requests, **labels) + 1
    server_errors = [k for k, v in after.items()
                     if k[0] == "ofa_ve_requests_total" and ("result", "server_error") in k[1] and v > 0]
    assert server_errors == []
    assert httpx.get(f"{service.url}/readyz").status_code == 200


def test_metrics_parse_and_cover_the_catalogue(service: Server) -> None:
    """/metrics (and /metrics/, without redirect) parses with prometheus_client and has the core series,
    the model state and the configured replica count."""
    body = {"image_base64": _b64(image_bytes()), "text": "x"}
    httpx.post(f"{service.url}/v1/entailment", json=body, timeout=30)
    for path in ("/metrics", "/metrics/"):
        r = httpx.get(f"{service.url}{path}", follow_redirects=False)
        assert r.status_code == 200
        names = {f.name for f in text_string_to_metric_families(r.text)}
        assert {"ofa_ve_requests", "ofa_ve_request_duration_seconds", "ofa_ve_stage_duration_seconds",
                "ofa_ve_batch_size", "ofa_ve_model_ready", "ofa_ve_model_info", "ofa_ve_gpu_available",
                "process_resident_memory_bytes", "ofa_ve_queue_depth"} <= names
    samples = _samples(service)
    assert _value(samples, "ofa_ve_model_ready") == 1
    states = {s: _value(samples, "ofa_ve_model_state", state=s) for s in ("loading", "ready", "failed")}
    assert states == {"loading": 0, "ready": 1, "failed": 0}
    assert _value(samples, "ofa_ve_model_load_failures_total") == 0
    assert _value(samples, "ofa_ve_expected_replicas") == 3  # from OFA_VE_EXPECTED_REPLICAS
    assert _value(samples, "ofa_ve_gpu_available") == 0  # no GPU on the test machine
    assert _value(samples, "ofa_ve_model_load_duration_seconds") > 0
    for stage in ("decode", "queue", "preprocess", "inference", "postprocess"):
        assert _value(samples, "ofa_ve_stage_duration_seconds_count", stage=stage) > 0
    info = [k for k in samples if k[0] == "ofa_ve_model_info"]
    assert dict(info[0][1]) == {"model": str(TINY_MODEL), "revision": "local", "device": "cpu",
                                "dtype": "float32"}


def test_request_id_is_in_every_log_line_of_the_request(service: Server) -> None:
    """A caller's X-Request-ID comes back and tags the JSON log lines of that request."""
    r = httpx.post(f"{service.url}/v1/entailment", headers={"X-Request-ID": "itest-req-0042"},
                   json={"image_base64": _b64(b"not an image"), "text": "x"}, timeout=30)
    assert r.headers["x-request-id"] == "itest-req-0042"
    lines = [json.loads(line) for line in service.log_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "itest-req-0042"]
    assert mine and mine[-1]["status_code"] == 415 and mine[-1]["error_code"] == "unsupported_image_type"


def test_ui_honours_the_callers_request_id(service: Server) -> None:
    """A UI submission through gradio's HTTP API is logged under the caller's X-Request-ID."""
    api = f"{service.url}/ui/gradio_api"
    upload = httpx.post(f"{api}/upload", files={"files": ("a.png", image_bytes(), "image/png")}, timeout=30)
    file_data = {"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}
    queued = httpx.post(f"{api}/call/predict", json={"data": [file_data, "a red square", ""]},
                        headers={"X-Request-ID": "itest-ui-0042"}, timeout=30)
    result = httpx.get(f"{api}/call/predict/{queued.json()['event_id']}", timeout=60).text
    assert "event: complete" in result
    lines = [json.loads(line) for line in service.log_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "itest-ui-0042"]
    assert mine and mine[-1]["endpoint"] == "ui" and mine[-1]["status_code"] == 200


def test_server_timing_matches_the_answers_timings(service: Server) -> None:
    """Server-Timing carries the wait, read and every stage of the answer, inside the total."""
    r = httpx.post(f"{service.url}/v1/entailment", json={"image_base64": _b64(image_bytes()), "text": "x"},
                   timeout=30)
    assert r.status_code == 200
    timing = {name: float(ms) for name, ms in
              (part.strip().split(";dur=") for part in r.headers["server-timing"].split(","))}
    for stage, ms in r.json()["timings_ms"].items():
        assert timing[stage] == pytest.approx(ms, abs=0.002)
    assert timing["total"] >= timing["wait"] + timing["read"] + timing["decode"]


def test_every_exemplar_opens_its_request_detail(service: Server) -> None:
    """OpenMetrics exposition carries request-id exemplars; each one opens at /v1/requests/{id}."""
    for i in range(3):
        httpx.post(f"{service.url}/v1/entailment", json={"image_base64": _b64(image_bytes()), "text": "x"},
                   headers={"X-Request-ID": f"itest-ex-{i}"}, timeout=30)
    text = httpx.get(f"{service.url}/metrics", headers={"accept": "application/openmetrics-text"}).text
    exemplars = {s.exemplar.labels["request_id"]
                 for f in openmetrics_families(text) for s in f.samples
                 if s.exemplar is not None and s.name in {"ofa_ve_request_duration_seconds_bucket",
                                                          "ofa_ve_stage_duration_seconds_bucket"}}
    assert exemplars
    for request_id in exemplars:
        detail = httpx.get(f"{service.url}/v1/requests/{request_id}", timeout=10)
        assert detail.status_code == 200, request_id
        record = detail.json()
        assert record["request_id"] == request_id
        if record["status_code"] == 200:  # some exemplars name the bad-input requests of other tests
            assert record["items"][0]["image_pixels"] > 0


def test_openapi_is_served(service: Server) -> None:
    """The OpenAPI document lists the inference endpoints."""
    spec = httpx.get(f"{service.url}/openapi.json").json()
    assert {"/v1/entailment", "/v1/entailment/batch", "/healthz", "/readyz"} <= set(spec["paths"])
