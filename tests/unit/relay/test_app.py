"""The HTTP API: auth, status codes Alertmanager relies on, dead letters, preview, metrics."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from webhook_relay.app import create_app
from webhook_relay.logs import JsonFormatter
from webhook_relay.outbox import Outbox

from tests.support.relay import alert, notification, relay_config

AUTH = {"Authorization": "Bearer relay-token"}


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request to {request.url.host}")


@pytest.fixture
def relay(tmp_path):
    """A relay app without its background sender, on a fresh registry and outbox."""

    opened: list[Outbox] = []

    def make(transport=no_network, **delivery):
        config = relay_config(db=str(tmp_path / "o.db"), **delivery)
        outbox = Outbox(tmp_path / "o.db")
        registry = CollectorRegistry()
        client = httpx.AsyncClient(transport=httpx.MockTransport(transport))
        app = create_app(config, registry, outbox, client=client, run_sender=False)
        opened.append(outbox)
        return TestClient(app), outbox, registry, app

    yield make
    for outbox in opened:
        outbox.close()


def test_accepts_and_stores_before_answering(relay):
    """A valid webhook is committed for every target of the route, then answered 202."""
    client, outbox, registry, _ = relay()
    reply = client.post("/webhook/critical", json=notification(), headers=AUTH)
    assert reply.status_code == 202 and reply.json()["status"] == "accepted"
    assert len(outbox.due("dingtalk-ops", 1e12)) == 1 and len(outbox.due("wecom-ops", 1e12)) == 1
    assert (
        registry.get_sample_value(
            "webhook_relay_webhooks_received_total", {"route": "critical", "result": "accepted"}
        )
        == 1
    )


def test_resent_notification_is_acknowledged_but_stored_once(relay):
    """Alertmanager re-sending the same group (same alerts and times) is a 200 duplicate."""
    client, outbox, registry, _ = relay()
    payload = notification(alert(instance="a"), alert(instance="b"))
    assert client.post("/webhook/critical", json=payload, headers=AUTH).status_code == 202
    payload["alerts"].reverse()
    again = client.post("/webhook/critical", json=payload, headers=AUTH)
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert len(outbox.due("wecom-ops", 1e12)) == 1
    resolved = notification(alert(instance="a", status="resolved", ends="2026-11-25T03:00:00Z"))
    assert client.post("/webhook/critical", json=resolved, headers=AUTH).status_code == 202
    assert (
        registry.get_sample_value(
            "webhook_relay_webhooks_received_total", {"route": "critical", "result": "duplicate"}
        )
        == 1
    )


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "relay-token"}])
def test_requires_bearer_token(relay, headers):
    """Webhook and API calls without the right bearer token get 401 and store nothing."""
    client, outbox, _, _ = relay()
    reply = client.post("/webhook/critical", json=notification(), headers=headers)
    assert reply.status_code == 401 and "bearer" in reply.json()["error"]
    assert client.get("/api/v1/dead-letters", headers=headers).status_code == 401
    assert outbox.due("wecom-ops", 1e12) == []


def test_health_and_metrics_are_public(relay):
    """Probes and scrapes need no token."""
    client, _, _, _ = relay()
    assert client.get("/-/healthy").status_code == 200
    assert client.get("/-/ready").json() == {"status": "ready"}
    assert "webhook_relay_build_info" in client.get("/metrics").text


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/webhook/nope", notification(), 404, "unknown route"),
        ("/webhook/critical", {"status": "firing"}, 400, "alerts"),
        ("/webhook/critical", {**notification(), "status": "burning"}, 400, "status"),
        ("/webhook/critical", "not json", 400, "not an Alertmanager webhook"),
    ],
)
def test_caller_errors_are_4xx_with_reason(relay, path, body, status, needle):
    """Malformed payloads and unknown routes are the caller's fault: 4xx with a JSON reason."""
    client, _, _, _ = relay()
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    reply = client.post(path, headers=AUTH, **kwargs)
    assert reply.status_code == status and needle in reply.json()["error"]


def test_body_size_limit(relay):
    """A body over max_body_bytes is refused with 413."""
    client, _, _, _ = relay()
    big = notification(alert(description="x" * (1 << 20)))
    assert client.post("/webhook/critical", json=big, headers=AUTH).status_code == 413


