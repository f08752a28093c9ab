"""The UI's submit handler: same validation and inference path, counted as endpoint="ui"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ofa_ve.api import Tracker
from ofa_ve.engine import Engine
from ofa_ve.logging_setup import RequestIdFilter
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.service import EntailmentService
from ofa_ve.settings import Settings
from ofa_ve.ui import UiHandler
from prometheus_client import CollectorRegistry

from tests.unit.service.conftest import FakeModel, png_bytes


@pytest.fixture
def handler() -> UiHandler:
    """A UI handler over a loaded engine with a fake model."""
    settings = Settings(model="fake/model", enable_ui=False, max_wait_ms=0, max_image_bytes=4096)
    metrics = ServiceMetrics(CollectorRegistry(), process_collectors=False)
    engine = Engine(settings, metrics, model_factory=lambda _s: FakeModel())
    engine.start()
    assert engine.wait_loaded(10)
    yield UiHandler(settings, Tracker(settings, metrics), EntailmentService(settings, metrics, engine))
    engine.stop()


def _count(handler: UiHandler, status: str, result: str) -> float:
    value = handler.tracker.metrics.registry.get_sample_value(
        "ofa_ve_requests_total", {"endpoint": "ui", "status_code": status, "result": result})
    return value or 0.0


def test_label_and_score_for_a_valid_upload(handler: UiHandler, tmp_path: Path) -> None:
    """A valid upload returns the label and score and counts a ui success."""
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes())
    assert asyncio.run(handler(str(image), "yes indeed", "")) == ("YES", 0.75, "")
    assert _count(handler, "200", "success") == 1


def test_bad_upload_shows_the_error_and_counts_a_client_error(handler: UiHandler, tmp_path: Path) -> None:
    """A non-image upload shows the error code and is a ui client error, not a server error."""
    bogus = tmp_path / "notes.png"
    bogus.write_bytes(b"just some text, not a picture")
    label, score, error = asyncio.run(handler(str(bogus), "x", ""))
    assert (label, score) == ("", None)
    assert error.startswith("unsupported_image_type")
    assert _count(handler, "415", "client_error") == 1
    registry = handler.tracker.metrics.registry
    labels = {"type": "unsupported_image_type", "cause": ""}
    assert registry.get_sample_value("ofa_ve_errors_total", labels) == 1


def test_missing_image_and_oversize_upload(handler: UiHandler, tmp_path: Path) -> None:
    """No file is a 422; a file over max_image_bytes is a 413 before it is read."""
    assert asyncio.run(handler(None, "x", ""))[2].startswith("invalid_request")
    big = tmp_path / "big.bmp"
    big.write_bytes(png_bytes((100, 100), "BMP"))
    assert asyncio.run(handler(str(big), "x", ""))[2].startswith("image_too_large")
    assert _count(handler, "413", "client_error") == 1


def test_request_id_is_the_callers_when_well_formed(
    handler: UiHandler, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A well-formed caller id tags the UI request's log line; a malformed one is replaced."""
    image = tmp_path / "a.png"
    image.write_bytes(png_bytes())
    caplog.handler.addFilter(RequestIdFilter())  # what the service's log setup installs
    with caplog.at_level("INFO", logger="ofa_ve.api"):
        asyncio.run(handler(str(image), "yes", "", "ui-caller-7"))
        asyncio.run(handler(str(image), "yes", "", "bad id\nwith newline"))
    ids = [r.request_id for r in caplog.records if r.getMessage() == "request finished"]
    assert ids[0] == "ui-caller-7"
    assert ids[1] != "bad id\nwith newline" and len(ids[1]) == 32
