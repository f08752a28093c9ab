"""Pieces shared by the dashboards: cross-links and the alert-level thresholds they draw."""

from __future__ import annotations

# Alert thresholds from prometheus/alerts/*.alerts.yml, drawn as dashed lines on the panels.
P95_LATENCY_ALERT_SECONDS = 2
LOOP_LAG_ALERT_SECONDS = 0.1
ERROR_RATIO_ALERT = 0.03
GPU_MEMORY_ALERT_RATIO = 0.9
GPU_TEMPERATURE_ALERT_CELSIUS = 85
REMOTE_WRITE_LAG_ALERT_SECONDS = 120


def links() -> list[dict]:
    """Header links: the other generated dashboards (by tag).

    No runbook link: the runbook is served by webhook-relay at its public URL, which Grafana does not
    know (a relative link would point into Grafana). Every alert message carries its runbook link.
    """
    return [
        {
            "type": "dashboards",
            "title": "OFA-VE dashboards",
            "tags": ["ofa-ve"],
            "asDropdown": True,
            "includeVars": False,
            "keepTime": True,
            "icon": "external link",
            "targetBlank": False,
        },
    ]
