"""GET /v1/errors: a replica's last failed requests, with request ids, and nothing a caller wrote."""

from __future__ import annotations

import base64
from collections.abc import Callable

from fastapi.testclient import TestClient
from ofa_ve.context import RequestContext
from ofa_ve.redact import redact_message
from ofa_ve.requestlog import RequestLog

from tests.unit.service.conftest import FakeModel, png_bytes

MakeClient = Callable[..., TestClient]
IMAGE = base64.b64encode(png_bytes((40, 30))).decode()


def test_messages_lose_quotes_urls_secrets_and_tokens() -> None:
    """Quoted values, URLs, secret pairs and long opaque tokens are masked; the rest of the words stay."""
    text = ("inference failed: 'a cat on my sofa' at https://user:pw@hub.example/x?token=abc "
            "api_key=sk-12345 blob QWxhZGRpbjpvcGVuIHNlc2FtZSBzZXNhbWUgc2VzYW1l done")
    out = redact_message(text)
    assert out is not None
    for leaked in ("cat on my sofa", "hub.example", "pw@", "sk-12345", "QWxhZGRpbjpv"):
        assert leaked not in out, out
    assert out.startswith("inference failed: '…' at <url> api_key=<secret> blob <redacted> done")
    assert len(redact_message("x " * 500) or "") <= 160
    assert redact_message(None) is None


def test_recent_returns_the_newest_of_one_kind_first() -> None:
    """The log's `recent` lists a kind's records newest first, at most `limit` of them."""
    log = RequestLog(per_kind=5, slow_s=1.0, replica="r")
    for i in range(4):
        ctx = RequestContext(f"e{i}", 0.0, status_code=500, duration_s=0.01)
        ctx.error = {"code": "inference_failed", "message": "m"}
        log.add(ctx)
    assert [r["request_id"] for r in log.recent("server_error", 2)] == ["e3", "e2"]
    assert log.recent("client_error", 5) == [] and log.recent("server_error", 0) == []


def test_the_view_lists_server_errors_with_ids_and_causes(make_client: MakeClient) -> None:
    """A failed inference shows up with its request id, code, cause and a redacted message; fast
    successes and client errors do not (client errors have their own kind, without messages)."""
    client = make_client(model=FakeModel(fail=lambda batch: KeyError("secret=hunter2")), warmup=False)
    client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "a dog"},
                headers={"x-request-id": "bad-1"})
    client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "   "},
                headers={"x-request-id": "client-1"})
    body = client.get("/v1/errors?limit=3").json()
    assert body["kind"] == "server_error" and body["replica"]
    [record] = body["errors"]
    assert (record["request_id"], record["status_code"], record["code"], record["cause"]) == (
        "bad-1", 500, "inference_failed", "KeyError")
    assert "hunter2" not in str(body) and "a dog" not in str(body)
    clients = client.get("/v1/errors?kind=client_error").json()["errors"]
    assert [(r["request_id"], r["code"], r["message"]) for r in clients] == [("client-1", "empty_text", None)]
    assert client.get("/v1/errors?kind=slow").status_code == 422
