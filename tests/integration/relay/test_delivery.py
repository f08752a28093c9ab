"""Real Alertmanager 0.28.1 -> relay process -> fake chat server: nothing lost, nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.relay.harness import TOKEN, alert_counts, relay_config, wait_for
from tests.support.env import ROOT

pytestmark = pytest.mark.integration


def test_kill9_with_pending_then_restart_delivers_each_once(chat, processes):
    """Alerts acknowledged while the chat API is down survive kill -9 and are each delivered once."""
    make_relay, make_am = processes
    relay = make_relay(relay_config(chat.url)).start()
    am = make_am(relay.url)
    names = [f"Kill9Alert{i}" for i in range(8)]
    am.fire(*names)
    wait_for(
        lambda: relay.metric("webhook_relay_outbox_pending", target="dingtalk-ops") == len(names),
        30,
        "all notifications stored while chat is down",
    )
    relay.kill9()
    chat.start()
    relay.start()
    wait_for(lambda: len(chat.state.texts("dingtalk")) >= len(names), 30, "delivery after restart")
    wait_for(
        lambda: relay.metric("webhook_relay_outbox_pending", target="dingtalk-ops") == 0, 10, "empty outbox"
    )
    texts = chat.state.texts("dingtalk")
    assert alert_counts(texts, names) == dict.fromkeys(names, 1), texts
    assert len(texts) == len(names)
    assert chat.state.rejected == []


def test_chat_down_for_a_while_then_everything_delivered(chat, processes):
    """While the chat API is unreachable the relay retries with backoff; all arrive once it is back."""
    make_relay, make_am = processes
    relay = make_relay(relay_config(chat.url)).start()
    am = make_am(relay.url)
    names = [f"OutageAlert{i}" for i in range(5)]
    am.fire(*names, severity="warning")
    wait_for(
        lambda: (
            relay.metric("webhook_relay_messages_failed_total", target="wecom-ops", reason="network") >= 3
        ),
        30,
        "several failed attempts while down",
    )
    assert relay.metric("webhook_relay_delivery_retries_total", target="wecom-ops") >= 3
    chat.start()
    wait_for(lambda: len(chat.state.texts("wecom")) >= len(names), 30, "delivery once the chat API is back")
    wait_for(
        lambda: relay.metric("webhook_relay_outbox_pending", target="wecom-ops") == 0, 10, "empty outbox"
    )
    assert alert_counts(chat.state.texts("wecom"), names) == dict.fromkeys(names, 1)
    assert relay.metric("webhook_relay_messages_delivered_total", target="wecom-ops") == len(names)


def test_rate_limited_chat_receives_at_the_allowed_rate(chat, processes):
    """With the robot limited to 3 messages per 2 s, all 9 arrive and no window ever holds more than 3."""
    make_relay, make_am = processes
    chat.state.configure({"rate_limit": {"messages": 3, "period_seconds": 2}})
    chat.start()
    relay = make_relay(relay_config(chat.url, rate="{messages: 3, period_seconds: 2}")).start()
    am = make_am(relay.url)
    names = [f"BurstAlert{i}" for i in range(9)]
    am.fire(*names)
    wait_for(lambda: len(chat.state.texts("dingtalk")) >= len(names), 40, "all messages at the limited rate")
    times = [m["at"] for m in chat.state.messages]
    assert all(times[i + 3] - times[i] >= 1.95 for i in range(len(times) - 3)), times
    assert chat.state.rejected == []
    assert relay.metric("webhook_relay_rate_limit_waits_total", target="dingtalk-ops") >= 2
    assert alert_counts(chat.state.texts("dingtalk"), names) == dict.fromkeys(names, 1)


def test_relay_faster_than_robot_backs_off_on_throttle_code(chat, processes):
    """When the robot answers "too fast" (130101 on HTTP 200) the relay waits and delivers everything."""
    make_relay, make_am = processes
    chat.state.configure({"rate_limit": {"messages": 2, "period_seconds": 1}})
    chat.start()
    relay = make_relay(relay_config(chat.url, rate="{messages: 100, period_seconds: 1}")).start()
    am = make_am(relay.url)
    names = [f"ThrottleAlert{i}" for i in range(6)]
    am.fire(*names)
    wait_for(lambda: len(chat.state.texts("dingtalk")) >= len(names), 40, "delivery despite throttling")
    assert any(r["errcode"] == 130101 for r in chat.state.rejected)
    assert (
        relay.metric("webhook_relay_messages_failed_total", target="dingtalk-ops", reason="rate_limited") >= 1
    )
    assert alert_counts(chat.state.texts("dingtalk"), names) == dict.fromkeys(names, 1)


def test_permanent_error_dead_letter_then_replay_after_fix(chat, processes):
    """A wrong WeCom key dead-letters the message; after fixing the config a replay delivers it."""
    make_relay, make_am = processes
    chat.start()
    relay = make_relay(relay_config(chat.url, wecom_key="wrong-key")).start()
    am = make_am(relay.url)
    am.fire("DeadLetterAlert", severity="warning")
    dead = wait_for(
        lambda: relay.api("GET", "/api/v1/dead-letters").json()["dead_letters"], 30, "a dead letter"
    )
    assert [(d["target"], d["reason"], d["alertnames"]) for d in dead] == [
        ("wecom-ops", "bad_token", ["DeadLetterAlert"])
    ]
    assert relay.metric("webhook_relay_dead_letters", target="wecom-ops") == 1
    assert relay.metric("webhook_relay_dead_letters_total", target="wecom-ops", reason="bad_token") == 1
    assert "wrong-key" not in relay.log_tail(200)
    assert chat.state.texts("wecom") == []

    relay.stop()
    relay.write_config(relay_config(chat.url))
    listed = subprocess.run(
        [sys.executable, "-m", "webhook_relay", "--config", str(relay.config_path), "dead-letters", "list"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={"RELAY_AUTH_TOKEN": TOKEN, "PATH": ""},
        check=True,
    )
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [dead[0]["id"]]
    relay.start()
    assert relay.api("POST", f"/api/v1/dead-letters/{dead[0]['id']}/replay").status_code == 202
    wait_for(lambda: chat.state.texts("wecom"), 20, "replayed message delivered")
    assert alert_counts(chat.state.texts("wecom"), ["DeadLetterAlert"]) == {"DeadLetterAlert": 1}
    assert relay.api("GET", "/api/v1/dead-letters").json()["dead_letters"] == []


def test_missing_heartbeat_raises_alarm_and_recovery(chat, processes):
    """With no Watchdog for the configured time the relay itself alarms, and resolves when it is back."""
    make_relay, make_am = processes
    chat.start()
    relay = make_relay(relay_config(chat.url, heartbeat_after=1.5)).start()
    am = make_am(relay.url)
    texts = lambda: chat.state.texts("dingtalk")  # noqa: E731
    wait_for(lambda: any("HeartbeatMissing" in t for t in texts()), 20, "heartbeat alarm")
    assert len(texts()) == 1
    am.fire("Watchdog", severity="none")
    wait_for(lambda: len(texts()) >= 2, 20, "recovery message")
    assert "告警恢复" in texts()[1] and "HeartbeatMissing" in texts()[1]
