"""Builders for the enrichment tests: a config with enrichment on, an ofa-ve alert as Prometheus sends
it (generatorURL included), and one MockTransport that plays Prometheus, the replica's recent-errors view
and an OpenAI-compatible language model."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx
from webhook_relay.alertmanager import Notification
from webhook_relay.config import RelayConfig, parse_config

from tests.fakechat.server import llm_content
from tests.support.fakeprom import ERRORS, INSTANCE, FakePrometheus
from tests.support.relay import alert, notification

LATENCY_EXPR = ('instance_endpoint_quantile:ofa_ve_request_duration_seconds:histogram_quantile'
                '{endpoint="entailment",quantile="0.95"}\n> 2')


def enriched_config(
    db: str = "/tmp/unused.db", *, analysis: bool = False, public_url: str = "https://relay.example.com",
    deadline: float = 2.0, analysis_deadline: float = 20.0, extra: str = "",
) -> RelayConfig:
    """DingTalk, WeCom, Feishu (English) and the inbox behind route `critical`, enrichment on."""
    llm = (f"analysis: {{url: http://llm:8000/v1, model: janus-pro-7b, api_key: sk-test-secret, "
           f"deadline_seconds: {analysis_deadline}, failures_to_open: 2, open_seconds: 60}}"
           ) if analysis else ""
    return parse_config(f"""
server: {{auth_token: relay-token}}
storage: {{path: {db}}}
delivery: {{backoff_initial_seconds: 0.05, backoff_max_seconds: 0.2, poll_interval_seconds: 0.05}}
targets:
  dingtalk-ops: {{kind: dingtalk, access_token: dt-token, url: http://chat/robot/send, language: zh}}
  wecom-ops: {{kind: wecom, key: wecom-key, url: http://chat/cgi-bin/webhook/send, language: zh}}
  feishu-ops: {{kind: feishu, token: fs-token, url: http://chat/open-apis/bot/v2/hook, language: en}}
  inbox: {{kind: inbox, language: en}}
routes:
  critical: {{targets: [dingtalk-ops, wecom-ops, feishu-ops, inbox]}}
  warning: {{targets: [dingtalk-ops, inbox], enrich: [context]}}
enrichment:
  enabled: true
  prometheus_url: http://prometheus:9090
  deadline_seconds: {deadline}
  chart: {{public_url: "{public_url}"}}
  {llm}
{extra}
""", env={})


def latency_alert(instance: str = INSTANCE, **labels: str) -> dict[str, Any]:
    """OfaVeHighLatency on `instance` as Alertmanager forwards it (both languages, generatorURL)."""
    doc = alert("OfaVeHighLatency", severity="critical", instance=instance, service="ofa-ve",
                summary=f"ofa-ve {instance} P95 latency above 2 s",
                description=f"P95 latency of single entailment requests on {instance} has been 2.8s.",
                **labels)
    doc["annotations"].update(summary_zh=f"ofa-ve {instance} P95 延迟超过 2 秒",
                              description_zh=f"{instance} 上单条推理请求的 P95 延迟为 2.8s（超过 2 秒）。")
    doc["generatorURL"] = "http://localhost:9090/graph?g0.expr=" + quote(LATENCY_EXPR) + "&g0.tab=1"
    return doc


def latency_note(*instances: str) -> Notification:
    alerts = [latency_alert(i) for i in (instances or (INSTANCE,))]
    return Notification.model_validate(
        notification(*alerts, group_key='{}:{alertname="OfaVeHighLatency",service="ofa-ve"}'))


class World:
    """Prometheus, the replicas' error views and the model behind one MockTransport handler."""

    def __init__(self) -> None:
        self.prometheus = FakePrometheus()
        self.llm_mode = "good"
        self.llm_delay = 0.0
        self.llm_requests: list[dict[str, Any]] = []
        self.error_views: list[str] = []
        self.errors_down = False
        self.lock = threading.Lock()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        host = request.url.host
        if host == "prometheus":
            if self.prometheus.delay:
                await asyncio.sleep(self.prometheus.delay)
            status, body = self.prometheus.answer(request.url.path, dict(request.url.params))
            return httpx.Response(status, json=body)
        if host == "llm":
            with self.lock:
                self.llm_requests.append({"body": json.loads(request.content), "at": time.time(),
                                          "authorization": request.headers.get("authorization", "")})
            if self.llm_delay:
                await asyncio.sleep(self.llm_delay)
            if self.llm_mode == "error":
                return httpx.Response(500, json={"error": {"message": "injected"}})
            message = {"role": "assistant", "content": llm_content(self.llm_mode)}
            return httpx.Response(200, json={"choices": [{"message": message}]})
        if request.url.path == "/v1/errors":
            self.error_views.append(f"{host}:{request.url.port}")
            if self.errors_down:
                raise httpx.ConnectError("refused")
            return httpx.Response(200, json=ERRORS)
        raise AssertionError(f"unexpected request to {request.url}")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))
