"""Config parsing: substitution, strict validation, errors that name the key, masked secrets."""

from __future__ import annotations

import re

import pytest
from webhook_relay.config import ConfigError, parse_config, substitute

BASE = """
server: {{auth_token: "${{TOKEN}}"}}
targets:
  dingtalk-ops:
    kind: dingtalk
    access_token: ${{DT}}
    secret: ${{DT_SECRET:-}}
    url: ${{DT_URL:-}}
{extra}
routes:
  critical: {{targets: [dingtalk-ops]}}
"""
ENV = {"TOKEN": "tok-123", "DT": "dingtalk-access-token-value"}


def parse(extra: str = "", env: dict[str, str] | None = None):
    return parse_config(BASE.format(extra=extra), env=ENV if env is None else env)


def test_substitution_fills_required_and_defaults():
    """`${VAR}` takes the environment value and `${VAR:-}` an empty default meaning "not set"."""
    config = parse()
    target = config.targets["dingtalk-ops"]
    assert target.access_token is not None
    assert target.access_token.get_secret_value() == "dingtalk-access-token-value"
    assert target.secret is None
    assert target.url is None


def test_default_used_when_variable_empty_and_dollar_escape():
    """An empty variable falls back to the default; `$$` stays a literal dollar sign."""
    assert substitute({"a": "${X:-fallback}", "b": "cost $$5"}, {"X": ""}) == {
        "a": "fallback",
        "b": "cost $5",
    }


def test_missing_secret_names_the_key():
    """A required variable that is unset stops parsing with the key path and the variable name."""
    with pytest.raises(ConfigError, match=r"targets\.dingtalk-ops\.access_token: .*DT is not set"):
        parse(env={"TOKEN": "x"})


def test_unknown_key_is_rejected_with_its_path():
    """A misspelt key is an error naming where it is."""
    with pytest.raises(ConfigError, match=r"targets\.dingtalk-ops\.acess_token"):
        parse("    acess_token: typo")


def test_malformed_url_names_key_without_echoing_value():
    """A URL that is not http(s) is refused, naming the key but not printing the (secret) value."""
    with pytest.raises(ConfigError, match=r"targets\.dingtalk-ops\.url") as info:
        parse(env={**ENV, "DT_URL": "ftp//secret-host-token"})
    assert "secret-host-token" not in str(info.value)


def test_route_to_unknown_target_is_rejected():
    """Routes may only name configured targets."""
    text = BASE.format(extra="").replace("targets: [dingtalk-ops]", "targets: [nobody]")
    with pytest.raises(ConfigError, match="unknown target 'nobody'"):
        parse_config(text, env=ENV)


def test_auth_token_required_unless_disabled():
    """An empty inbound token is refused while require_auth is true (the default)."""
    with pytest.raises(ConfigError, match=r"server: .*auth_token"):
        parse_config(BASE.format(extra="").replace('"${TOKEN}"', '"${TOKEN:-}"'), env={"DT": "x"})


def test_wrong_credential_for_kind_is_rejected():
    """A WeCom target without `key` cannot start."""
    text = BASE.format(extra="").replace("kind: dingtalk", "kind: wecom")
    with pytest.raises(ConfigError, match="kind wecom needs `key`"):
        parse_config(text, env=ENV)


def test_unknown_timezone_and_severity_rejected():
    """Time zones and mention severities are checked at start-up."""
    with pytest.raises(ConfigError, match="unknown time zone"):
        parse("    timezone: Mars/Olympus")
    with pytest.raises(ConfigError, match="unknown severity"):
        parse("    mentions: {sev1: {all: true}}")


def test_secrets_do_not_appear_in_repr():
    """Printing the config (or a target) shows no token."""
    config = parse()
    assert "dingtalk-access-token-value" not in repr(config)
    assert "tok-123" not in repr(config)
    assert "tok-123" not in str(config.model_dump())


def test_defaults_per_kind():
    """Byte limit and rate limit defaults follow the robot APIs."""
    target = parse().targets["dingtalk-ops"]
    assert target.message_bytes == 20000
    assert (target.rate_limit.messages, target.rate_limit.period_seconds) == (20, 60.0)
    assert target.timezone == "Asia/Shanghai"


