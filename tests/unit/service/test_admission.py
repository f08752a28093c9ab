"""Admission control before the body is read, and request bodies bounded with or without Content-Length."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ofa_ve import service as service_module
from ofa_ve.admission import Admission
from ofa_ve.errors import OverloadedError
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.settings import Settings
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from tests.unit.service.conftest import png_bytes

MakeClient = Callable[..., TestClient]
IMAGE = base64.b64encode(png_bytes()).decode()


def test_admission_refuses_past_either_budget_and_releases_once() -> None:
    """Items and bytes are admitted up to their budgets, refused past them, and released exactly once."""
    registry = CollectorRegistry()
    admission = Admission(3, 1000, ServiceMetrics(registry, process_collectors=False))
    first = admission.admit(2, 600)
    with pytest.raises(OverloadedError, match="2 of 3 items"):
        admission.admit(2, 0)
    with pytest.raises(OverloadedError, match="600 of 1000 request bytes"):
        admission.admit(1, 500)
    second = admission.admit(1, 400)
    assert (admission.items, admission.body_bytes) == (3, 1000)
    assert registry.get_sample_value("ofa_ve_admitted_items") == 3
    assert registry.get_sample_value("ofa_ve_admitted_body_bytes") == 1000
    first.release()
    first.release()
    assert (admission.items, admission.body_bytes) == (1, 400)
    with second:
        pass
    assert (admission.items, admission.body_bytes) == (0, 0)


def test_a_ticket_grows_to_a_batch_and_shrinks_its_body() -> None:
    """A batch call's ticket grows to its item count (or is refused) and gives back unread body bytes."""
    admission = Admission(4, 1000)
    ticket = admission.admit(1, 1000)
    ticket.resize_body(300)
    assert admission.body_bytes == 300
    ticket.grow(4)
    assert admission.items == 4
    other = Admission(4, 1000)
    other.admit(2, 0)
    small = other.admit(1, 0)
    with pytest.raises(OverloadedError):
        small.grow(3)
    assert other.items == 3  # the refused growth took nothing


def test_the_body_budget_must_hold_the_largest_accepted_body() -> None:
    """A body budget below the largest body an endpoint accepts is refused: such a request could never run."""
    with pytest.raises(ValidationError, match="max_body_bytes_in_flight"):
        Settings(model="m", max_body_bytes_in_flight=1024 * 1024, max_batch_body_bytes=2 * 1024 * 1024)


def _raw_post(client: TestClient, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[list[Any], int]:
    """POSTs through the ASGI interface, counting how often the app asked for the body."""
    reads = {"n": 0}

    async def receive() -> dict[str, Any]:
        reads["n"] += 1
        return {"type": "http.request", "body": b"{}", "more_body": False}

    messages: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("test", 80), "state": {}}

    async def call() -> None:
        await client.app(scope, receive, send)

    client.portal.call(call)  # type: ignore[union-attr]
    return messages, reads["n"]


@pytest.mark.parametrize("path", ["/v1/entailment", "/v1/entailment/batch"])
def test_a_full_replica_refuses_before_reading_the_body(make_client: MakeClient, path: str) -> None:
    """With the budget taken, a request gets 503 overloaded + Retry-After and its body is never read."""
    client = make_client(max_in_flight=2)
    held = client.app.state.service.admission.admit(2, 0)
    try:
        messages, reads = _raw_post(client, path, [(b"content-type", b"application/json"),
                                                   (b"content-length", b"100")])
    finally:
        held.release()
    start = messages[0]
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"1"
    assert b'"overloaded"' in messages[1]["body"]
    assert reads == 0


def test_a_batch_counts_every_item_against_the_budget(make_client: MakeClient,
                                                      registry: CollectorRegistry) -> None:
    """A batch call needs room for all its items: refused 503 when they do not fit now, 413 never."""
    client = make_client(max_in_flight=4)
    items = [{"image_base64": IMAGE, "text": "yes"}] * 3
    held = client.app.state.service.admission.admit(2, 0)
    try:
        busy = client.post("/v1/entailment/batch", json={"items": items})
    finally:
        held.release()
    assert (busy.status_code, busy.json()["error"]["code"]) == (503, "overloaded")
    too_big = client.post("/v1/entailment/batch", json={"items": [items[0]] * 5})
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "batch_too_large")
    ok = client.post("/v1/entailment/batch", json={"items": items})
    assert ok.status_code == 200
    assert registry.get_sample_value("ofa_ve_admitted_items") == 0


def test_the_body_byte_budget_refuses_a_large_body_while_others_are_held(make_client: MakeClient) -> None:
    """Requests holding body bytes leave less room: a body that does not fit now gets 503 overloaded."""
    client = make_client(max_image_bytes=1024, max_batch_body_bytes=100_000, max_body_bytes_in_flight=100_000)
    held = client.app.state.service.admission.admit(1, 60_000)
    try:
        refused = client.post("/v1/entailment/batch", content=b"x" * 50_000,
                              headers={"content-type": "application/json"})
        fits = client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "yes"})
    finally:
        held.release()
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "overloaded")
    assert fits.status_code == 200


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b" " * part


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_batch_bodies_are_capped_by_their_setting(make_client: MakeClient, declared: bool) -> None:
    """A batch body over OFA_VE_MAX_BATCH_BODY_BYTES is 413 request_too_large, declared or chunked."""
    client = make_client(max_image_bytes=1024, max_batch_body_bytes=200_000)
    content: Any = b" " * 250_000 if declared else _chunks(250_000)
    r = client.post("/v1/entailment/batch", content=content, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "request_too_large")


def test_multipart_without_content_length_is_capped_too(make_client: MakeClient) -> None:
    """A chunked multipart upload larger than an image may be is cut off with 413, not spooled to disk."""
    client = make_client(max_image_bytes=4096)
    boundary = b"b0undary"
    head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n")

    def body() -> Iterator[bytes]:
        yield head
        yield from _chunks(300_000)

    r = client.post("/v1/entailment", content=body(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "request_too_large")
    ok = client.post("/v1/entailment", files={"image": ("a.png", png_bytes(), "image/png")},
                     data={"text": "yes"})
    assert ok.status_code == 200, ok.text


def test_batch_items_are_decoded_one_slot_at_a_time(make_client: MakeClient,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch call's base64 images are decoded only inside decode slots: never more at once than slots."""
    active = {"now": 0, "most": 0}
    lock = threading.Lock()
    original = service_module.b64decode

    def counting(value: str) -> bytes:
        with lock:
            active["now"] += 1
            active["most"] = max(active["most"], active["now"])
        time.sleep(0.02)
        try:
            return original(value)
        finally:
            with lock:
                active["now"] -= 1

    monkeypatch.setattr(service_module, "b64decode", counting)
    client = make_client(decode_concurrency=1)
    r = client.post("/v1/entailment/batch", json={"items": [{"image_base64": IMAGE, "text": "yes"}] * 6})
    assert r.status_code == 200
    assert active["most"] == 1
