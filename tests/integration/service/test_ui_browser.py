"""The Gradio UI in Debian's headless Chromium, against the real pipeline on the tiny model."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.env import require_browser
from tests.support.service import Server, image_bytes

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _ui_successes(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "ofa_ve_requests_total" and s.labels == {
                "endpoint": "ui", "status_code": "200", "result": "success"}:
                return s.value
    return 0.0


def test_upload_submit_and_read_the_label(service: Server, tmp_path: Path) -> None:
    """The page says the model is ready; uploading an image and a sentence in /ui shows a YES/NO/MAYBE
    label, counted as endpoint="ui"."""
    chromium = require_browser()
    from playwright.sync_api import Route, sync_playwright

    picture = tmp_path / "red.png"
    picture.write_bytes(image_bytes((120, 80)))
    before = _ui_successes(service)

    def loopback_only(route: Route) -> None:
        # The page may ask for web fonts or CDNs; nothing may leave the machine.
        if urlparse(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium,
                                     args=["--no-sandbox", "--headless=new", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.route("**/*", loopback_only)
            page.goto(f"{service.url}/ui/", wait_until="domcontentloaded")
            status = page.locator("#model-status")
            status.get_by_text("Model: ready.").wait_for(timeout=30_000)
            page.locator("#image input[type=file]").set_input_files(str(picture))
            page.locator("#text textarea, #text input").first.fill("a red square")
            page.locator("#submit").click()
            label = page.locator("#label textarea, #label input").first
            page.wait_for_function(
                "el => ['YES', 'NO', 'MAYBE'].includes(el.value)", arg=label.element_handle(), timeout=60_000
            )
            value = label.input_value()
        finally:
            browser.close()
    assert value in {"YES", "NO", "MAYBE"}
    assert _ui_successes(service) == before + 1
