"""Load shedding with the real pipeline: past the admission budget, 503 overloaded + Retry-After at once."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.service import Server, image_bytes, start_server, stop_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A service admitting 2 items at once (the queue capacity) and no batching, so a burst must overflow."""
    server = start_server(tmp_path_factory.mktemp("ofa-ve-overload"), "overload", OFA_VE_QUEUE_CAPACITY="2",
                          OFA_VE_MAX_BATCH_SIZE="1", OFA_VE_MAX_WAIT_MS="0", OFA_VE_ENABLE_UI="false")
    yield server
    stop_server(server)


def test_burst_overflows_with_503_and_stays_healthy(small_queue: Server) -> None:
    """Of a 48-request burst, the overflow gets 503 overloaded + Retry-After, the rest 200, all counted."""
    body = {"image_base64": base64.b64encode(image_bytes()).decode(), "text": "a red square"}
    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(48) as pool:
        responses = list(pool.map(lambda _: client.post(f"{small_queue.url}/v1/entailment", json=body),
                                  range(48)))
    statuses = [r.status_code for r in responses]
    refused = [r for r in responses if r.status_code == 503]
    assert set(statuses) <= {200, 503}
    assert refused, "no request was shed"
    assert statuses.count(200) >= 2  # the budget: queued, decoding and running items together
    for r in refused:
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "overloaded"
    metrics = httpx.get(f"{small_queue.url}/metrics").text
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(metrics) for s in f.samples}
    assert values[("ofa_ve_rejected_total", (("reason", "overloaded"),))] == len(refused)
    assert values[("ofa_ve_rejected_total", (("reason", "queue_full"),))] == 0
    assert values[("ofa_ve_queue_capacity", ())] == 2
    assert values[("ofa_ve_admission_limit_items", ())] == 2
    assert values[("ofa_ve_admitted_items", ())] == 0
    assert values[("ofa_ve_requests_total", (("endpoint", "entailment"), ("result", "server_error"),
                                             ("status_code", "503")))] == len(refused)
    assert httpx.get(f"{small_queue.url}/readyz").status_code == 200
    ok = httpx.post(f"{small_queue.url}/v1/entailment", json=body, timeout=30)
    assert ok.status_code == 200
