"""The local inbox: what every target got, kept per target, shown at GET /inbox behind the relay's login."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from webhook_relay.app import create_app
from webhook_relay.config import parse_config
from webhook_relay.inbox import Inbox
from webhook_relay.outbox import Outbox
from webhook_relay.render import Message

from tests.support.relay import alert, notification

CONFIG = """
server: {{auth_token: inbox-token}}
storage: {{path: {db}}}
inbox: {{keep_per_target: {keep}}}
targets:
  dingtalk-ops: {{kind: dingtalk, access_token: dt, url: "http://chat.test/robot/send"}}
  wecom-ops: {{kind: wecom, optional: true, key: "${{WK:-}}"}}
  inbox: {{kind: inbox, language: en, timezone: UTC}}
routes:
  critical: {{targets: [dingtalk-ops, wecom-ops, inbox]}}
  watchdog:
    targets: []
    heartbeat: {{notify: [dingtalk-ops, inbox], forward_url: "https://hc-ping.test/abc"}}
"""


BEARER = {"Authorization": "Bearer inbox-token"}


def basic(password: str, user: str = "admin") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def relay(tmp_path):
    """An app (sender driven by hand) whose DingTalk robot answers from `replies` (default: ok)."""
    opened: list[Outbox] = []

    def make(keep: int = 200, replies: list[dict] | None = None):
        script = list(replies or [])

        def chat(request: httpx.Request) -> httpx.Response:
            if request.url.host == "hc-ping.test":
                return httpx.Response(200, text="OK")
            return httpx.Response(200, json=script.pop(0) if script else {"errcode": 0, "errmsg": "ok"})

        config = parse_config(CONFIG.format(db=tmp_path / "o.db", keep=keep), env={})
        outbox = Outbox(tmp_path / "o.db")
        opened.append(outbox)
        client = httpx.AsyncClient(transport=httpx.MockTransport(chat))
        app = create_app(config, CollectorRegistry(), outbox, client=client, run_sender=False)
        return TestClient(app), app, outbox

    yield make
    for outbox in opened:
        outbox.close()


def deliver(app, web: TestClient, payload: dict) -> None:
    assert web.post("/webhook/critical", json=payload, headers=BEARER).status_code == 202
    for target in ("dingtalk-ops", "inbox"):
        asyncio.run(app.state.sender.step(target))


def test_inbox_keeps_the_newest_messages_per_target(tmp_path):
    """Past keep_per_target the oldest rows of that target go; other targets keep theirs; newest first."""
    outbox = Outbox(tmp_path / "o.db")
    try:
        inbox = Inbox(outbox, keep_per_target=3)
        for i in range(5):
            inbox.record("a", "dingtalk", Message(f"a{i}", "x"), at=float(i))
        inbox.record("b", "inbox", Message("b0", "y", status="resolved"), at=9.0)
        assert [e.title for e in inbox.entries("a")] == ["a4", "a3", "a2"]
        assert [e.title for e in inbox.entries()] == ["b0", "a4", "a3", "a2"]
        assert inbox.counts() == {"a": 3, "b": 1}
        assert inbox.entries("b")[0].status == "resolved"
    finally:
        outbox.close()


def test_inbox_page_needs_the_token_and_asks_the_browser_for_it(relay):
    """No or wrong credentials: 401 with a Basic challenge; Basic with the token (any user) or Bearer: 200."""
    web, _, _ = relay()
    for headers in ({}, basic("wrong"), {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!"}):
        reply = web.get("/inbox", headers=headers)
        assert reply.status_code == 401, headers
        assert reply.headers["www-authenticate"].startswith('Basic realm="webhook-relay inbox"')
    assert web.get("/inbox", headers=basic("inbox-token", user="anyone")).status_code == 200
    assert web.get("/inbox", headers={"Authorization": "Bearer inbox-token"}).status_code == 200
    # The API keeps to bearer tokens: Basic is for the browser page only.
    assert web.get("/api/v1/dead-letters", headers=basic("inbox-token")).status_code == 401


def test_every_target_shows_what_it_got_newest_first_with_firing_and_resolved_colours(relay):
    """A firing then a resolved alert: the inbox target and the robot each show both, newest first."""
    web, app, _ = relay()
    deliver(app, web, notification(alert("DiskFull", summary="Disk <b>almost</b> full")))
    resolved = alert("DiskFull", status="resolved", ends="2026-11-25T03:00:00Z", summary="Disk almost full")
    deliver(app, web, notification(resolved))
    data = web.get("/api/v1/inbox", headers=basic("inbox-token")).json()
    shown = [(m["target"], m["status"], m["title"]) for m in data["messages"]]
    assert shown == [
        ("inbox", "resolved", "[RESOLVED:1] DiskFull"),
        ("dingtalk-ops", "resolved", "[RESOLVED:1] DiskFull"),
        ("inbox", "firing", "[FIRING:1] DiskFull"),
        ("dingtalk-ops", "firing", "[FIRING:1] DiskFull"),
    ]
    assert data["disabled"] == ["wecom-ops"]
    page = web.get("/inbox", headers=basic("inbox-token")).text
    newest = page.index('class="resolved" data-target="inbox"')
    assert newest < page.index('class="firing" data-target="inbox"')
    # Rendered markdown, colours as spans, alert text escaped (never markup of its own).
    assert "<h3>" in page and '<span style="color:#D93025">' in page
    assert "&lt;b&gt;almost&lt;/b&gt;" in page and "<b>almost</b>" not in page
    assert "Not configured (no credentials in .env): wecom-ops" in page
    only = web.get("/inbox", params={"target": "dingtalk-ops"}, headers=basic("inbox-token")).text
    assert 'data-target="inbox"' not in only and only.count('data-target="dingtalk-ops"') == 2


def test_refused_messages_show_why(relay):
    """A message the robot refused for good is shown as refused, with the robot's reason."""
    web, app, _ = relay(replies=[{"errcode": 300001, "errmsg": "token is not exist"}])
    deliver(app, web, notification(alert("Refused")))
    [entry] = app.state.sender.inbox.entries("dingtalk-ops")
    assert (entry.outcome, entry.title) == ("refused", "[FIRING:1] Refused")
    assert entry.detail.startswith("bad_token: errcode 300001")
    page = web.get("/inbox", headers=basic("inbox-token")).text
    assert "Refused: bad_token" in page


