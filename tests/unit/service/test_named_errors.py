"""Every 500 named: unencodable text is a 422, unexpected failures keep their exception class as `cause`."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ofa_ve.errors import CLIENT_ERROR_CODES, ERROR_CODES, SERVER_ERROR_CODES, ClientError, ServiceError
from ofa_ve.imaging import check_text
from ofa_ve.metrics import MAX_CAUSES, OTHER_CAUSE, CauseLabels
from PIL import Image
from prometheus_client import CollectorRegistry

from tests.unit.service.conftest import FakeModel, png_bytes

MakeClient = Callable[..., TestClient]
IMAGE = base64.b64encode(png_bytes()).decode()


def _json(body: str) -> dict[str, Any]:
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


def test_a_lone_surrogate_is_valid_json_but_unencodable_text() -> None:
    """"\\ud800" parses as JSON into a str that is not UTF-8: check_text refuses it with its own code."""
    text = json.loads('"a \\ud800 b"')
    with pytest.raises(ClientError) as refused:
        check_text(text, field="text", max_chars=100)
    assert (refused.value.status_code, refused.value.code) == (422, "unencodable_text")
    assert "character 2" in refused.value.message


@pytest.mark.parametrize("field", ["text", "premise"])
def test_unencodable_text_is_a_422_not_a_500(make_client: MakeClient, registry: CollectorRegistry,
                                             field: str) -> None:
    """A JSON body whose text or premise holds a lone surrogate gets 422 unencodable_text, no 500."""
    other = "premise" if field == "text" else "text"
    body = f'{{"image_base64": "{IMAGE}", "{field}": "bad \\ud800 text", "{other}": "fine"}}'
    r = make_client().post("/v1/entailment", **_json(body))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unencodable_text")
    assert registry.get_sample_value("ofa_ve_errors_total", {"type": "unencodable_text", "cause": ""}) == 1
    assert registry.get_sample_value(
        "ofa_ve_requests_total", {"endpoint": "entailment", "status_code": "500", "result": "server_error"}
    ) is None


def test_unencodable_text_in_a_batch_fails_that_item_only(make_client: MakeClient) -> None:
    """In a batch call the unencodable item gets its 422 code, the others their answers."""
    body = (f'{{"items": [{{"image_base64": "{IMAGE}", "text": "yes"}}, '
            f'{{"image_base64": "{IMAGE}", "text": "\\udfff"}}]}}')
    r = make_client().post("/v1/entailment/batch", **_json(body))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["label"] == "YES"
    assert results[1]["error"]["code"] == "unencodable_text"


def test_a_tokenizer_unicode_error_is_a_422_too(make_client: MakeClient) -> None:
    """Whatever slips past the text check and makes the model's tokenizer raise UnicodeError is a 422."""

    class Picky(FakeModel):
        def prepare(self, image: Image.Image, text: str, premise: str | None) -> Any:
            raise UnicodeEncodeError("utf-8", text, 0, 1, "surrogates not allowed")

    client = make_client(model=Picky(), warmup=False)
    r = client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "ok"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unencodable_text")


def test_an_unexpected_model_exception_is_500_inference_failed_with_its_class(
    make_client: MakeClient, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """A model exception nobody foresaw is 500 inference_failed, counted with cause = its class and logged."""
    model = FakeModel(fail=lambda batch: KeyError("decoder_prompts"))
    with caplog.at_level(logging.ERROR, logger="ofa_ve.batching"):
        r = make_client(model=model, warmup=False).post(
            "/v1/entailment", json={"image_base64": IMAGE, "text": "x"})
    assert (r.status_code, r.json()["error"]["code"]) == (500, "inference_failed")
    assert "KeyError" in r.json()["error"]["message"]
    assert registry.get_sample_value("ofa_ve_errors_total",
                                     {"type": "inference_failed", "cause": "KeyError"}) == 1
    assert any(getattr(rec, "cause", None) == "KeyError" for rec in caplog.records)


def test_an_exception_outside_the_model_is_500_internal_error_with_its_class(
    make_client: MakeClient, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the request path itself is 500 internal_error with cause = its class, logged."""
    client = make_client()

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ZeroDivisionError("oops")

    client.app.state.service.infer = broken
    with caplog.at_level(logging.ERROR, logger="ofa_ve.api"):
        r = client.post("/v1/entailment", json={"image_base64": IMAGE, "text": "x"})
    assert (r.status_code, r.json()["error"]["code"]) == (500, "internal_error")
    assert registry.get_sample_value("ofa_ve_errors_total",
                                     {"type": "internal_error", "cause": "ZeroDivisionError"}) == 1
    (record,) = [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
    assert record.cause == "ZeroDivisionError"  # type: ignore[attr-defined]
    assert record.exc_info is not None


def test_the_cause_label_is_bounded() -> None:
    """Past MAX_CAUSES distinct exception classes, the rest are counted as `other`."""
    causes = CauseLabels()
    seen = [causes(f"Error{i}") for i in range(MAX_CAUSES + 5)]
    assert seen[:MAX_CAUSES] == [f"Error{i}" for i in range(MAX_CAUSES)]
    assert set(seen[MAX_CAUSES:]) == {OTHER_CAUSE}
    assert causes("Error3") == "Error3"
    assert causes(None) == ""


def test_every_5xx_code_is_a_named_server_error() -> None:
    """The error set names the new failures; client and server codes do not overlap."""
    assert {"overloaded", "gpu_out_of_memory", "device_fault", "inference_failed"} <= set(SERVER_ERROR_CODES)
    assert "unencodable_text" in CLIENT_ERROR_CODES
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)
    assert repr(ServiceError("x", cause="KeyError")) == "ServiceError(500, 'internal_error', 'x')"
