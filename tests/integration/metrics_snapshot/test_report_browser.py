"""The day's report.html opened from disk in Debian's headless Chromium: every chart drawn, none blank."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.integration.metrics_snapshot.conftest import Snapshot
from tests.support.env import require_browser

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHARTS = ["latency", "latency-endpoint", "qps", "errors", "stages", "gpu-memory", "gpu-utilization", "load"]
FLAGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _ink(png: bytes) -> tuple[float, int]:
    """Share of pixels that are not near-white, and how many distinct strong colours there are."""
    data = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    pixels = [(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)]
    inked = [p for p in pixels if min(p) < 230]
    colours = {(r // 32, g // 32, b // 32) for r, g, b in inked if max(r, g, b) - min(r, g, b) > 60}
    return len(inked) / len(pixels), len(colours)


def test_the_report_opens_without_a_server_and_shows_every_chart(snapshot: Snapshot) -> None:
    """file:// loads with no request leaving the page; each of the eight charts has lines in colour; an empty
    chart (the check's counterpart) has almost no ink."""
    chromium = require_browser()
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.on("request", lambda request: requests.append(request.url))
            page.goto((snapshot.folder / "report.html").as_uri(), wait_until="load")
            assert page.title() == "OFA-VE metrics 2025-06-01"
            shots = {key: page.locator(f"#chart-{key}").screenshot() for key in CHARTS}
            lines = {key: page.locator(f"#chart-{key} polyline").count() for key in CHARTS}
            page.set_content('<figure id="blank"><svg width="760" height="260"><text x="380" y="130">no data'
                             "</text></svg></figure>")
            blank = page.locator("#blank").screenshot()
        finally:
            browser.close()
    assert [url for url in requests if not url.startswith("file://")] == []
    for key in CHARTS:
        share, colours = _ink(shots[key])
        assert lines[key] >= 1, key
        assert share > 0.02 and colours >= 1, (key, share, colours)
    assert _ink(blank)[0] < 0.01
