"""The links every alert and dashboard carries, defined once.

Alert annotations hold RELATIVE links, because only the deployment knows where things are reachable:
webhook-relay resolves `runbook_url` against its own public URL (it serves runbook.md rendered as
HTML at RUNBOOK_PATH, with GitHub-style heading anchors) and `dashboard_url` against Grafana's root
URL (GRAFANA_ROOT_URL). Prometheus rule files cannot read variables, so the annotations spell these
paths out; tests/unit/monitoring/test_alert_rules.py fails when one of them drifts from the values
here, names a runbook section that does not exist, or a dashboard that is not generated.
"""

from __future__ import annotations

# Where webhook-relay serves the rendered runbook.md; every runbook_url is this plus `#<anchor>`.
RUNBOOK_PATH = "/runbook"
# Grafana's path for a dashboard by uid, relative to its root URL.
DASHBOARD_PATH = "/d"
# The alert-template value of the overview's `instance` variable: the alert's own replica.
ALERT_INSTANCE = "{{ $labels.instance }}"

# The two provisioned datasources (grafana/provisioning/datasources/*.yml), by fixed uid: Prometheus
# (local retention, 30 days) and VictoriaMetrics (the remote-write copy, 12 months). Both speak the
# Prometheus query API, so every panel runs unchanged on either.
PROMETHEUS_UID = "prometheus"
VICTORIAMETRICS_UID = "victoriametrics"
# Every dashboard's `datasource` variable picks one of them (Prometheus by default); panels, queries,
# annotations and the other variables name the variable, never a uid.
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}

OVERVIEW_UID = "ofa-ve-overview"
SLO_UID = "ofa-ve-slo"
PIPELINE_UID = "alert-pipeline"
HISTORY_UID = "metrics-history"


def dashboard_url(uid: str, *, instance: str | None = None) -> str:
    """Relative link to a dashboard by uid, optionally with its `instance` variable set."""
    url = f"{DASHBOARD_PATH}/{uid}"
    return f"{url}?var-instance={instance}" if instance is not None else url


def runbook_url(anchor: str) -> str:
    """Relative link to one runbook section."""
    return f"{RUNBOOK_PATH}#{anchor}"
