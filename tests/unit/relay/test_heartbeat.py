"""The dead-man's switch on heartbeat routes."""

from __future__ import annotations

import asyncio
import json

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
