"""A first-time user's view: without looking at any robot, the relay's inbox shows the Watchdog arriving
and the README's test alert, in a real browser (headless Chromium, screenshot checked)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from PIL import Image

from tests.integration.stack.stack import Stack, wait_for
from tests.support.env import require_browser

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.browser, pytest.mark.timeout(2400)]

# The inbox page's colours (webhook_relay/inboxpage.py): firing border, heartbeat border.
FIRING_RED = (0xD9, 0x30, 0x25)
HEARTBEAT_BLUE = (0x1A, 0x73, 0xE8)


def _pixels(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(n for n, colour in colours if all(abs(a - b) <= 6 for a, b in zip(colour, rgb, strict=True)))


def test_the_inbox_shows_the_watchdog_and_a_test_alert(stack: Stack) -> None:
    """The README's `amtool alert add` test alert reaches the inbox target (and its messages list), the
    last Watchdog shows in the heartbeat section, and Chromium renders both: red firing card, blue
    heartbeat card."""
    stack.run("exec", "-T", "alertmanager", "amtool", "--alertmanager.url=http://127.0.0.1:9093", "alert",
              "add", "alertname=TestAlert", "severity=warning", "service=manual",
              "--annotation=summary=manual-test", "--annotation=summary_zh=手动测试")

    def arrived() -> bool:
        data = stack.inbox()
        beats = {b["route"]: b for b in data["heartbeats"]}
        titles = {(m["target"], m["title"]) for m in data["messages"]}
        return "Watchdog" in beats["watchdog"]["alertnames"] and ("inbox", "[FIRING:1] TestAlert") in titles

    wait_for(arrived, "the Watchdog and TestAlert in the inbox", timeout=240, interval=3)
    chromium = require_browser()
    from playwright.sync_api import Route, sync_playwright

    base = stack.url("webhook-relay", 8080)
    shot = stack.work / "inbox.png"

    def loopback_only(route: Route) -> None:
        if urlparse(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--headless=new",
                                                                     "--disable-gpu"])
        try:
            # HTTP Basic, as a person answers the browser's prompt: any name, the relay token.
            login = {"username": "me", "password": stack.secret("relay_token")}
            context = browser.new_context(http_credentials=login, viewport={"width": 1100, "height": 900})
            page = context.new_page()
            page.route("**/*", loopback_only)
            page.goto(f"{base}/inbox?target=inbox", wait_until="load")
            card = page.locator('article.firing[data-target="inbox"]', has_text="TestAlert").first
            card.wait_for(timeout=30_000)
            heartbeat = page.locator('.beat[data-route="watchdog"]')
            assert "Watchdog" in heartbeat.inner_text()
            assert "manual-test" in card.inner_text()  # the inbox speaks English: the English summary
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    with Image.open(shot) as image:
        assert image.width >= 1000 and image.height >= 400
        assert _pixels(image, FIRING_RED) > 200, "no red firing card in the screenshot"
        assert _pixels(image, HEARTBEAT_BLUE) > 200, "no blue heartbeat card in the screenshot"
