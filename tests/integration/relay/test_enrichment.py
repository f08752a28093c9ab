"""Evidence with real processes: Alertmanager 0.28.1 -> relay process -> fake chat, the relay asking a
fake Prometheus (which also plays the replica's recent-errors view) and a fake language model (the fake
chat's OpenAI-compatible endpoint). With enrichment on, the durable-delivery guarantees still hold."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import httpx
import pytest

from tests.integration.relay.harness import TOKEN, RelayProcess, wait_for
from tests.support.evidence import LATENCY_EXPR
from tests.support.fakeprom import FakePrometheusServer
from tests.support.relay import notification

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def enriched_relay_config(chat_url: str, prometheus_url: str, *, llm: bool = True, deadline: float = 1.0,
                          llm_deadline: float = 15.0) -> str:
    analysis = (f"  analysis: {{url: {chat_url}/v1, model: janus-pro-7b, deadline_seconds: {llm_deadline}, "
                "cache_seconds: 0}\n") if llm else ""
    return f"""
server: {{host: 127.0.0.1, port: @PORT@, auth_token: "${{RELAY_AUTH_TOKEN}}"}}
storage: {{path: "@DB@"}}
delivery:
  {{backoff_initial_seconds: 0.1, backoff_max_seconds: 0.5, poll_interval_seconds: 0.1, timeout_seconds: 2}}
targets:
  dingtalk-ops: {{kind: dingtalk, access_token: dt-token, secret: dt-secret, url: {chat_url}/robot/send,
                 rate_limit: {{messages: 100, period_seconds: 1}}}}
  wecom-ops: {{kind: wecom, key: wecom-key, url: {chat_url}/cgi-bin/webhook/send, language: en,
              rate_limit: {{messages: 100, period_seconds: 1}}}}
  inbox: {{kind: inbox, language: en}}
routes:
  critical: {{targets: [dingtalk-ops, wecom-ops, inbox]}}
  warning: {{targets: [wecom-ops]}}
enrichment:
  enabled: true
  prometheus_url: {prometheus_url}
  deadline_seconds: {deadline}
{analysis}"""


def _alert(instance: str) -> dict:
    return {
        "labels": {"alertname": "OfaVeHighLatency", "severity": "critical", "service": "ofa-ve",
                   "instance": instance},
        "annotations": {"summary": f"ofa-ve {instance} P95 latency above 2 s",
                        "summary_zh": f"ofa-ve {instance} P95 延迟超过 2 秒"},
        "generatorURL": "http://prometheus:9090/graph?g0.expr=" + quote(LATENCY_EXPR),
    }


def _post(relay: RelayProcess, instance: str) -> float:
    """One firing OfaVeHighLatency straight to the relay's webhook; returns when it was acknowledged."""
    doc = _alert(instance)
    payload = notification({**doc, "status": "firing", "startsAt": "2026-11-25T02:00:00Z",
                            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "fp-latency"})
    reply = httpx.post(f"{relay.url}/webhook/critical", json=payload, headers=AUTH, timeout=10)
    assert reply.status_code == 202, reply.text
    return time.monotonic()


@pytest.fixture
def prometheus():
    server = FakePrometheusServer().start()
    yield server
    server.stop()


def _follow_ups(texts: list[str]) -> list[str]:
    return [t for t in texts if "> 回复：" in t or "> Re: the alert" in t]


def test_an_alert_through_alertmanager_arrives_with_its_evidence_chart_and_analysis(
    chat, processes, prometheus
):
    """Alertmanager -> relay: DingTalk gets numbers and diagnosis, WeCom its text and the chart image, the
    inbox's chart link opens without a login, and a model slower than the message deadline follows with
    one reply per robot."""
    make_relay, make_am = processes
    chat.start()
    chat.state.llm_mode, chat.state.llm_delay = "slow", 2.0
    relay = make_relay(enriched_relay_config(chat.url, prometheus.url)).start()
    am = make_am(relay.url)
    instance = f"127.0.0.1:{prometheus.port}"
    reply = httpx.post(f"{am.url}/api/v2/alerts", json=[_alert(instance)], timeout=5)
    assert reply.status_code == 200
    # Each robot's follow-up is its own outbox message: WeCom's may land after DingTalk's.
    wait_for(lambda: len(_follow_ups(chat.state.texts())) == 2, 30, "the analysis follow-up on both robots")
    dingtalk = chat.state.texts("dingtalk")
    assert len(dingtalk) == 2, dingtalk
    alert_text, follow_up = dingtalk
    assert "排队等待占 P95 的 80.8 %：容量饱和，而不是推理变慢" in alert_text, alert_text
    assert "7f3a2c9e1b4d" in alert_text and "<redacted>" in alert_text, alert_text
    assert "u:p@" not in alert_text, alert_text
    assert "janus-pro-7b" in follow_up and "AI 分析" in follow_up, follow_up
    wecom = [m["body"] for m in chat.state.messages if m["channel"] == "wecom"]
    assert [b["msgtype"] for b in wecom] == ["markdown", "image", "markdown"], wecom
    assert chat.state.rejected == []
    assert len(chat.state.llm_requests) == 1
    inbox = relay.api("GET", "/api/v1/inbox?target=inbox").json()["messages"]
    link = re.search(r"\]\((/charts/[0-9a-f]{32}\.png\?exp=\d+&sig=[0-9a-f]{64})\)", inbox[-1]["text"])
    assert link, inbox[-1]["text"]
    png = httpx.get(relay.url + link.group(1), timeout=5)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert relay.metric("webhook_relay_analysis_outcomes_total", outcome="follow_up") == 1
    assert relay.metric("webhook_relay_enrichment_evidence_total", result="stored") == 1


