"""The dashboards against the real VictoriaMetrics binary: every query is accepted (the same panels run on
either datasource) and every vm_* name they use is one it exposes."""

from __future__ import annotations

import httpx
import pytest

from tests.support.monitoring import dashboards
from tests.support.promql import (
    dashboard_expressions,
    exposed_names,
    metric_names,
    substitute_grafana_variables,
)
from tests.support.victoriametrics import VictoriaMetrics

pytestmark = pytest.mark.integration


def _queries() -> list[pytest.ParameterSet]:
    return [
        pytest.param(substitute_grafana_variables(expr), id=f"{name} {where}")
        for name, board in dashboards().items()
        for where, expr in dashboard_expressions(board)
    ]


@pytest.mark.parametrize("expr", _queries())
def test_every_dashboard_query_is_accepted_by_victoriametrics(
    victoriametrics: VictoriaMetrics, expr: str
) -> None:
    """MetricsQL accepts each query as Grafana would send it to the VictoriaMetrics datasource."""
    reply = httpx.post(f"{victoriametrics.url}/api/v1/query", data={"query": expr}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "success"


def test_victoriametrics_rejects_invalid_queries(victoriametrics: VictoriaMetrics) -> None:
    """The check has teeth: a malformed query is answered with an error."""
    reply = httpx.post(f"{victoriametrics.url}/api/v1/query", data={"query": "sum(rate(x[5m])"}, timeout=30)
    assert reply.status_code == 422 or reply.json()["status"] == "error"


def test_vm_metric_names_the_dashboards_use_exist(victoriametrics: VictoriaMetrics) -> None:
    """Each vm_* name a dashboard reads is exposed on VictoriaMetrics' own /metrics."""
    used = {name for p in _queries() for name in metric_names(p.values[0]) if name.startswith("vm_")}
    assert {"vm_rows_inserted_total", "vm_data_size_bytes", "vm_free_disk_space_bytes"} <= used
    exposed = exposed_names(httpx.get(f"{victoriametrics.url}/metrics", timeout=10).text)
    assert used - exposed == set()
