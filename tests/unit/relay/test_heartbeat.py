"""The dead-man's switch on heartbeat routes."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from webhook_relay.alertmanager import Notification
from webhook_relay.app import create_app
from webhook_relay.config import ConfigError, parse_config
from webhook_relay.outbox import Outbox
from webhook_relay.render import Renderer

from tests.support.relay import notification

CONFIG = """
server: {{auth_token: tok}}
targets:
  dingtalk-ops: {{kind: dingtalk, access_token: a}}
  wecom-ops: {{kind: wecom, key: k}}
routes:
  watchdog:
    targets: []
    heartbeat: {{missing_after_seconds: 300, notify: [dingtalk-ops, wecom-ops]{extra}}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def relay(tmp_path):
    """A relay with a pure heartbeat route, a hand-driven clock and no background tasks."""
    clock = Clock()
    config = parse_config(CONFIG.format(extra=", runbook_url: 'https://rb.example/#watchdog'"), env={})
    outbox = Outbox(tmp_path / "o.db")
    registry = CollectorRegistry()
    app = create_app(config, registry, outbox, run_sender=False, clock=clock)
    yield TestClient(app), app.state.heartbeat, outbox, registry, clock
    outbox.close()


def queued(outbox, target="dingtalk-ops"):
    return [json.loads(d.payload) for d in outbox.due(target, 1e12)]


def test_heartbeat_is_recorded_not_stored(relay):
    """A webhook on a pure heartbeat route is acknowledged, timestamped, and not queued for sending."""
    client, _, outbox, registry, clock = relay
    reply = client.post("/webhook/watchdog", json=notification(), headers={"Authorization": "Bearer tok"})
    assert reply.status_code == 202 and reply.json() == {"status": "heartbeat"}
    assert queued(outbox) == [] and queued(outbox, "wecom-ops") == []
    assert (
        registry.get_sample_value(
            "webhook_relay_heartbeat_last_seen_timestamp_seconds", {"route": "watchdog"}
        )
        == clock.now
    )


def test_silence_alarms_once_then_resolves(relay):
    """Silence past the limit queues one critical alarm per notify target; a beat queues the recovery."""
    client, watch, outbox, _, clock = relay
    clock.now += 299
    asyncio.run(watch.check())
    assert queued(outbox) == []
    clock.now += 2
    asyncio.run(watch.check())
    clock.now += 60
    asyncio.run(watch.check())
    [alarm] = queued(outbox)
    assert len(queued(outbox, "wecom-ops")) == 1
    assert alarm["status"] == "firing" and alarm["alerts"][0]["labels"]["alertname"] == "HeartbeatMissing"
    assert alarm["alerts"][0]["labels"]["severity"] == "critical"
    client.post("/webhook/watchdog", json=notification(), headers={"Authorization": "Bearer tok"})
    asyncio.run(watch.check())
    alarm_again, resolved = queued(outbox)
    assert alarm_again == alarm and resolved["status"] == "resolved"
    assert resolved["alerts"][0]["startsAt"] == alarm["alerts"][0]["startsAt"]


def test_alarm_renders_with_runbook_link(relay):
    """The synthetic alarm is a valid webhook payload that renders like any alert."""
    _, watch, outbox, _, clock = relay
    clock.now += 301
    asyncio.run(watch.check())
    [payload] = queued(outbox)
    target = parse_config(CONFIG.format(extra=""), env={}).targets["dingtalk-ops"]
    [message] = Renderer(target).render(Notification.model_validate(payload))
    assert "HeartbeatMissing" in message.text and "(https://rb.example/#watchdog)" in message.text


def test_route_needs_targets_or_heartbeat_and_known_notify_targets():
    """A route that does nothing, or notifies an unknown target, is refused at start-up."""
    with pytest.raises(ConfigError, match="needs `targets`, a `heartbeat`"):
        parse_config(CONFIG.format(extra="").split("    heartbeat:")[0], env={})
    with pytest.raises(ConfigError, match=r"heartbeat\.notify: unknown target 'pager'"):
        parse_config(CONFIG.format(extra="").replace("wecom-ops]", "pager]"), env={})


FORWARD_CONFIG = """
server: {auth_token: tok}
targets:
  dingtalk-ops: {kind: dingtalk, access_token: a}
routes:
  watchdog:
    targets: []
    heartbeat:
      missing_after_seconds: 300
      notify: [dingtalk-ops]
      forward_url: https://hc-ping.example/0f8e2c1a-secret-uuid
      forward_timeout_seconds: 0.5
"""


@pytest.fixture
def forwarding(tmp_path):
    """A relay whose watchdog route forwards each heartbeat to a recorded fake push monitor."""
    pings: list[httpx.Request] = []
    replies: list[object] = []

    def monitor(request: httpx.Request) -> httpx.Response:
        pings.append(request)
        reply = replies.pop(0) if replies else 200
        if isinstance(reply, Exception):
            raise reply
        return httpx.Response(int(reply), text="OK")

    clock = Clock()
    outbox = Outbox(tmp_path / "o.db")
    registry = CollectorRegistry()
    client = httpx.AsyncClient(transport=httpx.MockTransport(monitor))
    app = create_app(parse_config(FORWARD_CONFIG, env={}), registry, outbox, client=client,
                     run_sender=False, clock=clock)
    yield TestClient(app), outbox, registry, pings, replies
    outbox.close()


def _beat(web: TestClient) -> None:
    reply = web.post("/webhook/watchdog", json=notification(), headers={"Authorization": "Bearer tok"})
    assert reply.status_code == 202


def _forwards(registry, result):
    return registry.get_sample_value(
        "webhook_relay_heartbeat_forwards_total", {"route": "watchdog", "result": result}
    )


def _settle(web: TestClient) -> None:
    # The forward runs as a task on the app's loop; one more request lets it finish.
    for _ in range(20):
        web.get("/-/healthy")


def test_heartbeat_is_forwarded_to_the_push_monitor(forwarding):
    """Each Watchdog that reaches the route is passed on as a GET to the external push URL."""
    web, _, registry, pings, _ = forwarding
    with web:
        _beat(web)
        _settle(web)
        _beat(web)
        _settle(web)
    url = "https://hc-ping.example/0f8e2c1a-secret-uuid"
    assert [(p.method, str(p.url)) for p in pings] == [("GET", url)] * 2
    assert _forwards(registry, "ok") == 2
    assert registry.get_sample_value(
        "webhook_relay_heartbeat_forward_last_success_timestamp_seconds", {"route": "watchdog"}
    ) == 10_000.0


def test_no_ping_when_the_outbox_cannot_store_alerts(forwarding, monkeypatch):
    """A relay that could not store an alert stays silent, so the external monitor raises the alarm."""
    from webhook_relay.outbox import StorageError

    web, outbox, registry, pings, _ = forwarding

    def full(_now):
        raise StorageError("database or disk is full")

    monkeypatch.setattr(outbox, "check_writable", full)
    with web:
        _beat(web)
        _settle(web)
    assert pings == [] and _forwards(registry, "unhealthy") == 1


def test_failed_ping_is_counted_and_never_logs_the_url(forwarding, caplog):
    """A monitor that refuses or times out is counted as failed; the URL (a secret) is never logged."""
    web, _, registry, _, replies = forwarding
    replies.extend([503, httpx.ConnectTimeout("timed out connecting to https://hc-ping.example/0f8e2c1a")])
    with web:
        for _ in range(2):
            _beat(web)
            _settle(web)
    assert _forwards(registry, "failed") == 2 and _forwards(registry, "ok") == 0
    assert "0f8e2c1a" not in caplog.text and "hc-ping" not in caplog.text


def test_alive_report_is_queued_once_a_day_at_the_local_time(tmp_path):
    """With alive_report, one "pipeline alive" notice per day at HH:MM local time, none at start-up."""
    text = FORWARD_CONFIG.replace(
        "      forward_timeout_seconds: 0.5\n",
        "      alive_report: {at: '09:30', timezone: Asia/Shanghai, targets: [dingtalk-ops]}\n",
    ).replace("      forward_url: https://hc-ping.example/0f8e2c1a-secret-uuid\n", "")
    clock = Clock()
    clock.now = 1764034200.0 - 3600  # 2025-11-25 00:30Z = 08:30 in Shanghai
    outbox = Outbox(tmp_path / "o.db")
    app = create_app(parse_config(text, env={}), CollectorRegistry(), outbox, run_sender=False, clock=clock)
    watch = app.state.heartbeat
    asyncio.run(watch.report())
    assert queued(outbox) == []
    clock.now += 3600 + 1  # 09:30:01 local
    asyncio.run(watch.report())
    asyncio.run(watch.report())
    [notice] = queued(outbox)
    assert notice["alerts"][0]["annotations"]["summary"] == "Alert pipeline alive"
    [message] = Renderer(app.state.sender.config.targets["dingtalk-ops"]).render(
        Notification.model_validate(notice)
    )
    # The notice template in the robot's language (Chinese), not the alert template.
    assert "💚 告警链路运行正常" in message.text and "FIRING" not in message.title
    assert "告警触发" not in message.text and "Last heartbeat" not in message.text
    clock.now += 86_400
    asyncio.run(watch.report())
    assert len(queued(outbox)) == 2
    outbox.close()