def test_storage_failure_is_503_so_alertmanager_retries(relay):
    """When the payload cannot be committed the answer is 5xx, never 2xx or 4xx."""
    client, outbox, registry, _ = relay()
    outbox._conn.execute("PRAGMA query_only = ON")
    reply = client.post("/webhook/critical", json=notification(), headers=AUTH)
    assert reply.status_code == 503
    assert client.get("/-/ready").status_code == 503
    assert (
        registry.get_sample_value(
            "webhook_relay_webhooks_received_total", {"route": "critical", "result": "error"}
        )
        == 1
    )


def test_outbox_gauges_read_at_scrape(relay):
    """Pending count and oldest age per target come from the database at scrape time."""
    client, _, registry, _ = relay()
    client.post("/webhook/warning", json=notification(), headers=AUTH)
    assert registry.get_sample_value("webhook_relay_outbox_pending", {"target": "wecom-ops"}) == 1
    assert registry.get_sample_value("webhook_relay_outbox_pending", {"target": "dingtalk-ops"}) == 0
    assert (
        registry.get_sample_value("webhook_relay_outbox_oldest_pending_age_seconds", {"target": "wecom-ops"})
        >= 0
    )


def test_dead_letters_list_and_replay(relay):
    """Dead letters are listed with reason and alert names, and replay requeues them."""
    client, outbox, registry, app = relay(
        lambda r: httpx.Response(200, json={"errcode": 93000, "errmsg": "bad"})
    )
    client.post("/webhook/warning", json=notification(), headers=AUTH)
    asyncio.run(app.state.sender.step("wecom-ops"))
    [dead] = client.get("/api/v1/dead-letters", headers=AUTH).json()["dead_letters"]
    assert (dead["target"], dead["reason"], dead["alertnames"]) == (
        "wecom-ops",
        "bad_token",
        ["HighErrorRate"],
    )
    assert registry.get_sample_value("webhook_relay_dead_letters", {"target": "wecom-ops"}) == 1
    assert client.post(f"/api/v1/dead-letters/{dead['id']}/replay", headers=AUTH).status_code == 202
    assert client.post(f"/api/v1/dead-letters/{dead['id']}/replay", headers=AUTH).status_code == 404
    assert [d.id for d in outbox.due("wecom-ops", 1e12)] == [dead["id"]]


def test_preview_renders_exact_requests_and_sends_nothing(relay):
    """Preview returns each target's request body with the URL masked; nothing is posted or stored."""
    client, outbox, _, _ = relay()
    reply = client.post(
        "/api/v1/preview", json={"route": "critical", "payload": notification()}, headers=AUTH
    )
    assert reply.status_code == 200
    targets = reply.json()["targets"]
    assert set(targets) == {"dingtalk-ops", "wecom-ops"}
    [ding] = targets["dingtalk-ops"]["messages"]
    assert ding["body"]["msgtype"] == "markdown" and ding["body"]["at"]["atMobiles"] == ["13800000000"]
    assert "dt-token" not in json.dumps(targets) and "wecom-key" not in json.dumps(targets)
    assert outbox.due("wecom-ops", 1e12) == []
    assert (
        client.post("/api/v1/preview", json={"target": "x", "payload": {}}, headers=AUTH).status_code == 404
    )


