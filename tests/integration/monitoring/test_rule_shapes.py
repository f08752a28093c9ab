"""The alerts against series shaped like the real system over hours, run by the pinned promtool.

The committed rule tests (prometheus/tests/) check labels and annotations one event at a time. These
check timing over hours: each alert is quiet before its `for:`, fires after it and stays firing for
as long as the generated outage lasts (checked every 5 minutes), and resolves once the shape
recovers. Series come from tests/support/shapes.py (the relay's and the service's own retry code);
alert rules are the committed ones with their annotations left out, so only timing is compared.
"""

from __future__ import annotations

import copy
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.env import ROOT, tool
from tests.support.promql import duration_seconds, range_seconds, rules
from tests.support.shapes import (
    EVALUATION_INTERVAL_S,
    JITTER_LONGEST,
    JITTER_SHORTEST,
    SCRAPE_INTERVAL_S,
    Series,
    crash_loop,
    input_series,
    model_load_shape,
    relay_retry_shape,
    replicas_shape,
)

pytestmark = pytest.mark.integration

HOUR = 3600.0
MINUTE = 60.0
CHECK_EVERY_S = 5 * MINUTE
# Around each expected change of state, skip checks for this long: the alert changes at the first
# evaluation after the change, and the generated change falls between two scrapes.
MARGIN_S = 2 * MINUTE
RECORDING_RULES = ROOT / "prometheus" / "rules" / "ofa-ve.rules.yml"
# What WebhookRelayDeliveryFailing looked like before it read the relay's failing gauge.
OLD_DELIVERY_FAILING_EXPR = (
    "sum by (service, instance, target, channel) (rate(webhook_relay_messages_failed_total[5m])) > 0"
)
_FAILED_CHECK = re.compile(r"alertname: (\w+), time: (\S+?),\s*\n\s*exp:(.*?)got:\[(.*?)\]", re.S)


def _rule(name: str) -> dict[str, Any]:
    """The committed alert rule without annotations (timing is checked here, texts elsewhere)."""
    (rule,) = [r for r in rules(ROOT) if r.get("alert") == name]
    rule = copy.deepcopy(rule)
    rule.pop("annotations")
    return rule


def _timing(name: str) -> tuple[float, float]:
    """`for:` and `keep_firing_for:` of a committed alert, in seconds."""
    rule = _rule(name)
    return duration_seconds(rule.get("for", "0s")), duration_seconds(rule.get("keep_firing_for", "0s"))


@dataclass
class Expect:
    """The alert's labels, and the spans where it must be firing and must be quiet."""

    alertname: str
    labels: dict[str, str]
    firing: list[tuple[float, float]]
    quiet: list[tuple[float, float]]


def _checks(expect: Expect, end_s: float) -> list[tuple[float, bool]]:
    """(eval time, firing?) every CHECK_EVERY_S inside the spans, MARGIN_S away from their ends."""
    found = []
    for firing, spans in ((True, expect.firing), (False, expect.quiet)):
        for start, stop in spans:
            low, high = (start + MARGIN_S if start > 0 else 0.0), stop - MARGIN_S
            found.extend((t, firing) for t in _grid(end_s) if low <= t <= high)
    return sorted(found)


def _grid(end_s: float) -> list[float]:
    return [i * CHECK_EVERY_S for i in range(int(end_s // CHECK_EVERY_S) + 1)]


def _alert_tests(expects: list[Expect], end_s: float) -> list[dict[str, Any]]:
    tests = []
    for expect in expects:
        checks = _checks(expect, end_s)
        # A span too short for a check would make the test pass without looking.
        if expect.firing:
            assert any(firing for _, firing in checks), f"no firing check: {expect}"
        if expect.quiet:
            assert any(not firing for _, firing in checks), f"no quiet check: {expect}"
        for t, firing in checks:
            labels = {**_rule(expect.alertname)["labels"], **expect.labels}
            tests.append(
                {
                    "eval_time": f"{int(t)}s",
                    "alertname": expect.alertname,
                    "exp_alerts": [{"exp_labels": labels}] if firing else [],
                }
            )
    return tests


def _promtool(
    work: Path,
    alert_rules: list[dict[str, Any]],
    series: list[Series],
    expects: list[Expect],
    end_s: float,
    promql: list[dict[str, Any]] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Write the rules and one test over `series` into `work` and run `promtool test rules`."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "alerts.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "shapes", "rules": alert_rules}]}), encoding="utf-8"
    )
    test = {
        "rule_files": [str(RECORDING_RULES), "alerts.yml"],
        "evaluation_interval": f"{int(EVALUATION_INTERVAL_S)}s",
        "tests": [
            {
                "name": "generated shape",
                "interval": f"{int(SCRAPE_INTERVAL_S)}s",
                "input_series": input_series(series),
                "alert_rule_test": _alert_tests(expects, end_s),
                "promql_expr_test": promql or [],
            }
        ],
    }
    (work / "test.yml").write_text(yaml.safe_dump(test, width=1_000_000), encoding="utf-8")
    return subprocess.run(
        [tool("promtool"), "test", "rules", "test.yml"], capture_output=True, text=True, timeout=300, cwd=work
    )