def test_shipped_configs_validate(repo_root):
    """config.example.yml and the stack's config.yml are valid with the documented variables set."""
    env = {"RELAY_AUTH_TOKEN": "t", "DINGTALK_ACCESS_TOKEN": "a", "WECOM_KEY": "k", "FEISHU_TOKEN": "f"}
    for name in ("config.example.yml", "config.yml"):
        text = (repo_root / "webhook-relay" / name).read_text(encoding="utf-8")
        config = parse_config(text, env=env)
        assert set(config.routes) >= {"critical", "warning", "watchdog"}
    stack = parse_config((repo_root / "webhook-relay" / "config.yml").read_text(encoding="utf-8"), env=env)
    assert set(stack.targets) == {"dingtalk-ops", "wecom-ops", "feishu-ops", "inbox"}
    assert stack.disabled_targets == ("email-ops",)


def _keys(model: type) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                keys |= _keys(candidate)
    return keys


def test_example_documents_every_key(repo_root):
    """Every config key of every section appears in config.example.yml."""
    from webhook_relay.config import Mention, RelayConfig, Target

    text = (repo_root / "webhook-relay" / "config.example.yml").read_text(encoding="utf-8")
    missing = {k for k in _keys(RelayConfig) | _keys(Target) | _keys(Mention) if f"{k}:" not in text}
    assert missing == set()


def test_yaml_syntax_error_gives_position_not_content():
    """A YAML error names the line and column but does not quote the line (it may hold a token)."""
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+, column \d+") as info:
        parse_config("targets:\n  x: {kind: dingtalk, access_token: literal-secret-token\n", env={})
    assert "literal-secret-token" not in str(info.value)


def test_stack_config_mentions_come_from_env_lists(repo_root):
    """The stack config @mentions the comma-separated people from .env on critical alerts only."""
    env = {
        "RELAY_AUTH_TOKEN": "t",
        "DINGTALK_ACCESS_TOKEN": "a",
        "WECOM_KEY": "k",
        "DINGTALK_AT_MOBILES": "13800000000, 13900000000",
        "WECOM_AT_USERIDS": "zhangsan",
    }
    stack = parse_config((repo_root / "webhook-relay" / "config.yml").read_text(encoding="utf-8"), env=env)
    dingtalk, wecom = stack.targets["dingtalk-ops"], stack.targets["wecom-ops"]
    assert dingtalk.mention_for("critical").mobiles == ["13800000000", "13900000000"]
    assert wecom.mention_for("critical").user_ids == ["zhangsan"]
    assert dingtalk.mention_for("warning").is_empty()
    unset = parse_config(
        (repo_root / "webhook-relay" / "config.yml").read_text(encoding="utf-8"),
        env={"RELAY_AUTH_TOKEN": "t", "DINGTALK_ACCESS_TOKEN": "a", "WECOM_KEY": "k"},
    )
    assert unset.targets["dingtalk-ops"].mention_for("critical").is_empty()


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h|d)", duration):
        total += int(number) * units[unit]
    return total


