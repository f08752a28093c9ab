"""One language per message: each target shows the annotations of its own language, the other only when
an alert lacks them; the relay's own notices carry both."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from prometheus_client import CollectorRegistry
from webhook_relay.alertmanager import Notification
from webhook_relay.app import create_app
from webhook_relay.config import Target, parse_config
from webhook_relay.outbox import Outbox
from webhook_relay.render import Renderer, localized

from tests.support.relay import alert, notification

CONFIG = """
server: {auth_token: tok}
targets:
  wecom-ops: {kind: wecom, key: k}
routes:
  watchdog:
    targets: []
    heartbeat:
      missing_after_seconds: 300
      notify: [wecom-ops]
      alive_report: {at: "09:30", timezone: UTC, targets: [wecom-ops]}
"""


class Clock:
    now = 1_764_000_000.0  # 2025-11-24 16:00 UTC

    def __call__(self) -> float:
        return self.now


BOTH = {"summary": "Disk almost full", "summary_zh": "磁盘快满了",
        "description": "95 % used", "description_zh": "已使用 95 %"}


@pytest.mark.parametrize(
    ("annotations", "language", "summary"),
    [
        (BOTH, "zh", "磁盘快满了"),
        (BOTH, "en", "Disk almost full"),
        ({"summary": "only English"}, "zh", "only English"),
        ({"summary_zh": "只有中文"}, "en", "只有中文"),
        ({"summary": "", "summary_zh": "空的英文"}, "en", "空的英文"),
        ({}, "zh", ""),
    ],
)
def test_localized_prefers_the_targets_language_and_falls_back(annotations, language, summary):
    """`summary_zh` for Chinese, `summary` for English; the other one only when the wanted one is missing."""
    assert localized(annotations, "summary", language) == summary


def _render(language: str, annotations: dict[str, str]) -> str:
    payload = notification(alert("DiskFull"))
    payload["alerts"][0]["annotations"] = {**annotations, "runbook_url": "/runbook#diskfull"}
    target = Target(kind="wecom", key="k", language=language)
    [message] = Renderer(target).render(Notification.model_validate(payload))
    return message.text


def test_a_chinese_chat_reads_chinese_only_and_an_english_one_english_only():
    """The issue's `摘要：Alert pipeline heartbeat` is gone: template and annotations share a language."""
    zh, en = _render("zh", BOTH), _render("en", BOTH)
    assert "**摘要**：磁盘快满了" in zh and "**详情**：已使用 95 %" in zh
    assert "Disk almost full" not in zh and "95 % used" not in zh
    assert "**Summary**: Disk almost full" in en and "磁盘" not in en


def test_the_relays_own_alarms_carry_both_languages(tmp_path):
    """HeartbeatMissing (queued by the watch), the outbox notice and the alive line: summary and
    description in both languages, so a Chinese and an English target each read one language."""
    clock = Clock()
    config = parse_config(CONFIG, env={})
    outbox = Outbox(tmp_path / "o.db")
    try:
        app = create_app(config, CollectorRegistry(), outbox, run_sender=False, clock=clock)
        clock.now += 18 * 3600  # past 09:30 the next day: the alive line, then (silent) the alarm
        asyncio.run(app.state.heartbeat.report())
        asyncio.run(app.state.heartbeat.check())
        payloads = [json.loads(d.payload) for d in outbox.due("wecom-ops", 1e12)]
        payloads.append(app.state.storage._payload("firing", 0.0, 1.0))
        names = [p["alerts"][0]["labels"]["alertname"] for p in payloads]
        assert names == ["AlertPipelineAlive", "HeartbeatMissing", "WebhookRelayOutboxNotWritable"]
        for payload in payloads:
            annotations = payload["alerts"][0]["annotations"]
            for name in ("summary", "description"):
                assert annotations[name] and annotations[f"{name}_zh"], (name, annotations)
                assert not re.search(r"[\u4e00-\u9fff]", annotations[name]), annotations[name]
                assert re.search(r"[\u4e00-\u9fff]", annotations[f"{name}_zh"]), annotations[f"{name}_zh"]
    finally:
        outbox.close()
