"""From a slow P95 to the one request: exemplars in OpenMetrics, the request log, /v1/requests/{id}."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ofa_ve.context import RequestContext
from ofa_ve.exemplars import ExemplarSampler
from ofa_ve.peers import PEER_HEADER, PeerLookup
from ofa_ve.requestlog import RequestLog, kinds_of
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.unit.service.conftest import FakeModel, png_bytes

MakeClient = Callable[..., TestClient]
IMAGE = base64.b64encode(png_bytes((40, 30))).decode()
OPENMETRICS = {"accept": "application/openmetrics-text; version=1.0.0"}


def _exemplars(text: str, name: str) -> list[tuple[dict[str, str], Any]]:
    """(sample labels, exemplar) of every sample of `name` that carries an exemplar."""
    return [(s.labels, s.exemplar) for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name and s.exemplar is not None]


def _ctx(
    request_id: str = "r1", status: int = 200, duration: float = 0.01, code: str | None = None,
    sampled: bool = False,
) -> RequestContext:
    ctx = RequestContext(request_id, 0.0, status_code=status, duration_s=duration, sampled=sampled)
    if code is not None:
        ctx.error = {"code": code, "message": "m"}
    return ctx


def test_the_sampler_attaches_one_exemplar_per_bucket_per_interval() -> None:
    """Within an interval a bucket gets one sampled exemplar; another bucket or a forced one gets its own."""
    now = [0.0]
    sampler = ExemplarSampler(10.0, clock=lambda: now[0])
    bounds = (0.1, 1.0)
    first, second, other, forced = (RequestContext(f"r{i}", 0.0) for i in range(4))
    assert sampler.pick("s", bounds, 0.05, first) == {"request_id": "r0"}
    assert sampler.pick("s", bounds, 0.07, second) is None
    assert sampler.pick("s", bounds, 0.5, other) == {"request_id": "r2"}
    assert sampler.pick("s", bounds, 0.06, forced, force=True) == {"request_id": "r3"}
    assert (first.sampled, second.sampled, other.sampled, forced.sampled) == (True, False, True, True)
    now[0] = 10.0
    assert sampler.pick("s", bounds, 0.05, second) == {"request_id": "r1"}


def test_an_id_too_long_for_an_exemplar_gets_none() -> None:
    """OpenMetrics caps exemplar labels at 128 characters: a longer request id is never attached."""
    assert ExemplarSampler(0).pick("s", (1.0,), 0.5, RequestContext("x" * 119, 0.0), force=True) is None
    assert ExemplarSampler(0).pick("s", (1.0,), 0.5, RequestContext("x" * 118, 0.0), force=True) is not None


def test_request_log_kinds() -> None:
    """5xx and 4xx and slow requests are kept by kind; shed 503s only when sampled; fast successes not."""
    assert kinds_of(_ctx(status=500, code="inference_failed"), 1.0) == ["server_error"]
    assert kinds_of(_ctx(status=422, code="empty_text"), 1.0) == ["client_error"]
    assert kinds_of(_ctx(duration=2.0), 1.0) == ["slow"]
    assert kinds_of(_ctx(status=503, code="overloaded", duration=2.0), 1.0) == []
    assert kinds_of(_ctx(status=503, code="overloaded", sampled=True), 1.0) == ["sampled"]
    assert kinds_of(_ctx(), 1.0) == []


def test_request_log_rings_are_bounded_per_kind() -> None:
    """Each kind keeps its last N; a flood of one kind never evicts another kind's requests."""
    log = RequestLog(per_kind=3, slow_s=1.0, replica="r")
    log.add(_ctx("boom", status=500, code="inference_failed"))
    for i in range(10):
        log.add(_ctx(f"bad{i}", status=422, code="empty_text"))
    assert log.get("boom") is not None
    assert [log.get(f"bad{i}") is not None for i in range(10)] == [False] * 7 + [True] * 3
    assert len(log) == 4


