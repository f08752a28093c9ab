"""Static checks of the rule files: alert metadata, links, naming, timing, and rule-test coverage."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from ofa_ve.loading import load_retry_delay

from tests.support.env import ROOT
from tests.support.monitoring import (
    COMPOSE_FILE,
    PROMETHEUS_DIR,
    dashboards,
    github_anchor,
    links,
    runbook_anchors,
    runbook_sections,
)
from tests.support.promql import duration_seconds, range_seconds, rule_files, rules

ALERTS = [rule for rule in rules(ROOT) if "alert" in rule]
ALERT_NAMES = sorted({rule["alert"] for rule in ALERTS})
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
CAMEL_CASE = re.compile(r"^(?:[A-Z][a-z0-9]+)+$")
# Alerts webhook-relay raises itself, not a Prometheus rule: they have runbook sections too.
RELAY_RAISED_ALERTS = {"HeartbeatMissing"}
# Healthcheck start period of ofa-ve in docker-compose.yml: `start_period: ${OFA_VE_START_PERIOD:-15m}`.
START_PERIOD_DEFAULT = re.compile(r"start_period:\s*\$\{OFA_VE_START_PERIOD:-(\w+)\}")


def _rule_tests() -> list[dict[str, Any]]:
    cases = []
    for path in sorted((PROMETHEUS_DIR / "tests").glob("*-test.yml")):
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def _alert(name: str) -> dict[str, Any]:
    (rule,) = [rule for rule in ALERTS if rule["alert"] == name]
    return rule


def test_there_are_alerts_for_every_area_of_the_issue() -> None:
    """The alert set covers the service, replicas, SLOs, GPU, relay, Alertmanager, Prometheus and Watchdog."""
    assert {
        "ServiceDown", "OfaVeNoReplicas", "OfaVeReplicasMissing", "OfaVeModelLoadFailed",
        "OfaVeModelNotReady", "OfaVeHighLatency", "OfaVeHighErrorRate", "OfaVeAvailabilityBudgetBurn",
        "OfaVeLatencyBudgetBurn", "OfaVeQueueSaturated", "OfaVeRequestsRejected", "OfaVeGpuMemoryHigh",
        "OfaVeGpuTooHot", "WebhookRelayDeliveryFailing", "WebhookRelayOutboxBacklog",
        "WebhookRelayDeadLetters", "WebhookRelayOutboxNotWritable", "WebhookRelayComponentDown",
        "WebhookRelayTaskRestarting", "WebhookRelayHeartbeatForwardFailing",
        "AlertmanagerNotificationsFailing", "AlertmanagerConfigReloadFailed",
        "PrometheusRuleEvaluationFailures", "PrometheusConfigReloadFailed", "PrometheusNotificationsFailing",
        "PrometheusNotificationQueueFull", "PrometheusNotConnectedToAlertmanagers", "Watchdog",
        "OfaVeEventLoopLagging", "OfaVeGpuOutOfMemory", "OfaVeDeviceFault", "MetricsSnapshotFailed",
        "PrometheusRemoteWriteBehind", "PrometheusRemoteWriteFailing",
    } <= set(ALERT_NAMES)  # fmt: skip


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_names_are_camel_case(name: str) -> None:
    """Alert names are CamelCase words, as in the kubernetes and Prometheus mixins."""
    assert CAMEL_CASE.match(name), name


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_has_severity_summary_description_with_value(rule: dict[str, Any]) -> None:
    """Each alert carries a known severity, a summary and a description quoting the observed value."""
    assert rule["labels"]["severity"] in {"critical", "warning", "info", "none"}
    assert rule["annotations"]["summary"]
    assert "$value" in rule["annotations"]["description"]


_CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")
_TEMPLATE = re.compile(r"\{\{.*?\}\}")


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_speaks_english_and_chinese_with_the_same_values(rule: dict[str, Any]) -> None:
    """summary/description are English and summary_zh/description_zh Chinese, quoting the same template
    values, so each chat gets one language with the same facts (the relay picks by target language)."""
    ann = rule["annotations"]
    for name in ("summary", "description"):
        english, chinese = ann[name], ann[f"{name}_zh"]
        assert not _CJK.search(_TEMPLATE.sub("", english)), english
        assert _CJK.search(_TEMPLATE.sub("", chinese)), chinese
        assert sorted(_TEMPLATE.findall(english)) == sorted(_TEMPLATE.findall(chinese)), rule["alert"]
    assert "$value" in ann["description_zh"]


def _dashboard_links() -> set[str]:
    """Every dashboard_url an alert may carry: a generated dashboard, or one with its instance set."""
    urls = links()
    allowed = set()
    for board in dashboards().values():
        allowed.add(urls.dashboard_url(board["uid"]))
        if any(v["name"] == "instance" for v in board["templating"]["list"]):
            allowed.add(urls.dashboard_url(board["uid"], instance=urls.ALERT_INSTANCE))
    return allowed


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_links_are_relative_and_point_at_a_runbook_section_and_dashboard(rule: dict[str, Any]) -> None:
    """runbook_url is the runbook path plus an existing anchor; dashboard_url names a generated dashboard."""
    urls = links()
    anchor = rule["alert"].lower()
    assert rule["annotations"]["runbook_url"] == urls.runbook_url(anchor)
    assert anchor in runbook_anchors()
    assert rule["annotations"]["dashboard_url"] in _dashboard_links()


def test_links_are_relative_paths_for_the_relay_to_resolve() -> None:
    """links.py builds paths, never absolute URLs: the relay joins them to the deployment's bases."""
    urls = links()
    assert urls.runbook_url("servicedown") == "/runbook#servicedown"
    assert urls.dashboard_url("alert-pipeline") == "/d/alert-pipeline"
    assert urls.dashboard_url("x", instance="10.0.0.5:8000") == "/d/x?var-instance=10.0.0.5:8000"


