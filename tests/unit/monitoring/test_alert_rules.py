"""Static checks of the rule files: alert metadata, links, naming, and rule-test coverage."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.support.env import ROOT
from tests.support.monitoring import PROMETHEUS_DIR, dashboards, links, runbook_anchors
from tests.support.promql import rule_files, rules

ALERTS = [rule for rule in rules(ROOT) if "alert" in rule]
ALERT_NAMES = sorted({rule["alert"] for rule in ALERTS})
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")


def _rule_tests() -> list[dict[str, Any]]:
    cases = []
    for path in sorted((PROMETHEUS_DIR / "tests").glob("*-test.yml")):
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_there_are_alerts_for_every_area_of_the_issue() -> None:
    """The alert set covers the service, SLOs, GPU, relay, Alertmanager, Prometheus and Watchdog."""
    assert {
        "ServiceDown", "OfaVeModelNotReady", "OfaVeHighLatency", "OfaVeHighErrorRate",
        "OfaVeAvailabilityBudgetBurn", "OfaVeLatencyBudgetBurn", "OfaVeQueueSaturated",
        "OfaVeRequestsRejected", "OfaVeGpuMemoryHigh", "OfaVeGpuTooHot", "WebhookRelayDeliveryFailing",
        "WebhookRelayOutboxBacklog", "WebhookRelayDeadLetters", "AlertmanagerNotificationsFailing",
        "PrometheusRuleEvaluationFailures", "Watchdog",
    } <= set(ALERT_NAMES)  # fmt: skip


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_has_severity_summary_description_with_value(rule: dict[str, Any]) -> None:
    """Each alert carries a known severity, a summary and a description quoting the observed value."""
    assert rule["labels"]["severity"] in {"critical", "warning", "info", "none"}
    assert rule["annotations"]["summary"]
    assert "$value" in rule["annotations"]["description"]


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_links_point_at_an_existing_runbook_section_and_dashboard(rule: dict[str, Any]) -> None:
    """runbook_url is the runbook base plus an existing anchor; dashboard_url names a generated dashboard."""
    urls = links()
    anchor = rule["alert"].lower()
    assert rule["annotations"]["runbook_url"] == urls.runbook_url(anchor)
    assert anchor in runbook_anchors()
    uids = {board["uid"] for board in dashboards().values()}
    assert rule["annotations"]["dashboard_url"] in {urls.dashboard_url(uid) for uid in uids}


def test_every_runbook_section_belongs_to_an_alert() -> None:
    """The runbook has no section for an alert that no longer exists."""
    assert runbook_anchors() == {name.lower() for name in ALERT_NAMES}


def test_recording_rules_are_named_level_metric_operations() -> None:
    """Recorded series follow the level:metric:operations convention and live under rules/."""
    for path in rule_files(ROOT):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    assert path.parent.name == "rules", rule["record"]
                    assert RECORD_NAME.match(rule["record"]), rule["record"]
                else:
                    assert path.parent.name == "alerts", rule["alert"]


@pytest.mark.parametrize("alertname", ALERT_NAMES)
def test_every_alert_has_a_firing_case_and_a_quiet_case(alertname: str) -> None:
    """promtool tests assert each alert both firing (full labels and annotations) and not firing."""
    cases = [case for case in _rule_tests() if case["alertname"] == alertname]
    firing = [case for case in cases if case.get("exp_alerts")]
    assert firing, f"no promtool case where {alertname} fires"
    for case in firing:
        for alert in case["exp_alerts"]:
            assert alert["exp_labels"]["severity"]
            assert set(alert["exp_annotations"]) == {"summary", "description", "runbook_url", "dashboard_url"}
    if alertname != "Watchdog":
        assert any(not case.get("exp_alerts") for case in cases), (
            f"no promtool case where {alertname} is quiet"
        )