def test_a_request_in_two_kinds_stays_until_both_evict_it() -> None:
    """A slow failure is kept while either of its rings still holds it."""
    log = RequestLog(per_kind=1, slow_s=1.0, replica="r")
    log.add(_ctx("both", status=500, code="inference_failed", duration=5.0))
    log.add(_ctx("slow2", duration=3.0))
    assert log.get("both") is not None  # gone from "slow", still in "server_error"
    log.add(_ctx("err2", status=500, code="inference_failed"))
    assert log.get("both") is None


def test_a_slow_request_has_an_exemplar_that_opens_its_detail(make_client: MakeClient) -> None:
    """A request over the slow threshold is an exemplar of the request histogram (OpenMetrics only) and
    /v1/requests/{id} shows its stages, sizes, batch, replica and status."""
    client = make_client(slow_request_s=0.0, exemplar_interval_s=3600, replica="replica-a")
    r = client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "yes", "premise": "a box"},
                    headers={"x-request-id": "slow-1"})
    assert r.status_code == 200
    text = client.get("/metrics", headers=OPENMETRICS).text
    exemplars = _exemplars(text, "ofa_ve_request_duration_seconds_bucket")
    assert [e.labels for labels, e in exemplars if labels["endpoint"] == "entailment"] == [
        {"request_id": "slow-1"}]
    assert "# {" not in client.get("/metrics").text  # the classic text format has no exemplars
    detail = client.get("/v1/requests/slow-1").json()
    assert detail["request_id"] == "slow-1"
    assert (detail["endpoint"], detail["status_code"], detail["replica"]) == ("entailment", 200, "replica-a")
    assert "slow" in detail["kept_as"]
    assert set(detail["timings_ms"]) == {"wait", "read", "decode", "preprocess", "queue", "inference",
                                         "postprocess"}
    (item,) = detail["items"]
    assert (item["image_pixels"], item["text_chars"], item["premise_chars"]) == (1200, 3, 5)
    assert item["image_bytes"] == len(png_bytes((40, 30)))
    assert item["batch_id"] >= 1 and item["batch_size"] == 1
    assert detail["error"] is None


def test_every_exemplar_of_the_stage_histogram_opens_a_detail(make_client: MakeClient) -> None:
    """Stage exemplars are sampled requests, and every one of them is in the request log."""
    client = make_client(exemplar_interval_s=3600)
    for i in range(5):
        client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "yes"},
                    headers={"x-request-id": f"q{i}"})
    text = client.get("/metrics", headers=OPENMETRICS).text
    exemplars = _exemplars(text, "ofa_ve_stage_duration_seconds_bucket")
    stages = {labels["stage"] for labels, _ in exemplars}
    assert {"decode", "preprocess", "queue", "inference", "postprocess"} <= stages
    for _, exemplar in exemplars:
        rid = exemplar.labels["request_id"]
        assert client.get(f"/v1/requests/{rid}").status_code == 200, rid


def test_a_failed_request_is_kept_with_its_error_and_cause(make_client: MakeClient) -> None:
    """A 500 is kept with its error code and exception class, whatever the sampling."""
    client = make_client(model=FakeModel(fail=lambda batch: KeyError("x")), warmup=False,
                         exemplar_interval_s=3600)
    client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "a"}, headers={"x-request-id": "warm"})
    client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "b"}, headers={"x-request-id": "bad"})
    detail = client.get("/v1/requests/bad").json()
    assert (detail["status_code"], detail["error"]["code"], detail["cause"]) == (500, "inference_failed",
                                                                                 "KeyError")
    assert "server_error" in detail["kept_as"]


def test_batch_calls_show_every_item(make_client: MakeClient) -> None:
    """A batch call's detail lists each item with its own error or forward pass."""
    client = make_client(slow_request_s=0.0)
    client.post("/v1/entailment/batch", headers={"x-request-id": "b1"}, json={"items": [
        {"image_base64": IMAGE, "text": "yes"}, {"image_base64": "%%%", "text": "x"}]})
    items = client.get("/v1/requests/b1").json()["items"]
    assert items[0]["batch_size"] >= 1 and items[0]["error"] is None
    assert items[1]["error"]["code"] == "invalid_base64"


