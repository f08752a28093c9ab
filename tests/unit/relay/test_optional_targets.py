"""Optional targets: a channel exists only while its credential is set; the routes leave the others out."""

from __future__ import annotations

import itertools

import pytest
from webhook_relay.config import ConfigError, parse_config

from tests.support.env import ROOT

STACK = (ROOT / "webhook-relay" / "config.yml").read_text(encoding="utf-8")
# The variable that turns each of the stack's optional channels on, with a value that is enough.
CREDENTIALS = {
    "dingtalk-ops": {"DINGTALK_ACCESS_TOKEN": "dt"},
    "wecom-ops": {"WECOM_KEY": "wk"},
    "feishu-ops": {"FEISHU_TOKEN": "fs"},
    "email-ops": {"SMTP_HOST": "smtp.example.com", "SMTP_FROM": "alerts@example.com",
                  "SMTP_TO_CRITICAL": "oncall@example.com"},
}
COMBINATIONS = [
    set(combo) for n in range(len(CREDENTIALS) + 1) for combo in itertools.combinations(CREDENTIALS, n)
]


@pytest.mark.parametrize("enabled", COMBINATIONS, ids=lambda c: "+".join(sorted(c)) or "none")
def test_every_combination_of_credentials_gives_exactly_those_channels_plus_the_inbox(enabled):
    """Each set of credentials yields those targets and the inbox, in every route and alarm list."""
    env = {"RELAY_AUTH_TOKEN": "t"}
    for name in enabled:
        env.update(CREDENTIALS[name])
    config = parse_config(STACK, env=env)
    expected = enabled | {"inbox"}
    assert set(config.targets) == expected
    assert set(config.disabled_targets) == set(CREDENTIALS) - enabled
    for route in ("critical", "warning"):
        assert set(config.routes[route].targets) == expected
    beat = config.routes["watchdog"].heartbeat
    assert beat is not None and set(beat.notify) == expected
    assert set(config.alarm_targets()) == expected


def test_alive_report_keeps_only_live_targets():
    """The daily line goes to the live channels only."""
    env = {"RELAY_AUTH_TOKEN": "t", "WECOM_KEY": "wk", "RELAY_ALIVE_REPORT_AT": "09:30"}
    config = parse_config(STACK, env=env)
    report = config.routes["watchdog"].heartbeat.alive_report
    assert report is not None and report.targets == ["wecom-ops", "inbox"]


BASE = """
server: {auth_token: t}
targets:
  dingtalk-ops: {kind: dingtalk, optional: OPTIONAL, access_token: "${DT:-}"}
  inbox: {kind: inbox}
routes:
  critical: {targets: [dingtalk-ops, inbox]}
"""


def test_an_empty_credential_without_optional_is_still_an_error():
    """Only `optional: true` drops a target: elsewhere an empty token is a mistake to report."""
    with pytest.raises(ConfigError, match=r"targets\.dingtalk-ops: .*needs `access_token`"):
        parse_config(BASE.replace("OPTIONAL", "false"), env={})
    config = parse_config(BASE.replace("OPTIONAL", "true"), env={})
    assert list(config.targets) == ["inbox"] and config.routes["critical"].targets == ["inbox"]


def test_a_route_left_with_nothing_to_do_is_refused_naming_the_dropped_targets():
    """Without an inbox, dropping the only robot would lose every alert of the route: refused, explained."""
    text = BASE.replace("OPTIONAL", "true").replace("  inbox: {kind: inbox}\n", "").replace(", inbox]", "]")
    text = text.replace("targets:\n  dingtalk-ops", "targets:\n  spare: {kind: inbox}\n  dingtalk-ops")
    with pytest.raises(ConfigError, match=r"routes\.critical.*needs `targets`.*left out: dingtalk-ops"):
        parse_config(text, env={})


def test_a_credential_that_is_set_keeps_the_target_and_a_typo_in_a_route_still_fails():
    """Dropping never hides a route naming a target that was never configured."""
    config = parse_config(BASE.replace("OPTIONAL", "true"), env={"DT": "token"})
    assert set(config.targets) == {"dingtalk-ops", "inbox"} and config.disabled_targets == ()
    with pytest.raises(ConfigError, match="unknown target 'wecom-ops'"):
        parse_config(BASE.replace("OPTIONAL", "true").replace("[dingtalk-ops, inbox]", "[wecom-ops, inbox]"),
                     env={})


def test_email_needs_a_sender_and_recipients_once_its_host_is_set():
    """SMTP_HOST alone turns email on: then a missing From address or recipient list is reported."""
    env = {"RELAY_AUTH_TOKEN": "t", "SMTP_HOST": "smtp.example.com"}
    with pytest.raises(ConfigError, match=r"email-ops\.smtp\.sender"):
        parse_config(STACK, env=env)
    with pytest.raises(ConfigError, match=r"email-ops: .*needs `recipients`"):
        parse_config(STACK, env={**env, "SMTP_FROM": "alerts@example.com"})
    env.update(SMTP_FROM="alerts@example.com", SMTP_TO_WARNING="a@x.io, b@x.io", SMTP_TLS="tls")
    config = parse_config(STACK, env=env)
    email = config.targets["email-ops"]
    assert email.smtp is not None and (email.smtp.tls, email.smtp.effective_port) == ("tls", 465)
    assert email.recipients_for("warning") == ["a@x.io", "b@x.io"] and email.recipients_for("critical") == []