def test_the_last_watchdog_is_shown_without_posting_it(relay):
    """A Watchdog on the heartbeat route appears in the heartbeat section (name, count, forward), and in
    no target's messages."""
    web, _, outbox = relay()
    watchdog = notification(alert("Watchdog", severity="none", summary="Alert pipeline heartbeat"))
    with web:
        for _ in range(2):
            assert web.post("/webhook/watchdog", json=watchdog, headers=BEARER).status_code == 202
        for _ in range(20):
            web.get("/-/healthy")  # lets the forward task finish
        data = web.get("/api/v1/inbox", headers=basic("inbox-token")).json()
        page = web.get("/inbox", headers=basic("inbox-token")).text
    [beat] = data["heartbeats"]
    assert (beat["route"], beat["received"], beat["alertnames"], beat["forward_result"]) == (
        "watchdog", 2, ["Watchdog"], "ok")
    assert data["messages"] == [] and outbox.due("inbox", 1e12) == []
    assert "<strong>Watchdog</strong> Alert pipeline heartbeat" in page
    assert "2 since the relay started" in page
    assert "hc-ping" not in page  # the push URL is a secret


def test_the_inbox_target_needs_no_credential_and_stores_through_the_outbox(relay):
    """The inbox is an ordinary target: queued in the outbox, delivered by storing it."""
    web, app, outbox = relay()
    assert web.post("/webhook/critical", json=notification(), headers=BEARER).status_code == 202
    assert len(outbox.due("inbox", 1e12)) == 1
    asyncio.run(app.state.sender.step("inbox"))
    assert outbox.due("inbox", 1e12) == []
    [entry] = app.state.sender.inbox.entries("inbox")
    assert json.dumps(entry.text).count("HighErrorRate") >= 1 and entry.channel == "inbox"
