"""The relay watching its own outbox: one direct notice when it cannot store alerts, then recovery."""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client import CollectorRegistry
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Outbox, StorageError
from webhook_relay.selfcheck import StorageWatch
from webhook_relay.sender import Sender

from tests.support.relay import relay_config


class Clock:
    now = 5_000.0

    def __call__(self) -> float:
        return self.now


def test_unwritable_outbox_notifies_directly_once_then_recovers_through_the_outbox(tmp_path, monkeypatch):
    """Disk full: one notice per target posted directly, no repeat within the hour; back: one resolved."""
    posts: list[dict] = []

    def chat(request: httpx.Request) -> httpx.Response:
        posts.append(json.loads(request.content))
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

    clock = Clock()
    config = relay_config(db=str(tmp_path / "o.db"))
    outbox = Outbox(tmp_path / "o.db")
    registry = CollectorRegistry()
    metrics = RelayMetrics(registry)
    client = httpx.AsyncClient(transport=httpx.MockTransport(chat))
    sender = Sender(config, outbox, metrics, client, clock=clock)
    watch = StorageWatch(outbox, sender, metrics, ["dingtalk-ops", "wecom-ops"], clock)
    real = outbox.check_writable

    def full(_now):
        raise StorageError("database or disk is full")

    monkeypatch.setattr(outbox, "check_writable", full)
    for _ in range(3):
        asyncio.run(watch.check())
        clock.now += 60
    assert registry.get_sample_value("webhook_relay_outbox_writable") == 0
    assert len(posts) == 2  # one per target, not one per check
    assert "WebhookRelayOutboxNotWritable" in json.dumps(posts, ensure_ascii=False)
    assert outbox.due("dingtalk-ops", 1e12) == []
    monkeypatch.setattr(outbox, "check_writable", real)
    asyncio.run(watch.check())
    assert registry.get_sample_value("webhook_relay_outbox_writable") == 1
    [resolved] = [json.loads(d.payload) for d in outbox.due("wecom-ops", 1e12)]
    assert resolved["status"] == "resolved"
    outbox.close()
