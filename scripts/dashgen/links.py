"""The URLs every dashboard and alert links to, defined once.

Prometheus rule files cannot read variables, so the alert annotations spell these URLs out;
tests/unit/monitoring/test_alert_rules.py fails when one of them drifts from the values here.
"""

# Where operators open Grafana; also the prefix of every alert's dashboard_url.
GRAFANA_URL = "http://localhost:3000"
# runbook.md as rendered by the forge; every alert's runbook_url is this plus `#<anchor>`.
RUNBOOK_URL = "https://github.com/ofa-ve/ofa-ve-observability/blob/main/runbook.md"

# Provisioned in grafana/provisioning/datasources/prometheus.yml with this fixed uid.
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

OVERVIEW_UID = "ofa-ve-overview"
SLO_UID = "ofa-ve-slo"
PIPELINE_UID = "alert-pipeline"


def dashboard_url(uid: str) -> str:
    """Grafana URL of a dashboard by uid."""
    return f"{GRAFANA_URL}/d/{uid}"


def runbook_url(anchor: str) -> str:
    """URL of one runbook section."""
    return f"{RUNBOOK_URL}#{anchor}"
