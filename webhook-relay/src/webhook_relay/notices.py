"""Messages the relay raises itself (heartbeat missing, outbox not writable, pipeline alive).

They are built as Alertmanager webhook payloads so they travel the same path as every alert
(outbox, renderer, rate limit, retries) and look the same in the chat. Like every alert rule, each
carries its texts in English and Chinese (`summary` / `summary_zh`, `description` / `description_zh`):
each target shows its own language.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

# A notice (not an alert): rendered with the notice template, neither "firing" nor "resolved".
NOTICE_RECEIVER = "webhook-relay/notice"
ZERO = "0001-01-01T00:00:00Z"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def alert_payload(
    *,
    key: str,
    alertname: str,
    status: str,
    starts: float,
    now: float,
    summary: str,
    summary_zh: str,
    description: str,
    description_zh: str,
    runbook_url: str | None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A one-alert webhook payload for an alarm of the relay itself (critical)."""
    annotations = {
        "summary": summary,
        "summary_zh": summary_zh,
        "description": description,
        "description_zh": description_zh,
    }
    if runbook_url:
        annotations["runbook_url"] = runbook_url
    all_labels = {
        "alertname": alertname, "severity": "critical", "service": "webhook-relay", **(labels or {})
    }
    alert = {
        "status": status,
        "labels": all_labels,
        "annotations": annotations,
        "startsAt": iso(starts),
        "endsAt": iso(now) if status == "resolved" else ZERO,
        "generatorURL": "",
        "fingerprint": f"webhook-relay-{key}",
    }
    return {
        "version": "4",
        "receiver": f"webhook-relay/{key}",
        "status": status,
        "alerts": [alert],
        "groupLabels": {"alertname": alertname},
        "commonLabels": dict(all_labels),
        "commonAnnotations": annotations,
        "externalURL": "",
        "groupKey": f"webhook-relay:{key}",
    }


def notice_payload(
    *, key: str, alertname: str, title: str, title_zh: str, text: str, text_zh: str, now: float
) -> dict[str, Any]:
    """A plain informational message (the daily "pipeline alive" line)."""
    labels = {"alertname": alertname, "severity": "info", "service": "webhook-relay"}
    annotations = {"summary": title, "summary_zh": title_zh, "description": text, "description_zh": text_zh}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(now),
        "endsAt": ZERO,
        "generatorURL": "",
        "fingerprint": f"webhook-relay-{key}",
    }
    return {
        "version": "4",
        "receiver": NOTICE_RECEIVER,
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {"alertname": alertname},
        "commonLabels": dict(labels),
        "commonAnnotations": dict(annotations),
        "externalURL": "",
        "groupKey": f"webhook-relay:{key}",
    }


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)