def test_dedup_window_stays_below_every_repeat_interval_of_the_stack(repo_root):
    """A reminder of an unresolved alert must not fall inside the relay's dedup window."""
    import yaml

    env = {"RELAY_AUTH_TOKEN": "t", "DINGTALK_ACCESS_TOKEN": "a", "WECOM_KEY": "k"}
    stack = parse_config((repo_root / "webhook-relay" / "config.yml").read_text(encoding="utf-8"), env=env)
    am = yaml.safe_load((repo_root / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8"))
    intervals = []

    def walk(route, inherited):
        interval = route.get("repeat_interval", inherited)
        if route.get("receiver") not in (None, "null", "heartbeat"):
            intervals.append((route["receiver"], _seconds(interval)))
        for child in route.get("routes", []):
            walk(child, interval)

    walk(am["route"], "4h")
    assert intervals
    for receiver, seconds in intervals:
        assert stack.delivery.dedup_window_seconds < seconds, receiver
    # ... and still covers Alertmanager's retries within one group_interval flush.
    assert stack.delivery.dedup_window_seconds >= _seconds(am["route"]["group_interval"])


def test_watchdog_is_never_posted_to_a_chat(repo_root):
    """The stack's watchdog route only feeds the dead-man's switches (no message per Watchdog)."""
    env = {"RELAY_AUTH_TOKEN": "t", "DINGTALK_ACCESS_TOKEN": "a", "WECOM_KEY": "k"}
    stack = parse_config((repo_root / "webhook-relay" / "config.yml").read_text(encoding="utf-8"), env=env)
    watchdog = stack.routes["watchdog"]
    assert watchdog.targets == [] and watchdog.heartbeat is not None
    assert watchdog.heartbeat.alive_report is None  # off unless RELAY_ALIVE_REPORT_AT is set
    assert watchdog.heartbeat.forward_url is None  # off unless HEARTBEAT_URL is set
    on = parse_config(
        (repo_root / "webhook-relay" / "config.yml").read_text(encoding="utf-8"),
        env={**env, "HEARTBEAT_URL": "https://hc-ping.com/abc", "RELAY_ALIVE_REPORT_AT": "09:30"},
    ).routes["watchdog"].heartbeat
    assert on.forward_url is not None and on.alive_report is not None and on.alive_report.at == "09:30"
    assert "abc" not in repr(on)


TOKEN_FILE_CONFIG = """
server: {{auth_token_file: "{path}"}}
targets:
  inbox: {{kind: inbox}}
routes:
  critical: {{targets: [inbox]}}
"""


def test_token_read_from_a_file_at_start_up(tmp_path):
    """auth_token_file: the token is the file's content (a trailing newline is not part of it)."""
    secret = tmp_path / "relay_token"
    secret.write_text("generated-token-value\n", encoding="utf-8")
    config = parse_config(TOKEN_FILE_CONFIG.format(path=secret), env={})
    token = config.server.token()
    assert token is not None and token.get_secret_value() == "generated-token-value"
    assert "generated-token-value" not in repr(config)


def test_token_file_missing_or_empty_is_a_config_error(tmp_path):
    """An unreadable or empty token file stops start-up naming the key (never an open relay)."""
    missing = parse_config(TOKEN_FILE_CONFIG.format(path=tmp_path / "nope"), env={})
    with pytest.raises(ConfigError, match=r"server\.auth_token_file: cannot read"):
        missing.server.token()
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"server\.auth_token_file: .* is empty"):
        parse_config(TOKEN_FILE_CONFIG.format(path=tmp_path / "empty"), env={}).server.token()


def test_token_and_token_file_together_are_refused(tmp_path):
    """Two sources of one secret would leave the operator guessing which one counts."""
    text = TOKEN_FILE_CONFIG.format(path=tmp_path / "t").replace("server: {", "server: {auth_token: x, ")
    with pytest.raises(ConfigError, match="not both"):
        parse_config(text, env={})


def test_env_file_values_fill_in_the_config_without_the_environment(tmp_path, monkeypatch):
    """WEBHOOK_RELAY_ENV_FILE lines feed `${NAME}` like environment variables; empty lines do not blank
    a variable the environment sets; a malformed line is reported by number, not content."""
    from webhook_relay.config import environment, read_env_file

    env_file = tmp_path / "credentials.env"
    env_file.write_text("# robots\nDT=token-from-file\nEMPTY=\nKEEP=\n\nWITH_EQ=a=b\n", encoding="utf-8")
    monkeypatch.setenv("KEEP", "from-environment")
    assert read_env_file(env_file) == {"DT": "token-from-file", "EMPTY": "", "KEEP": "", "WITH_EQ": "a=b"}
    merged = environment(env_file)
    assert merged["DT"] == "token-from-file" and merged["KEEP"] == "from-environment"
    config = parse_config(BASE.format(extra=""), env={**merged, "TOKEN": "t"})
    assert config.targets["dingtalk-ops"].access_token.get_secret_value() == "token-from-file"
    env_file.write_text("DT=ok\nnot a line with secret-ish content\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2: expected NAME=value") as info:
        read_env_file(env_file)
    assert "secret-ish" not in str(info.value)
