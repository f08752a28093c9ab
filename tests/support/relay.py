"""Builders for Alertmanager webhook payloads and relay configs used by the relay tests."""

from __future__ import annotations

from typing import Any

from webhook_relay.config import RelayConfig, parse_config

ZERO = "0001-01-01T00:00:00Z"


def alert(
    name: str = "HighErrorRate",
    status: str = "firing",
    severity: str = "critical",
    *,
    instance: str = "ofa-ve:8000",
    summary: str = "Error ratio above 5%",
    description: str = "",
    starts: str = "2026-11-25T02:00:00Z",
    ends: str = ZERO,
    fingerprint: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One alert as Alertmanager sends it."""
    annotations = {"summary": summary, "runbook_url": f"https://runbooks.example/#{name.lower()}"}
    if description:
        annotations["description"] = description
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "instance": instance, **labels},
        "annotations": annotations,
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint or f"fp-{name}-{instance}",
    }


def notification(
    *alerts: dict[str, Any],
    group_key: str = '{}:{alertname="HighErrorRate"}',
    receiver: str = "chat-critical",
) -> dict[str, Any]:
    """A version-4 webhook payload holding `alerts` (status: firing if any alert fires)."""
    alerts = alerts or (alert(),)
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    names = {a["labels"]["alertname"] for a in alerts}
    common = {"alertname": next(iter(names))} if len(names) == 1 else {}
    return {
        "version": "4",
        "receiver": receiver,
        "status": status,
        "alerts": list(alerts),
        "groupLabels": dict(common),
        "commonLabels": dict(common),
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }


def relay_config(
    chat_url: str = "http://127.0.0.1:9", db: str = "/tmp/unused.db", **delivery: Any
) -> RelayConfig:
    """A config with one DingTalk (signed) and one WeCom target behind route `critical`."""
    delivery_yaml = ", ".join(
        f"{k}: {v}"
        for k, v in {
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.2,
            "poll_interval_seconds": 0.05,
            "timeout_seconds": 2,
            **delivery,
        }.items()
    )
    return parse_config(
        f"""
server: {{auth_token: relay-token}}
storage: {{path: {db}}}
delivery: {{{delivery_yaml}}}
targets:
  dingtalk-ops:
    kind: dingtalk
    access_token: dt-token
    secret: dt-secret
    url: {chat_url}/robot/send
    mentions: {{critical: {{mobiles: ["13800000000"]}}}}
  wecom-ops:
    kind: wecom
    key: wecom-key
    url: {chat_url}/cgi-bin/webhook/send
    language: en
routes:
  critical: {{targets: [dingtalk-ops, wecom-ops]}}
  warning: {{targets: [wecom-ops]}}
""",
        env={},
    )
