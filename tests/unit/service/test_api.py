"""The REST API over the real engine, batcher and error model, with a fake model (no torch)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from tests.unit.service.conftest import FakeModel, png_bytes

MakeClient = Callable[..., TestClient]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _requests(registry: CollectorRegistry, endpoint: str, status: int, result: str) -> float:
    value = registry.get_sample_value(
        "ofa_ve_requests_total", {"endpoint": endpoint, "status_code": str(status), "result": result}
    )
    return value or 0.0


def test_multipart_success(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """A multipart image + text gets a label, score, request id and stage timings, counted as success."""
    client = make_client()
    r = client.post("/v1/entailment", files={"image": ("a.png", png_bytes(), "image/png")},
                    data={"text": "yes it is", "premise": "a green box"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "YES"
    assert body["score"] == 0.75
    assert set(body["timings_ms"]) == {"decode", "queue", "preprocess", "inference", "postprocess"}
    assert body["request_id"] == r.headers["x-request-id"]
    assert _requests(registry, "entailment", 200, "success") == 1
    assert registry.get_sample_value("ofa_ve_image_pixels_count") == 1
    assert registry.get_sample_value("ofa_ve_in_flight_requests") == 0


def test_json_success(make_client: MakeClient) -> None:
    """A JSON body with base64 image works the same."""
    r = make_client().post("/v1/entailment", json={"image_base64": _b64(png_bytes()), "text": "no way"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "NO"


BAD_SINGLE: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed json", {"content": b"{not json", "headers": {"content-type": "application/json"}},
     400, "malformed_json"),
    ("json array", {"json": [1, 2]}, 422, "invalid_request"),
    ("missing image", {"json": {"text": "x"}}, 422, "invalid_request"),
    ("missing text", {"json": {"image_base64": "AAAA"}}, 422, "invalid_request"),
    ("bad base64", {"json": {"image_base64": "@@@@", "text": "x"}}, 400, "invalid_base64"),
    ("empty text", {"json": {"image_base64": "AAAA", "text": "  "}}, 422, "empty_text"),
    ("long text", {"json": {"image_base64": "AAAA", "text": "x" * 600}}, 422, "text_too_long"),
    ("not an image", {"json": {"image_base64": _b64(b"hello world, plain text"), "text": "x"}},
     415, "unsupported_image_type"),
    ("truncated", {"json": {"image_base64": _b64(png_bytes((300, 300))[:200]), "text": "x"}},
     422, "corrupt_image"),
    ("empty image", {"json": {"image_base64": "", "text": "x"}}, 422, "empty_image"),
    ("wrong content type", {"content": b"hi", "headers": {"content-type": "text/plain"}},
     415, "unsupported_media_type"),
    ("multipart without image", {"data": {"text": "x"}, "files": {"other": ("o", b"1")}},
     422, "invalid_request"),
]


@pytest.mark.parametrize(("why", "kwargs", "status", "code"), BAD_SINGLE, ids=[b[0] for b in BAD_SINGLE])
def test_bad_input_is_a_named_4xx(
    make_client: MakeClient, registry: CollectorRegistry,
    why: str, kwargs: dict[str, Any], status: int, code: str,
) -> None:
    """Each bad input gets its status and error code, is counted by type, and is no server error."""
    client = make_client()
    r = client.post("/v1/entailment", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert registry.get_sample_value("ofa_ve_errors_total", {"type": code, "cause": ""}) == 1
    assert _requests(registry, "entailment", status, "client_error") == 1
    ok = client.post("/v1/entailment", json={"image_base64": _b64(png_bytes()), "text": "yes"})
    assert ok.status_code == 200  # the service stays healthy


def test_oversize_image_and_bomb(make_client: MakeClient) -> None:
    """Images over the byte or pixel limits get 413 with their own codes."""
    client = make_client(max_image_bytes=2048, max_image_pixels=100)
    big = client.post("/v1/entailment", files={"image": ("a.bmp", png_bytes((64, 64), "BMP"), "image/bmp")},
                      data={"text": "x"})
    assert (big.status_code, big.json()["error"]["code"]) == (413, "image_too_large")
    bomb = client.post("/v1/entailment", json={"image_base64": _b64(png_bytes((20, 20))), "text": "x"})
    assert (bomb.status_code, bomb.json()["error"]["code"]) == (413, "image_too_many_pixels")


def test_request_body_limit(make_client: MakeClient) -> None:
    """A JSON body far over what one image may take is refused with request_too_large."""
    client = make_client(max_image_bytes=1024)
    r = client.post("/v1/entailment", content=b"x" * 200_000, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "request_too_large")


def test_batch_per_item_results_and_errors(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """A batch answers each item in order, with per-item errors counted by type."""
    img = _b64(png_bytes())
    r = make_client().post("/v1/entailment/batch", json={"items": [
        {"image_base64": img, "text": "yes"},
        {"image_base64": "%%%", "text": "x"},
        {"image_base64": img, "text": "no"},
        {"text": "missing image"},
    ]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == [0, 1, 2, 3]
    assert results[0]["label"] == "YES"
    assert results[1]["error"]["code"] == "invalid_base64"
    assert results[2]["label"] == "NO"
    assert results[3]["error"]["code"] == "invalid_request"
    assert registry.get_sample_value("ofa_ve_errors_total", {"type": "invalid_base64", "cause": ""}) == 1
    assert _requests(registry, "batch", 200, "success") == 1


def test_batch_limits(make_client: MakeClient) -> None:
    """Too many items is 413 batch_too_large; none is 422 empty_batch; no items list is 422."""
    client = make_client(max_batch_items=2)
    item = {"image_base64": _b64(png_bytes()), "text": "x"}
    too_many = client.post("/v1/entailment/batch", json={"items": [item] * 3})
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (413, "batch_too_large")
    empty = client.post("/v1/entailment/batch", json={"items": []})
    assert (empty.status_code, empty.json()["error"]["code"]) == (422, "empty_batch")
    shape = client.post("/v1/entailment/batch", json={"pairs": []})
    assert (shape.status_code, shape.json()["error"]["code"]) == (422, "invalid_request")


def test_not_ready_is_503_with_retry_after(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """Before the model is up, inference gets 503 not_ready with Retry-After and /readyz is 503."""
    gate = threading.Event()

    def slow_factory(_settings: Any) -> FakeModel:
        gate.wait(10)
        return FakeModel()

    client = make_client(factory=slow_factory, wait=False)
    try:
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        r = client.post("/v1/entailment", json={"image_base64": _b64(png_bytes()), "text": "x"})
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "not_ready"
        assert registry.get_sample_value("ofa_ve_rejected_total", {"reason": "not_ready"}) == 1
        assert registry.get_sample_value("ofa_ve_model_ready") == 0
    finally:
        gate.set()
    client.app.state.engine.wait_loaded(10)
    assert client.get("/readyz").json() == {"status": "ready"}
    assert registry.get_sample_value("ofa_ve_model_ready") == 1


def test_load_failure_is_reported_and_process_stays_up(
    make_client: MakeClient, registry: CollectorRegistry
) -> None:
    """A model that fails to load leaves /readyz 503 with the cause, the failure counted, /healthz 200."""
    def broken(_settings: Any) -> FakeModel:
        raise FileNotFoundError("no pytorch_model.bin in /models/x")

    client = make_client(factory=broken, load_retry_initial_s=60, load_retry_max_s=60)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert "pytorch_model.bin" in ready.json()["error"]
    assert registry.get_sample_value("ofa_ve_model_load_failures_total") == 1
    assert registry.get_sample_value("ofa_ve_model_ready") == 0
    assert client.get("/healthz").status_code == 200
    r = client.post("/v1/entailment", json={"image_base64": _b64(png_bytes()), "text": "x"})
    assert r.status_code == 503 and "failed to load" in r.json()["error"]["message"]


def _fill(client: TestClient, model: FakeModel, body: dict[str, Any], pool: ThreadPoolExecutor,
          queued: int) -> list[Any]:
    """One request in the (gated) model and `queued` more waiting in the queue."""
    engine = client.app.state.engine
    futures = [pool.submit(client.post, "/v1/entailment", json=body)]
    assert model.entered.wait(10)
    futures += [pool.submit(client.post, "/v1/entailment", json=body) for _ in range(queued)]
    for _ in range(500):
        if engine._batcher.depth() == queued:
            break
        threading.Event().wait(0.01)
    return futures


def test_past_the_admission_budget_is_503_overloaded_at_once(
    make_client: MakeClient, registry: CollectorRegistry
) -> None:
    """With the budget taken (one item running, one queued), a new request gets 503 overloaded at once."""
    gate = threading.Event()
    model = FakeModel(gate=gate)
    client = make_client(model=model, max_in_flight=2, max_batch_size=1, warmup=False)
    body = {"image_base64": _b64(png_bytes()), "text": "yes"}
    with ThreadPoolExecutor(2) as pool:
        try:
            admitted = _fill(client, model, body, pool, queued=1)
            assert registry.get_sample_value("ofa_ve_admitted_items") == 2
            refused = client.post("/v1/entailment", json=body)
        finally:
            gate.set()
        statuses = [f.result(10).status_code for f in admitted]
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "overloaded"
    assert statuses == [200, 200]
    assert registry.get_sample_value("ofa_ve_rejected_total", {"reason": "overloaded"}) == 1
    assert registry.get_sample_value("ofa_ve_admission_limit_items") == 2
    assert registry.get_sample_value("ofa_ve_admitted_items") == 0
    assert _requests(registry, "entailment", 503, "server_error") == 1


def test_queue_full_stays_a_503_when_the_budget_exceeds_the_queue(
    make_client: MakeClient, registry: CollectorRegistry
) -> None:
    """A budget larger than the queue lets the queue fill: the overflow is still refused, queue_full."""
    gate = threading.Event()
    model = FakeModel(gate=gate)
    client = make_client(model=model, queue_capacity=1, max_in_flight=3, max_batch_size=1, warmup=False)
    body = {"image_base64": _b64(png_bytes()), "text": "yes"}
    with ThreadPoolExecutor(2) as pool:
        try:
            admitted = _fill(client, model, body, pool, queued=1)
            refused = client.post("/v1/entailment", json=body)
        finally:
            gate.set()
        statuses = [f.result(10).status_code for f in admitted]
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "queue_full")
    assert statuses == [200, 200]
    assert registry.get_sample_value("ofa_ve_rejected_total", {"reason": "queue_full"}) == 1


def test_deadline_is_504(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """A request whose result is not ready by its deadline gets 504 deadline_exceeded."""
    gate = threading.Event()
    client = make_client(model=FakeModel(gate=gate), request_timeout_s=0.2, warmup=False)
    try:
        r = client.post("/v1/entailment", json={"image_base64": _b64(png_bytes()), "text": "x"})
    finally:
        gate.set()
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "deadline_exceeded"
    assert registry.get_sample_value("ofa_ve_rejected_total", {"reason": "deadline_exceeded"}) == 1


def test_inference_failure_is_500(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """A model exception becomes 500 inference_failed and counts as a server error."""
    client = make_client(model=FakeModel(fail_infer=True), warmup=False)
    r = client.post("/v1/entailment", json={"image_base64": _b64(png_bytes()), "text": "x"})
    assert (r.status_code, r.json()["error"]["code"]) == (500, "inference_failed")
    assert _requests(registry, "entailment", 500, "server_error") == 1


def test_request_id_is_honoured_or_generated(make_client: MakeClient) -> None:
    """A well-formed X-Request-ID is echoed; a missing or malformed one is replaced by a generated id."""
    client = make_client()
    assert client.get("/healthz", headers={"X-Request-ID": "req-42"}).headers["x-request-id"] == "req-42"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    evil = client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200}).headers["x-request-id"]
    assert evil != "a b\tc" + "x" * 200 and len(evil) == 32


def test_metrics_served_without_redirect(make_client: MakeClient) -> None:
    """/metrics and /metrics/ both answer 200 with the exposition, no redirect."""
    client = make_client()
    for path in ("/metrics", "/metrics/"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 200
        assert "ofa_ve_model_ready 1.0" in r.text
        assert "ofa_ve_gpu_available 0.0" in r.text


def test_openapi_documents_both_request_kinds(make_client: MakeClient) -> None:
    """The OpenAPI document lists multipart and JSON bodies and the error responses."""
    spec = make_client().get("/openapi.json").json()
    single = spec["paths"]["/v1/entailment"]["post"]
    assert set(single["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"400", "413", "415", "422", "503", "504"} <= set(single["responses"])
    assert "/v1/entailment/batch" in spec["paths"]
    json.dumps(spec)


def test_warm_up_runs_before_ready(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """Readiness comes after one warm-up forward pass, and the model info and load time are exported."""
    model = FakeModel()
    make_client(model=model)
    assert model.batches == [1]
    assert registry.get_sample_value(
        "ofa_ve_model_info", {"model": "fake/model", "revision": "local", "device": "cpu", "dtype": "float32"}
    ) == 1
    assert registry.get_sample_value("ofa_ve_model_load_duration_seconds") > 0


def test_readyz_while_first_load_runs(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """During the first attempt /readyz is 503 `loading` with no error, no failed attempt and no retry."""
    entered, gate = threading.Event(), threading.Event()

    def slow(_settings: Any) -> FakeModel:
        entered.set()
        gate.wait(10)
        return FakeModel()

    client = make_client(factory=slow, wait=False)
    try:
        assert entered.wait(10)
        ready = client.get("/readyz")
    finally:
        gate.set()
    assert ready.status_code == 503
    assert ready.json() == {"status": "loading", "activity": "loading the model", "download": None,
                            "error": None, "failed_attempts": 0, "retry_in_s": None}
    assert registry.get_sample_value("ofa_ve_model_state", {"state": "loading"}) == 1


def test_readyz_while_failed_says_why_and_when_next(
    make_client: MakeClient, registry: CollectorRegistry
) -> None:
    """After a failed attempt /readyz is 503 `failed` with the error class and message, 1 failed attempt
    and the seconds to the next retry; the state gauge says failed."""
    def broken(_settings: Any) -> FakeModel:
        raise FileNotFoundError("model directory /models/x does not exist")

    client = make_client(factory=broken, load_retry_initial_s=60, load_retry_max_s=120)
    ready = client.get("/readyz")
    body = ready.json()
    assert ready.status_code == 503
    assert body["status"] == "failed"
    assert body["error"] == "FileNotFoundError: model directory /models/x does not exist"
    assert body["failed_attempts"] == 1
    assert 50 < body["retry_in_s"] <= 60
    assert body["activity"].startswith("failed: FileNotFoundError: model directory /models/x does not exist; "
                                       "next attempt in ")
    states = {s: registry.get_sample_value("ofa_ve_model_state", {"state": s})
              for s in ("downloading", "loading", "ready", "failed")}
    assert states == {"downloading": 0, "loading": 0, "ready": 0, "failed": 1}
    r = client.post("/v1/entailment", json={"image_base64": _b64(png_bytes()), "text": "x"})
    assert "failed attempts: 1" in r.json()["error"]["message"]


def test_readyz_during_a_retry(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """While a retry runs /readyz is 503 `loading` and still reports the last error and the failed count."""
    entered, gate = threading.Event(), threading.Event()
    calls: list[int] = []

    def flaky(_settings: Any) -> FakeModel:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("CUDA error: all CUDA-capable devices are busy or unavailable")
        entered.set()
        gate.wait(10)
        return FakeModel()

    client = make_client(factory=flaky, wait=False, load_retry_initial_s=0.01)
    try:
        assert entered.wait(10)
        ready = client.get("/readyz")
    finally:
        gate.set()
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "loading", "activity": "loading the model", "download": None, "failed_attempts": 1,
        "retry_in_s": None, "error": "OSError: CUDA error: all CUDA-capable devices are busy or unavailable",
    }
    assert registry.get_sample_value("ofa_ve_model_load_failures_total") == 1
    client.app.state.engine.wait_loaded(10)
    assert client.get("/readyz").json() == {"status": "ready"}
    assert registry.get_sample_value("ofa_ve_model_state", {"state": "ready"}) == 1
    assert registry.get_sample_value("ofa_ve_model_load_failures_total") == 1


def test_readyz_error_is_truncated(make_client: MakeClient) -> None:
    """A huge exception message is cut to 500 characters on /readyz."""
    def broken(_settings: Any) -> FakeModel:
        raise RuntimeError("config dump " + "x" * 10_000)

    body = make_client(factory=broken, load_retry_initial_s=60, load_retry_max_s=60).get("/readyz").json()
    assert body["error"].startswith("RuntimeError: config dump xxx")
    assert len(body["error"]) == 500


@pytest.mark.parametrize("replicas", [0, 3])
def test_expected_replicas_gauge(make_client: MakeClient, registry: CollectorRegistry, replicas: int) -> None:
    """ofa_ve_expected_replicas exports the configured replica count (0 when not configured)."""
    client = make_client(expected_replicas=replicas)
    assert registry.get_sample_value("ofa_ve_expected_replicas") == replicas
    assert f"ofa_ve_expected_replicas {replicas}.0" in client.get("/metrics").text
