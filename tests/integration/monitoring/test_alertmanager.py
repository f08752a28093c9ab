"""alertmanager.yml checked by the pinned amtool, and its inhibition rules by a real Alertmanager."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.monitoring.conftest import Server
from tests.support.env import ROOT, tool
from tests.support.monitoring import ALERTMANAGER_CONFIG
from tests.support.promql import rules

pytestmark = pytest.mark.integration

INHIBIT_WAIT_S = 10
SEVERITY_RECEIVER = {"critical": "chat-critical", "warning": "chat-warning", "info": "null"}
# Alerts routed by name, not by severity: Watchdog feeds the heartbeat; the relay posts its own
# full-disk notice directly, so the rule's copy stays in Alertmanager's UI.
ROUTED_BY_NAME = {"Watchdog": "heartbeat", "WebhookRelayOutboxNotWritable": "null"}


def _cases() -> list[dict[str, Any]]:
    listed = yaml.safe_load((ROOT / "alertmanager/tests/routes.yml").read_text(encoding="utf-8"))["cases"]
    derived = []
    for rule in rules(ROOT):
        if "alert" not in rule:
            continue
        labels = {"alertname": rule["alert"], "service": "ofa-ve", **rule["labels"]}
        receiver = ROUTED_BY_NAME.get(rule["alert"]) or SEVERITY_RECEIVER[labels["severity"]]
        derived.append(
            {"name": f"{rule['alert']} ({labels['severity']}) reaches {receiver}", "labels": labels,
             "receivers": [receiver]}
        )  # fmt: skip
    return listed + derived


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("amtool"), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_amtool_check_config_accepts_alertmanager_yml() -> None:
    """`amtool check-config` accepts the config with its receivers, routes and inhibit rules."""
    result = _amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_route_reaches_the_expected_receivers(case: dict[str, Any]) -> None:
    """`amtool config routes test` resolves the alert's labels to exactly the expected receivers."""
    labels = [f"{key}={value}" for key, value in case["labels"].items()]
    result = _amtool(
        "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={','.join(case['receivers'])}", *labels,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_route_test_fails_for_a_wrong_receiver() -> None:
    """The route check can fail: a critical alert does not resolve to the warning receiver."""
    result = _amtool(
        "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
        "--verify.receivers=chat-warning", "alertname=X", "severity=critical",
    )  # fmt: skip
    assert result.returncode != 0


def _alert(**labels: str) -> dict[str, Any]:
    return {
        "labels": labels,
        "annotations": {"summary": "inhibition test"},
        "startsAt": datetime.now(UTC).isoformat(),
    }


def _inhibited(am: Server, test_id: str, expected: dict[tuple[str, str, str], bool]) -> dict:
    """Which alerts of one test are inhibited, once that matches `expected` or after a bounded wait.

    The inhibitor learns about new source alerts asynchronously, so the first read may be early.
    """
    deadline = time.monotonic() + INHIBIT_WAIT_S
    while True:
        reply = httpx.get(f"{am.url}/api/v2/alerts", params={"filter": f'test_id="{test_id}"'}, timeout=10)
        reply.raise_for_status()
        got = {
            (a["labels"]["alertname"], a["labels"]["severity"], a["labels"].get("instance", "")): bool(
                a["status"]["inhibitedBy"]
            )
            for a in reply.json()
        }
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_critical_inhibits_the_warning_of_the_same_alert_and_service(alertmanager: Server) -> None:
    """A page mutes the ticket of the same alert and service, not the ticket of another alert."""
    alerts = [
        _alert(alertname="OfaVeAvailabilityBudgetBurn", severity="critical", service="ofa-ve", test_id="t1"),
        _alert(alertname="OfaVeAvailabilityBudgetBurn", severity="warning", service="ofa-ve", test_id="t1"),
        _alert(alertname="OfaVeLatencyBudgetBurn", severity="warning", service="ofa-ve", test_id="t1"),
    ]
    httpx.post(f"{alertmanager.url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()
    expected = {
        ("OfaVeAvailabilityBudgetBurn", "critical", ""): False,
        ("OfaVeAvailabilityBudgetBurn", "warning", ""): True,
        ("OfaVeLatencyBudgetBurn", "warning", ""): False,
    }
    assert _inhibited(alertmanager, "t1", expected) == expected


def test_service_down_inhibits_that_instances_latency_and_error_alerts(alertmanager: Server) -> None:
    """ServiceDown of one replica mutes its latency and error alerts, not those of another replica."""
    down, other = "10.0.0.5:8000", "10.0.0.6:8000"
    alerts = [
        _alert(alertname="ServiceDown", severity="critical", service="ofa-ve", instance=down, test_id="t2"),
        _alert(
            alertname="OfaVeHighLatency", severity="warning", service="ofa-ve", instance=down, test_id="t2"
        ),
        _alert(
            alertname="OfaVeHighErrorRate", severity="critical", service="ofa-ve", instance=down, test_id="t2"
        ),
        _alert(
            alertname="OfaVeHighLatency", severity="warning", service="ofa-ve", instance=other, test_id="t2"
        ),
        _alert(
            alertname="OfaVeModelNotReady", severity="critical", service="ofa-ve", instance=down, test_id="t2"
        ),
    ]
    httpx.post(f"{alertmanager.url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()
    expected = {
        ("ServiceDown", "critical", down): False,
        ("OfaVeHighLatency", "warning", down): True,
        ("OfaVeHighErrorRate", "critical", down): True,
        ("OfaVeHighLatency", "warning", other): False,
        ("OfaVeModelNotReady", "critical", down): False,
    }
    assert _inhibited(alertmanager, "t2", expected) == expected


def test_no_replicas_inhibits_replicas_missing(alertmanager: Server) -> None:
    """With every replica gone, only OfaVeNoReplicas is reported, not also "fewer than expected"."""
    alerts = [
        _alert(alertname="OfaVeNoReplicas", severity="critical", service="ofa-ve", test_id="t3"),
        _alert(alertname="OfaVeReplicasMissing", severity="warning", service="ofa-ve", test_id="t3"),
        _alert(alertname="OfaVeReplicasMissing", severity="warning", service="other", test_id="t3"),
    ]
    httpx.post(f"{alertmanager.url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()
    got = _inhibited_by_service(alertmanager, "t3")
    assert got == {
        ("OfaVeNoReplicas", "ofa-ve"): False,
        ("OfaVeReplicasMissing", "ofa-ve"): True,
        ("OfaVeReplicasMissing", "other"): False,
    }


def _inhibited_by_service(am: Server, test_id: str) -> dict[tuple[str, str], bool]:
    """(alertname, service) -> inhibited, once the muted alert shows as inhibited or after a bounded wait."""
    deadline = time.monotonic() + INHIBIT_WAIT_S
    while True:
        reply = httpx.get(f"{am.url}/api/v2/alerts", params={"filter": f'test_id="{test_id}"'}, timeout=10)
        reply.raise_for_status()
        got = {
            (a["labels"]["alertname"], a["labels"]["service"]): bool(a["status"]["inhibitedBy"])
            for a in reply.json()
        }
        if got.get(("OfaVeReplicasMissing", "ofa-ve")) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)