def test_kill9_during_the_analysis_loses_nothing_and_posts_one_analysis(chat, processes, prometheus):
    """The relay is killed while the model thinks: the alert (already sent) is not sent again, and after the
    restart the analysis is asked again and follows exactly once per robot."""
    make_relay, _ = processes
    chat.start()
    chat.state.llm_mode, chat.state.llm_delay = "slow", 30.0
    relay = make_relay(enriched_relay_config(chat.url, prometheus.url, deadline=0.5)).start()
    _post(relay, f"127.0.0.1:{prometheus.port}")
    # Killed once the alert is recorded as delivered (not in the few milliseconds between the robot's
    # "ok" and that commit, where at-least-once re-sends it) and while the model is still thinking.
    wait_for(lambda: chat.state.llm_requests and all(
        relay.metric("webhook_relay_outbox_pending", target=t) == 0 for t in ("dingtalk-ops", "wecom-ops")
    ) and len(chat.state.texts("dingtalk")) == 1, 20, "the alert delivered and the model asked")
    relay.kill9()
    chat.state.llm_mode, chat.state.llm_delay = "good", 0.0
    relay.start()
    wait_for(lambda: len(_follow_ups(chat.state.texts())) == 2, 30,
             "one follow-up per robot after the restart")
    time.sleep(1.5)  # room for a duplicate, were there to be one
    dingtalk, wecom = chat.state.texts("dingtalk"), chat.state.texts("wecom")
    assert len(_follow_ups(dingtalk)) == 1 and len(_follow_ups(wecom)) == 1, (dingtalk, wecom)
    assert sum("OfaVeHighLatency" in t and "现场数据" in t for t in dingtalk) == 1, dingtalk
    assert len(chat.state.llm_requests) == 2


def test_kill9_during_the_hold_loses_nothing(chat, processes, prometheus):
    """Killed before the evidence was stored: the acknowledged alert arrives once per robot after the
    restart (with its evidence when the enricher resumes within the hold, as it is when the restart took
    longer: WeCom's chart image comes with the evidence only)."""
    make_relay, _ = processes
    chat.start()
    prometheus.fake.delay = 5  # the enricher is still waiting when the process dies
    relay = make_relay(enriched_relay_config(chat.url, prometheus.url, llm=False, deadline=3.0)).start()
    _post(relay, f"127.0.0.1:{prometheus.port}")
    time.sleep(0.3)
    relay.kill9()
    prometheus.fake.delay = 0
    relay.start()
    wait_for(lambda: len(chat.state.texts("dingtalk")) == 1, 20, "the alert after the restart")
    time.sleep(1.0)
    dingtalk = chat.state.texts("dingtalk")
    wecom = [m["body"]["msgtype"] for m in chat.state.messages if m["channel"] == "wecom"]
    assert len(dingtalk) == 1 and wecom in (["markdown"], ["markdown", "image"]), (dingtalk, wecom)
    assert ("现场数据" in dingtalk[0]) == (wecom == ["markdown", "image"]), dingtalk


def test_with_prometheus_and_the_model_down_the_plain_alert_arrives_on_time(chat, processes):
    """Nothing answers the enricher (Prometheus unreachable, the model failing): each robot still gets the
    alert within the message deadline, with a line saying what is missing."""
    make_relay, _ = processes
    chat.start()
    chat.state.llm_mode = "error"
    dead = "http://127.0.0.1:9"  # discard port: refused at once
    relay = make_relay(enriched_relay_config(chat.url, dead, deadline=1.0)).start()
    acknowledged = _post(relay, "127.0.0.1:9")
    wait_for(lambda: len(chat.state.texts("dingtalk")) == 1 and len(chat.state.texts("wecom")) == 1, 10,
             "the plain alert")
    took = time.monotonic() - acknowledged
    assert took < 1.0 + 1.5, took
    text = chat.state.texts("wecom")[0]
    assert "⚠️ Evidence incomplete" in text and "prometheus:" in text and "analysis: http_error" in text, text
    time.sleep(1.0)
    assert len(chat.state.texts()) == 2 and _follow_ups(chat.state.texts()) == []
