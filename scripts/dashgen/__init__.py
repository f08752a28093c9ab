"""In-house generator of the Grafana dashboards under grafana/dashboards/ (see scripts/gen_dashboards.py)."""

from __future__ import annotations

from dashgen import history, overview, pipeline, slo


def build_all() -> dict[str, dict]:
    """Every dashboard, keyed by the file name it is written to."""
    return {
        "ofa-ve-overview.json": overview.build(),
        "ofa-ve-slo.json": slo.build(),
        "alert-pipeline.json": pipeline.build(),
        "metrics-history.json": history.build(),
    }
