"""Every metric a dashboard or rule names is exported by ofa-ve or the relay, or recorded by a rule.

Prometheus' and Alertmanager's own metrics are checked against the running binaries in
tests/integration/monitoring/test_queries.py, VictoriaMetrics' (vm_*) against the Debian binary in
tests/integration/metrics_snapshot/test_victoriametrics.py.
"""

from __future__ import annotations

import pytest

from tests.support.env import ROOT
from tests.support.exported import PROMETHEUS_SYNTHETIC, service_metric_names
from tests.support.monitoring import dashboards
from tests.support.promql import (
    dashboard_expressions,
    metric_names,
    recorded_names,
    rules,
    substitute_grafana_variables,
)

SERVER_PREFIXES = ("prometheus_", "alertmanager_", "vm_")


def _expressions() -> list[pytest.ParameterSet]:
    found = [(f"rule {r.get('record') or r['alert']}", r["expr"]) for r in rules(ROOT)]
    for name, board in dashboards().items():
        found.extend(
            (f"{name} {where}", substitute_grafana_variables(expr))
            for where, expr in dashboard_expressions(board)
        )
    return [pytest.param(where, expr, id=where) for where, expr in found]


@pytest.fixture(scope="module")
def known() -> set[str]:
    return service_metric_names() | recorded_names(ROOT) | PROMETHEUS_SYNTHETIC


def test_the_registries_export_the_contract_metrics(known: set[str]) -> None:
    """The names read from the registries include the GPU, relay and snapshot families (checks have teeth)."""
    assert {"ofa_ve_requests_total", "ofa_ve_gpu_temperature_celsius", "webhook_relay_dead_letters",
            "webhook_relay_dead_letters_total", "process_resident_memory_bytes",
            "metrics_snapshot_days_behind", "metrics_snapshot_backup_bytes"} <= known  # fmt: skip
    assert "ofa_ve_no_such_metric" not in known


@pytest.mark.parametrize(("where", "expr"), _expressions())
def test_every_named_metric_exists(known: set[str], where: str, expr: str) -> None:
    """Each metric an expression selects is exported by a service, recorded, or made by Prometheus."""
    names = {n for n in metric_names(expr) if not n.startswith(SERVER_PREFIXES)}
    assert names <= known, f"{where}: unknown {sorted(names - known)}"
