"""The drills' compression of the committed configuration: every interval divided, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.drills.compression import Compression, compose_command, duration, load_yaml, seconds
from tests.support.env import ROOT

C = Compression(60)


def test_durations_parse_and_print_in_prometheus_syntax():
    """Compound durations parse; compressed ones print as whole milliseconds, at least 1 ms."""
    assert seconds("1h30m") == 5400 and seconds("250ms") == 0.25 and seconds("1d") == 86400
    assert duration(5.0) == "5000ms" and duration(0.0001) == "1ms"
    with pytest.raises(ValueError):
        seconds("5 minutes")


def test_windows_offsets_and_age_thresholds_are_compressed_but_not_other_numbers():
    """[5m], [1h:1m] and `offset` shrink; ages compared in seconds shrink; ratios and latencies do not."""
    expr = (
        "rate(x_total[5m]) > 0.01 and max_over_time(y[1h:1m]) offset 10m > 2"
        " and z_oldest_pending_age_seconds > 300 and time() - w_timestamp_seconds > 600"
    )
    out = C.promql(expr)
    assert "[5000ms]" in out and "[60000ms:1000ms]" in out and "offset 10000ms" in out
    assert "> 0.01" in out and "> 2" in out
    assert "z_oldest_pending_age_seconds > 5" in out and "w_timestamp_seconds > 10" in out


def test_every_committed_rule_file_compresses_for_and_keep_firing_for():
    """Every alert's `for:` shrinks by the factor, except alerts on physical latency, which keep theirs."""
    for path in sorted((ROOT / "prometheus" / "alerts").glob("*.yml")):
        original = load_yaml(path)
        compressed = C.rule_file(original)
        for group, new_group in zip(original["groups"], compressed["groups"], strict=True):
            for rule, new in zip(group["rules"], new_group["rules"], strict=True):
                if "for" not in rule:
                    continue
                physical = "duration_seconds" in rule["expr"] or "event_loop_lag" in rule["expr"]
                want = seconds(rule["for"]) if physical else seconds(rule["for"]) / 60
                assert seconds(new["for"]) == pytest.approx(want, abs=0.001), rule["alert"]


def test_alertmanager_routes_are_compressed_and_point_at_the_local_relay(tmp_path: Path):
    """group_wait / group_interval / repeat_interval shrink on every route; receivers reach the relay."""
    doc = C.alertmanager(
        load_yaml(ROOT / "alertmanager" / "alertmanager.yml"),
        relay_url="http://127.0.0.1:1234", token_file=tmp_path / "t",
    )
    assert doc["route"]["repeat_interval"] == "240000ms"  # 4h
    critical = next(r for r in doc["route"]["routes"] if 'severity="critical"' in r.get("matchers", []))
    assert critical["repeat_interval"] == "60000ms"  # 1h
    hooks = [h for r in doc["receivers"] for h in r.get("webhook_configs", [])]
    assert hooks and all(h["url"].startswith("http://127.0.0.1:1234/webhook/") for h in hooks)


def test_relay_intervals_and_defaults_are_compressed_but_timeouts_are_not():
    """Backoff, dedup window, heartbeat limit and the default rate-limit window shrink; timeouts stay."""
    from webhook_relay.config import parse_config

    env = {"RELAY_AUTH_TOKEN": "t", "DINGTALK_ACCESS_TOKEN": "a", "WECOM_KEY": "k"}
    config = parse_config((ROOT / "webhook-relay" / "config.yml").read_text(encoding="utf-8"), env=env)
    doc = C.relay(config)
    assert doc["delivery"]["backoff_max_seconds"] == pytest.approx(config.delivery.backoff_max_seconds / 60)
    assert doc["delivery"]["dedup_window_seconds"] == pytest.approx(5.0)
    assert doc["delivery"]["timeout_seconds"] == config.delivery.timeout_seconds
    assert doc["targets"]["dingtalk-ops"]["rate_limit"]["period_seconds"] == pytest.approx(1.0)
    assert doc["routes"]["watchdog"]["heartbeat"]["missing_after_seconds"] == pytest.approx(5.0)
    assert doc["targets"]["dingtalk-ops"]["access_token"] == "a"  # secrets revealed for the relay to read


def test_prometheus_timing_flags_follow_compose_or_the_binarys_defaults():
    """Resend delay and lookback delta are compressed from the stack's flags, or Prometheus' defaults."""
    flags = C.prometheus_flags(compose_command("prometheus"))
    assert "--rules.alert.resend-delay=1000ms" in flags
    assert "--query.lookback-delta=5000ms" in flags
