"""Static checks of alertmanager/alertmanager.yml against the contract and the issue."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.monitoring import ALERTMANAGER_CONFIG, RELAY_TOKEN_FILE


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))


def _receiver(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in config["receivers"] if r["name"] == name)


@pytest.mark.parametrize(
    ("receiver", "path", "resolved"),
    [
        ("chat-critical", "critical", True),
        ("chat-warning", "warning", True),
        ("heartbeat", "watchdog", False),
    ],
)
def test_webhook_receivers_reach_the_relay_with_a_bearer_token_file(
    config: dict[str, Any], receiver: str, path: str, resolved: bool
) -> None:
    """Each receiver posts to its relay route with a token file, send_resolved and max_alerts."""
    (hook,) = _receiver(config, receiver)["webhook_configs"]
    assert hook["url"] == f"http://webhook-relay:8080/webhook/{path}"
    assert hook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": RELAY_TOKEN_FILE}
    assert hook["send_resolved"] is resolved
    assert hook["max_alerts"] > 0


def test_null_receiver_sends_nothing(config: dict[str, Any]) -> None:
    """The info receiver has no integration at all."""
    assert _receiver(config, "null") == {"name": "null"}


def test_grouping_by_alertname_and_service_with_timings(config: dict[str, Any]) -> None:
    """Alerts are grouped by alertname and service, with group wait/interval/repeat set."""
    route = config["route"]
    assert route["group_by"] == ["alertname", "service"]
    assert {"group_wait", "group_interval", "repeat_interval"} <= set(route)


def test_critical_inhibits_warning_and_down_inhibits_latency_and_errors(config: dict[str, Any]) -> None:
    """The two inhibition rules of the issue are configured with the right equal labels."""
    rules = config["inhibit_rules"]
    assert {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname", "service"],
    } in rules
    down = next(r for r in rules if r["source_matchers"] == ['alertname="ServiceDown"'])
    assert down["equal"] == ["service", "instance"]
    assert down["target_matchers"] == ['alertname=~"OfaVeHighLatency|OfaVeHighErrorRate"']


def test_no_replicas_inhibits_replicas_missing_of_the_same_service(config: dict[str, Any]) -> None:
    """OfaVeNoReplicas (critical, all gone) mutes OfaVeReplicasMissing (warning, some gone) of its service."""
    assert {
        "source_matchers": ['alertname="OfaVeNoReplicas"'],
        "target_matchers": ['alertname="OfaVeReplicasMissing"'],
        "equal": ["service"],
    } in config["inhibit_rules"]
