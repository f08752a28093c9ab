"""Every dashboard and rule expression parsed by a real Prometheus; server metric names checked live."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.monitoring.conftest import Server
from tests.support.env import ROOT
from tests.support.monitoring import dashboards
from tests.support.promql import (
    dashboard_expressions,
    exposed_names,
    metric_names,
    rules,
    substitute_grafana_variables,
)

pytestmark = pytest.mark.integration


def _dashboard_queries() -> list[pytest.ParameterSet]:
    return [
        pytest.param(substitute_grafana_variables(expr), id=f"{name} {where}")
        for name, board in dashboards().items()
        for where, expr in dashboard_expressions(board)
    ]


def _all_expressions() -> list[str]:
    return [p.values[0] for p in _dashboard_queries()] + [rule["expr"] for rule in rules(ROOT)]


def _query(prometheus: Server, expr: str) -> httpx.Response:
    return httpx.post(f"{prometheus.url}/api/v1/query", data={"query": expr}, timeout=30)


def test_prometheus_rejects_invalid_promql_with_bad_data(prometheus: Server) -> None:
    """The validity check has teeth: a malformed query is answered 400 bad_data."""
    reply = _query(prometheus, "sum(rate(ofa_ve_requests_total[5m])")
    assert reply.status_code == 400
    assert reply.json()["errorType"] == "bad_data"


@pytest.mark.parametrize("expr", _dashboard_queries())
def test_dashboard_query_is_valid_promql(prometheus: Server, expr: str) -> None:
    """The query, with Grafana's variables substituted, is accepted by Prometheus 2.53."""
    reply = _query(prometheus, expr)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "success"


def test_rules_are_loaded_and_healthy(prometheus: Server) -> None:
    """Prometheus loads every rule group of the bundle without a load error."""
    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {group["name"] for group in groups}
    assert {"ofa-ve-requests", "ofa-ve-slo-availability", "ofa-ve.alerts", "prometheus.alerts"} <= names


# Exported only once the first batch was sent (rule evaluations write ALERTS within 15 s).
FIRST_SEND = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"


@pytest.fixture(scope="module")
def server_names(prometheus: Server, alertmanager: Server) -> set[str]:
    """Names the running Prometheus and Alertmanager expose about themselves (remote write's included)."""
    deadline = time.monotonic() + 60
    while FIRST_SEND not in exposed_names(httpx.get(f"{prometheus.url}/metrics", timeout=10).text):
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus sent nothing to its remote-write receiver within 60 s ({FIRST_SEND})")
        time.sleep(0.5)
    names: set[str] = set()
    for server in (prometheus, alertmanager):
        names |= exposed_names(httpx.get(f"{server.url}/metrics", timeout=10).text)
    return names


def test_prometheus_and_alertmanager_metrics_named_by_dashboards_and_rules_exist(
    server_names: set[str],
) -> None:
    """Every prometheus_* / alertmanager_* name an expression uses is exposed by the real binaries."""
    used = {
        name
        for expr in _all_expressions()
        for name in metric_names(expr)
        if name.startswith(("prometheus_", "alertmanager_"))
    }
    assert {"alertmanager_notifications_failed_total", "prometheus_rule_evaluation_failures_total",
            "prometheus_remote_storage_samples_failed_total"} <= used
    assert used - server_names == set()