def test_unknown_ids_are_404_and_a_browser_gets_html(make_client: MakeClient) -> None:
    """An id not kept is a 404 with a reason; Accept: text/html renders the record as a page, escaped."""
    client = make_client(slow_request_s=0.0)
    missing = client.get("/v1/requests/never-seen")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "request_not_found"
    client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "<b>yes</b>"},
                headers={"x-request-id": "h1"})
    page = client.get("/v1/requests/h1", headers={"accept": "text/html,application/json;q=0.9"})
    assert page.headers["content-type"].startswith("text/html")
    assert "request h1" in page.text and "<b>" not in page.text


def test_a_miss_asks_the_peers_once(make_client: MakeClient) -> None:
    """A request kept by another replica is found through the peer lookup; a peer's own lookup does not
    fan out again."""
    asked: list[str] = []

    def fetch(url: str, timeout_s: float) -> dict[str, Any] | None:
        asked.append(url)
        has_it = url.startswith("http://10.0.0.6:") and url.endswith("/elsewhere")
        return {"request_id": "elsewhere", "replica": "replica-b"} if has_it else None

    peers = PeerLookup("ofa-ve.test", 8000, 1.0, fetch=fetch)

    async def addresses() -> list[str]:
        return ["10.0.0.5", "10.0.0.6"]

    peers.addresses = addresses  # type: ignore[method-assign]
    client = make_client(app_kwargs={"peers": peers})
    found = client.get("/v1/requests/elsewhere")
    assert (found.status_code, found.json()["replica"]) == (200, "replica-b")
    assert sorted(asked) == ["http://10.0.0.5:8000/v1/requests/elsewhere",
                             "http://10.0.0.6:8000/v1/requests/elsewhere"]
    asked.clear()
    assert client.get("/v1/requests/elsewhere", headers={PEER_HEADER: "1"}).status_code == 404
    assert asked == []


def test_peer_addresses_come_from_dns() -> None:
    """The peer name resolves through the resolver (localhost here); an unknown name gives no peers."""
    assert "127.0.0.1" in asyncio.run(PeerLookup("localhost", 8000, 2.0).addresses())
    assert asyncio.run(PeerLookup("no-such-host.invalid", 8000, 2.0).addresses()) == []
    assert PeerLookup("x", 8000, 1.0).url("fd00::1", "r") == "http://[fd00::1]:8000/v1/requests/r"


def test_metrics_render_off_the_event_loop(make_client: MakeClient, registry: CollectorRegistry) -> None:
    """Collectors run on the metrics render thread, never on the event loop's thread."""
    threads: list[str] = []

    class Spy:
        def collect(self) -> Any:
            threads.append(threading.current_thread().name)
            yield GaugeMetricFamily("spy_value", "Which thread collects.", value=1)

    client = make_client()
    registry.register(Spy())  # type: ignore[arg-type]
    r = client.get("/metrics", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and "spy_value 1.0" in r.text
    assert r.headers["content-encoding"] == "gzip"
    assert threads and all(name.startswith("metrics-render") for name in threads)
    filtered = client.get("/metrics?name[]=ofa_ve_model_ready").text
    assert "ofa_ve_model_ready 1.0" in filtered and "ofa_ve_requests_total" not in filtered


@pytest.mark.parametrize("accept", ["application/openmetrics-text; version=1.0.0", "text/plain"])
def test_the_format_follows_the_accept_header(make_client: MakeClient, accept: str) -> None:
    """OpenMetrics when asked for (as Prometheus does), the classic text format otherwise."""
    r = make_client().get("/metrics", headers={"accept": accept})
    assert r.headers["content-type"].startswith(accept.split(";")[0])
    assert r.text.rstrip().endswith("# EOF") == accept.startswith("application/openmetrics")