def test_no_secret_in_logs_or_stored_errors(relay, caplog):
    """A failing delivery whose exception text includes the URL logs and stores it masked."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}")

    client, outbox, _, app = relay(refuse)
    caplog.set_level(logging.DEBUG)
    client.post("/webhook/critical", json=notification(), headers=AUTH)
    asyncio.run(app.state.sender.step("dingtalk-ops"))
    asyncio.run(app.state.sender.step("wecom-ops"))
    stored = " ".join(d.last_error or "" for t in ("dingtalk-ops", "wecom-ops") for d in outbox.due(t, 1e12))
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "ConnectError" in stored and "ConnectError" in logged
    for secret in ("dt-token", "dt-secret", "wecom-key", "relay-token", "sign=Y"):
        assert secret not in logged and secret not in stored


def test_dead_outbox_writer_means_not_ready_and_fast_503(relay):
    """When the group-commit thread is gone, readiness fails and webhooks get 503 at once, never hang."""
    web, outbox, registry, _ = relay()
    outbox.close()  # ends the writer thread like a crash would
    ready = web.get("/-/ready")
    assert ready.status_code == 503 and "outbox_writer" in ready.json()["problems"]
    reply = web.post("/webhook/critical", json=notification(), headers=AUTH)
    assert reply.status_code == 503
    web.get("/metrics")
    assert registry.get_sample_value("webhook_relay_component_up", {"component": "outbox_writer"}) == 0


def test_discard_removes_a_dead_letter_and_refuses_anything_else(relay):
    """DELETE on a dead letter removes it (the alert stops); pending items and unknown ids are 404."""
    web, outbox, registry, _ = relay()
    outbox.enqueue("critical", ["dingtalk-ops"], json.dumps(notification()), None, 0, now=1.0)
    [item] = outbox.due("dingtalk-ops", 1.0)
    assert web.delete(f"/api/v1/dead-letters/{item.id}", headers=AUTH).status_code == 404
    outbox.mark_dead(item.id, "bad_token", "errcode 300001", now=2.0)
    assert web.delete(f"/api/v1/dead-letters/{item.id}").status_code == 401
    reply = web.delete(f"/api/v1/dead-letters/{item.id}", headers=AUTH)
    assert reply.status_code == 200 and reply.json() == {"status": "discarded", "id": item.id}
    assert web.get("/api/v1/dead-letters", headers=AUTH).json() == {"dead_letters": []}
    web.get("/metrics")
    assert registry.get_sample_value("webhook_relay_dead_letters", {"target": "dingtalk-ops"}) == 0
    assert web.delete("/api/v1/dead-letters/999", headers=AUTH).status_code == 404


def test_runbook_is_served_with_github_anchors(tmp_path, repo_root):
    """GET /runbook renders runbook.md as HTML, public, with an id for every section heading."""
    from webhook_relay.config import parse_config

    from tests.support.monitoring import runbook_anchors

    config = parse_config(
        f"server: {{auth_token: t, runbook_path: {repo_root / 'runbook.md'}}}\n"
        "targets: {d: {kind: dingtalk, access_token: a}}\nroutes: {critical: {targets: [d]}}\n",
        env={},
    )
    outbox = Outbox(tmp_path / "o.db")
    web = TestClient(create_app(config, CollectorRegistry(), outbox, run_sender=False))
    page = web.get("/runbook")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    anchors = runbook_anchors()
    assert anchors and all(f'id="{anchor}"' in page.text for anchor in anchors)
    outbox.close()


def test_runbook_not_configured_is_404(relay):
    """Without server.runbook_path the page says so instead of failing."""
    web, *_ = relay()
    reply = web.get("/runbook")
    assert reply.status_code == 404 and "runbook_path" in reply.json()["error"]


def test_links_of_the_relays_own_alarms_point_at_existing_runbook_sections(repo_root):
    """HeartbeatMissing (stack config) and the outbox notice link to sections runbook.md has."""
    from webhook_relay.config import parse_config
    from webhook_relay.selfcheck import RUNBOOK_URL

    from tests.support.monitoring import runbook_anchors

    env = {"RELAY_AUTH_TOKEN": "t", "DINGTALK_ACCESS_TOKEN": "a", "WECOM_KEY": "k"}
    stack = parse_config((repo_root / "webhook-relay" / "config.yml").read_text(encoding="utf-8"), env=env)
    links = [RUNBOOK_URL, stack.routes["watchdog"].heartbeat.runbook_url]
    for link in links:
        path, _, anchor = link.partition("#")
        assert path == "/runbook" and anchor in runbook_anchors(), link


def test_start_up_says_in_one_line_which_channels_are_live(tmp_path, caplog):
    """One log line at start names the live targets and the optional ones left out (no credential)."""
    from webhook_relay.config import parse_config

    config = parse_config(
        """
server: {auth_token: t}
targets:
  dingtalk-ops: {kind: dingtalk, access_token: dt}
  wecom-ops: {kind: wecom, optional: true, key: ""}
  inbox: {kind: inbox}
routes:
  critical: {targets: [dingtalk-ops, wecom-ops, inbox]}
""", env={})
    outbox = Outbox(tmp_path / "o.db")
    caplog.set_level(logging.INFO, logger="webhook_relay.app")
    try:
        with TestClient(create_app(config, CollectorRegistry(), outbox, run_sender=False)):
            pass
    finally:
        outbox.close()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("channels:")]
    assert line == ("channels: live: dingtalk-ops (dingtalk), inbox (inbox); "
                    "not configured (empty credentials): wecom-ops")
