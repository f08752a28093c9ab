"""The relay's evidence queries (webhook_relay.enrichment.table) parsed by the real Prometheus 2.53, with
every alert rule's expression as `$expr` after the relay removed its threshold."""

from __future__ import annotations

import string
from urllib.parse import quote

import httpx
import pytest
from webhook_relay.enrichment import live
from webhook_relay.enrichment.table import CHART, QUERIES

from tests.integration.monitoring.conftest import Server
from tests.support.env import ROOT
from tests.support.promql import rules

pytestmark = pytest.mark.integration
SEL, SVC = live.selectors({"service": "ofa-ve"}, "10.0.0.5:8000")


def _valid(prometheus: Server, expr: str) -> None:
    reply = httpx.post(f"{prometheus.url}/api/v1/query", data={"query": expr}, timeout=30)
    assert reply.status_code == 200 and reply.json()["status"] == "success", (expr, reply.text)


@pytest.mark.parametrize("query", [*QUERIES, *CHART],
                         ids=lambda q: getattr(q, "name", getattr(q, "title", "")))
def test_every_evidence_query_is_valid_promql(prometheus: Server, query) -> None:
    """Each query of the table, for an instance, is accepted (`$expr`: the latency alert's)."""
    expr = live.alert_expression("http://p/graph?g0.expr=" + quote(
        'instance_endpoint_quantile:ofa_ve_request_duration_seconds:histogram_quantile{quantile="0.95"} > 2'))
    _valid(prometheus, string.Template(query.promql).substitute(sel=SEL, svc=SVC, expr=expr))


def test_every_alert_expression_without_its_threshold_is_valid_promql(prometheus: Server) -> None:
    """The relay queries each alert's own value (now and an hour ago) with its threshold removed."""
    alerts = [rule for rule in rules(ROOT) if "alert" in rule]
    assert len(alerts) > 20
    for rule in alerts:
        stripped = live.alert_expression("http://p/graph?g0.expr=" + quote(rule["expr"]))
        assert stripped, rule["alert"]
        _valid(prometheus, stripped)