def test_dashboard_links_with_an_instance_only_go_to_dashboards_that_have_that_variable() -> None:
    """The per-replica link is allowed for the overview (it has `instance`) and not for the SLO dashboard."""
    urls = links()
    allowed = _dashboard_links()
    assert urls.dashboard_url(urls.OVERVIEW_UID, instance=urls.ALERT_INSTANCE) in allowed
    assert urls.dashboard_url(urls.SLO_UID, instance=urls.ALERT_INSTANCE) not in allowed


def test_every_runbook_section_belongs_to_an_alert_and_no_alert_has_two() -> None:
    """The runbook has one section per alert (rules and relay-raised), none for an alert that is gone."""
    headings = [heading for heading, _ in runbook_sections()]
    assert len(headings) == len(set(headings)), sorted(h for h in headings if headings.count(h) > 1)
    assert set(headings) == set(ALERT_NAMES) | RELAY_RAISED_ALERTS
    assert runbook_anchors() == {name.lower() for name in set(ALERT_NAMES) | RELAY_RAISED_ALERTS}


def test_relay_raised_alerts_are_the_relays_and_not_rules() -> None:
    """The exception list is true: the relay raises HeartbeatMissing, and no rule has that name."""
    from webhook_relay.heartbeat import ALERTNAME

    assert ALERTNAME in RELAY_RAISED_ALERTS
    assert not RELAY_RAISED_ALERTS & set(ALERT_NAMES)


@pytest.mark.parametrize("heading", sorted(set(ALERT_NAMES) | RELAY_RAISED_ALERTS))
def test_every_runbook_section_says_how_the_alert_behaves_over_time(heading: str) -> None:
    """Each section has an "Over time." paragraph (when it fires, resolves, repeats, after a restart)."""
    bodies = {github_anchor(h): body for h, body in runbook_sections()}
    assert "**Over time.**" in bodies[heading.lower()], heading


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


def test_model_not_ready_waits_longer_than_the_compose_start_period() -> None:
    """OfaVeModelNotReady's `for:` exceeds ofa-ve's healthcheck start period default (first download)."""
    found = START_PERIOD_DEFAULT.findall(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert len(found) == 1, "ofa-ve's start_period default not found in docker-compose.yml"
    start_period = duration_seconds(found[0])
    wait = duration_seconds(_alert("OfaVeModelNotReady")["for"])
    assert wait >= start_period + 5 * 60, f"for: {wait}s, start period {start_period}s"


def test_model_load_failed_looks_back_further_than_the_longest_retry_wait() -> None:
    """OfaVeModelLoadFailed's failure window spans at least twice the longest wait between load attempts."""
    longest_wait = max(load_retry_delay(n) for n in range(1, 50))
    windows = range_seconds(_alert("OfaVeModelLoadFailed")["expr"], "ofa_ve_model_load_failures_total")
    assert windows, "OfaVeModelLoadFailed does not look at ofa_ve_model_load_failures_total"
    assert min(windows) >= 2 * longest_wait, f"window {min(windows)}s, longest wait {longest_wait}s"


def test_replicas_missing_waits_longer_than_its_low_point_window() -> None:
    """OfaVeReplicasMissing's `for:` outlasts its min_over_time window, so one restart cannot fire it."""
    rule = _alert("OfaVeReplicasMissing")
    (window,) = range_seconds(rule["expr"], "service:ofa_ve_replicas_up:count")
    assert "min_over_time" in rule["expr"]
    assert duration_seconds(rule["for"]) > window


@pytest.mark.parametrize(
    ("alertname", "counter"),
    [
        ("WebhookRelayTaskRestarting", "webhook_relay_task_restarts_total"),
        # Every Prometheus start or reload drops what it evaluates before re-discovering Alertmanager.
        ("PrometheusNotificationQueueFull", "prometheus_notifications_dropped_total"),
    ],
)
def test_one_off_events_cannot_fire_alerts_about_repeated_ones(alertname: str, counter: str) -> None:
    """`for:` is longer than the counter's window, so a single event (a restart) never fires the alert."""
    rule = _alert(alertname)
    (window,) = range_seconds(rule["expr"], counter)
    assert duration_seconds(rule["for"]) > window


@pytest.mark.parametrize("alertname", ALERT_NAMES)
def test_every_alert_has_a_firing_case_and_a_quiet_case(alertname: str) -> None:
    """promtool tests assert each alert both firing (full labels and annotations) and not firing."""
    cases = [case for case in _rule_tests() if case["alertname"] == alertname]
    firing = [case for case in cases if case.get("exp_alerts")]
    assert firing, f"no promtool case where {alertname} fires"
    for case in firing:
        for alert in case["exp_alerts"]:
            assert alert["exp_labels"]["severity"]
            assert set(alert["exp_annotations"]) == {
                "summary", "summary_zh", "description", "description_zh", "runbook_url", "dashboard_url",
            }
    if alertname != "Watchdog":
        assert any(not case.get("exp_alerts") for case in cases), (
            f"no promtool case where {alertname} is quiet"
        )