def _assert_passes(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "SUCCESS" in result.stdout


def _failed_checks(result: subprocess.CompletedProcess[str]) -> list[tuple[float, bool]]:
    """(eval time, whether nothing fired) of every check promtool reports as failed."""
    return [
        (duration_seconds(time), not got.strip())
        for _, time, _, got in _FAILED_CHECK.findall(result.stdout + result.stderr)
    ]


# --- WebhookRelayDeliveryFailing -----------------------------------------------------------------

RELAY_START_S = 5 * MINUTE
RELAY_OUTAGE_S = 2 * HOUR
JITTER_EXTREMES = pytest.mark.parametrize(
    "rand", [JITTER_SHORTEST, JITTER_LONGEST], ids=["jitter-shortest", "jitter-longest"]
)


def _relay_case(rand: float) -> tuple[list[Series], Expect, float]:
    fixed = RELAY_START_S + RELAY_OUTAGE_S
    shape = relay_retry_shape(start_s=RELAY_START_S, fixed_s=fixed, end_s=fixed + HOUR, rand=rand)
    wait, keep = _timing("WebhookRelayDeliveryFailing")
    fires = shape.first_failure_s + wait
    resolves = shape.recovered_s + keep
    expect = Expect(
        "WebhookRelayDeliveryFailing",
        {"service": "webhook-relay", "instance": "webhook-relay:8080", "target": "dingtalk-ops",
         "channel": "dingtalk"},
        firing=[(fires, shape.recovered_s)],
        quiet=[(0, fires), (resolves, shape.end_s)],
    )  # fmt: skip
    return list(shape.series), expect, shape.end_s


@JITTER_EXTREMES
def test_delivery_failing_fires_and_stays_firing_through_two_hours_of_retries(
    tmp_path: Path, rand: float
) -> None:
    """A robot failing for 2 h pages after 10 min, stays paged through every backoff wait, resolves after."""
    series, expect, end_s = _relay_case(rand)
    checks = _checks(expect, end_s)
    assert sum(firing for _, firing in checks) >= 20, "the check must cover the 2 h outage"
    _assert_passes(_promtool(tmp_path, [_rule("WebhookRelayDeliveryFailing")], series, [expect], end_s))


@JITTER_EXTREMES
def test_the_old_failure_rate_rule_resolves_while_the_robot_is_still_failing(
    tmp_path: Path, rand: float
) -> None:
    """The same shape against the old `rate(...[5m]) > 0` rule: it fires, then goes quiet mid-outage."""
    series, expect, end_s = _relay_case(rand)
    old = {**_rule("WebhookRelayDeliveryFailing"), "expr": OLD_DELIVERY_FAILING_EXPR}
    old.pop("keep_firing_for", None)
    result = _promtool(tmp_path / "timing", [old], series, [expect], end_s)
    assert result.returncode != 0, "the old rule passed: the shape does not show the false resolve"
    (fires, recovered) = expect.firing[0]
    missing_while_failing = [t for t, nothing in _failed_checks(result) if nothing and fires <= t < recovered]
    assert missing_while_failing, (result.stdout + result.stderr)[-4000:]
    # ... after it had fired: ALERTS shows it firing at some point of the outage, so what the chat saw
    # was a page followed by a "resolved" while the robot was still broken.
    alerts = f'ALERTS{{alertname="{expect.alertname}",alertstate="firing"}}'
    fired = {
        "expr": f"max_over_time({alerts}[{int(recovered)}s])",
        "eval_time": f"{int(recovered)}s",
        "exp_samples": [{"labels": _alerts_labels(old, expect), "value": 1}],
    }
    probe = _promtool(tmp_path / "probe", [old], series, [], end_s, promql=[fired])
    _assert_passes(probe)


def _alerts_labels(rule: dict[str, Any], expect: Expect) -> str:
    labels = {"alertname": expect.alertname, "alertstate": "firing", **rule["labels"], **expect.labels}
    return "{" + ",".join(f'{key}="{value}"' for key, value in sorted(labels.items())) + "}"


def test_failed_check_parser_reads_promtool_durations() -> None:
    """promtool prints eval times as Go durations (1h5m0s); the parser turns them into seconds."""
    text = "    alertname: X, time: 1h5m0s, \n        exp:[\n 0: {}\n], \n        got:[]\n"
    result = subprocess.CompletedProcess([], 1, stdout=text, stderr="")
    assert _failed_checks(result) == [(3900.0, True)]


# --- OfaVeModelLoadFailed / OfaVeModelNotReady ----------------------------------------------------

MODEL_OUTAGE_S = 2 * HOUR
INSTANCE = {"service": "ofa-ve", "job": "ofa-ve", "instance": "10.0.0.5:8000"}


@pytest.mark.parametrize("attempt_s", [5.0, 4 * MINUTE], ids=["attempt-fails-fast", "attempt-fails-slowly"])
def test_model_load_failed_stays_firing_while_loads_keep_failing(tmp_path: Path, attempt_s: float) -> None:
    """Loads failing for 2 h page once, stay paged between retries, and resolve after the model loads."""
    shape = model_load_shape(attempt_s=attempt_s, fixed_s=MODEL_OUTAGE_S, end_s=MODEL_OUTAGE_S + HOUR)
    wait, keep = _timing("OfaVeModelLoadFailed")
    fires = shape.failures[0] + wait
    failed = Expect(
        "OfaVeModelLoadFailed", INSTANCE,
        firing=[(fires, shape.ready_s)], quiet=[(0, fires), (shape.ready_s + keep, shape.end_s)],
    )  # fmt: skip
    # Never both: a load that fails is not "still loading".
    not_ready = Expect("OfaVeModelNotReady", INSTANCE, firing=[], quiet=[(0, shape.end_s)])
    rules_ = [_rule("OfaVeModelLoadFailed"), _rule("OfaVeModelNotReady")]
    _assert_passes(_promtool(tmp_path, rules_, list(shape.series), [failed, not_ready], shape.end_s))


def test_model_not_ready_waits_out_a_slow_first_download_and_fires_for_a_stuck_load(tmp_path: Path) -> None:
    """A first load of 17 min (within the 15 min start period plus margin) is quiet; a stuck one fires."""
    slow = model_load_shape(attempt_s=17 * MINUTE, fixed_s=0, end_s=HOUR, instance="10.0.0.5:8000")
    stuck = model_load_shape(attempt_s=10 * HOUR, fixed_s=0, end_s=HOUR, instance="10.0.0.6:8000")
    wait, _ = _timing("OfaVeModelNotReady")
    expects = [
        Expect("OfaVeModelNotReady", {**INSTANCE, "instance": "10.0.0.6:8000"},
               firing=[(wait, HOUR)], quiet=[(0, wait)]),
        Expect("OfaVeModelLoadFailed", INSTANCE, firing=[], quiet=[(0, HOUR)]),
    ]  # fmt: skip
    rules_ = [_rule("OfaVeModelLoadFailed"), _rule("OfaVeModelNotReady")]
    _assert_passes(_promtool(tmp_path, rules_, [*slow.series, *stuck.series], expects, HOUR))


# --- OfaVeReplicasMissing ------------------------------------------------------------------------

REPLICAS_END_S = 2 * HOUR + 30 * MINUTE
LOST_AT_S = 10 * MINUTE
BACK_AT_S = 2 * HOUR + 10 * MINUTE
# The alert's min_over_time window: a returned replica counts once its dip has left it.
(LOW_POINT_WINDOW_S,) = range_seconds(
    _rule("OfaVeReplicasMissing")["expr"], "service:ofa_ve_replicas_up:count"
)
SERVICE = {"service": "ofa-ve"}
REPLICA_RULES = ["OfaVeReplicasMissing", "OfaVeNoReplicas", "ServiceDown"]


def _quiet(name: str, end_s: float) -> Expect:
    return Expect(name, {}, firing=[], quiet=[(0, end_s)])


def _missing(fires: float, resolves: float, end_s: float) -> Expect:
    return Expect(
        "OfaVeReplicasMissing", SERVICE, firing=[(fires, resolves)], quiet=[(0, fires), (resolves, end_s)]
    )


def test_replicas_missing_fires_for_a_vanished_replica_until_it_is_back(tmp_path: Path) -> None:
    """One of three configured replicas stops for 2 h: warning after `for:`, all along, quiet once back.

    Its series just end (Docker DNS drops it), so ServiceDown never fires: this alert is the only one.
    """
    series = replicas_shape(3, expected=3, end_s=REPLICAS_END_S, gaps={2: [(LOST_AT_S, BACK_AT_S)]})
    wait, _ = _timing("OfaVeReplicasMissing")
    expects = [
        _missing(LOST_AT_S + wait, BACK_AT_S + LOW_POINT_WINDOW_S, REPLICAS_END_S),
        _quiet("ServiceDown", REPLICAS_END_S),
        _quiet("OfaVeNoReplicas", REPLICAS_END_S),
    ]
    rules_ = [_rule(name) for name in REPLICA_RULES]
    _assert_passes(_promtool(tmp_path, rules_, series, expects, REPLICAS_END_S))


def test_the_only_replica_hung_for_hours_stays_missing_until_it_answers(tmp_path: Path) -> None:
    """The only replica hangs for 3 h (scrapes time out): ServiceDown and the replica warning hold all along.

    Nothing exports the configured count while it hangs; the recorded count must not forget it.
    """
    end_s = LOST_AT_S + 3 * HOUR + HOUR
    back_s = LOST_AT_S + 3 * HOUR
    series = replicas_shape(1, expected=1, end_s=end_s, hung={0: [(LOST_AT_S, back_s)]})
    wait, _ = _timing("OfaVeReplicasMissing")
    expects = [
        _missing(LOST_AT_S + wait, back_s + LOW_POINT_WINDOW_S, end_s),
        _quiet("OfaVeNoReplicas", end_s),
    ]
    rules_ = [_rule(name) for name in ("OfaVeReplicasMissing", "OfaVeNoReplicas")]
    _assert_passes(_promtool(tmp_path, rules_, series, expects, end_s))


def test_replicas_missing_without_a_configured_count_forgets_after_an_hour(tmp_path: Path) -> None:
    """With OFA_VE_EXPECTED_REPLICAS unset the most replicas of the last hour are expected, for an hour."""
    series = replicas_shape(3, expected=0, end_s=REPLICAS_END_S, gaps={2: [(LOST_AT_S, REPLICAS_END_S + 1)]})
    wait, _ = _timing("OfaVeReplicasMissing")
    expects = [_missing(LOST_AT_S + wait, LOST_AT_S + HOUR, REPLICAS_END_S)]
    _assert_passes(_promtool(tmp_path, [_rule("OfaVeReplicasMissing")], series, expects, REPLICAS_END_S))


@pytest.mark.parametrize(("count", "crashing"), [(3, 2), (1, 0)], ids=["one-of-three", "the-only-one"])
def test_replicas_missing_fires_for_a_crash_looping_replica(
    tmp_path: Path, count: int, crashing: int
) -> None:
    """A replica up 1 min, gone 90 s, for 2 h: warning all along, though it is up now and then.

    With a single replica neither ServiceDown nor OfaVeNoReplicas (absent for 5 min) ever sees it.
    """
    loop = crash_loop(LOST_AT_S, BACK_AT_S, up_s=MINUTE, down_s=90)
    series = replicas_shape(count, expected=count, end_s=REPLICAS_END_S, gaps={crashing: loop})
    wait, _ = _timing("OfaVeReplicasMissing")
    last_gap_end = loop[-1][1]
    expects = [
        _missing(LOST_AT_S + MINUTE + wait, last_gap_end + LOW_POINT_WINDOW_S, REPLICAS_END_S),
        _quiet("ServiceDown", REPLICAS_END_S),
        _quiet("OfaVeNoReplicas", REPLICAS_END_S),
    ]
    rules_ = [_rule(name) for name in REPLICA_RULES]
    _assert_passes(_promtool(tmp_path, rules_, series, expects, REPLICAS_END_S))


def test_replicas_missing_stays_quiet_through_single_restarts(tmp_path: Path) -> None:
    """Replicas restarting one at a time, each gone 2 min, once every 20 min: never a warning."""
    gaps = {i: [(LOST_AT_S + i * 20 * MINUTE + k * HOUR, LOST_AT_S + i * 20 * MINUTE + k * HOUR + 2 * MINUTE)
                for k in range(2)] for i in range(3)}  # fmt: skip
    series = replicas_shape(3, expected=3, end_s=REPLICAS_END_S, gaps=gaps)
    expects = [_quiet("OfaVeReplicasMissing", REPLICAS_END_S)]
    _assert_passes(_promtool(tmp_path, [_rule("OfaVeReplicasMissing")], series, expects, REPLICAS_END_S))
