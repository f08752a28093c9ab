"""Relay configuration: one YAML file, `${ENV}` substitution, strict validation.

Substitution happens on string values after YAML parsing, so an error can name the key it came from:
- `${NAME}`          the variable must be set and non-empty, otherwise start-up fails naming the key;
- `${NAME:-default}` the default (possibly empty) when NAME is unset or empty;
- `$$`               a literal `$`.
An empty optional value means "not set": an empty `url` uses the channel's official endpoint, an empty
`secret` turns signing off.

A target marked `optional: true` whose credential is empty (DingTalk `access_token`, WeCom `key`, Feishu
`token`, email `smtp.host`) is not configured at all: it is dropped, and so is its name from every route,
`notify` and `alive_report` list. A team that uses one robot leaves the other's variables empty, and
nothing is sent to (or dead-lettered for) a robot that does not exist.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

ChannelKind = Literal["dingtalk", "wecom", "feishu", "email", "inbox"]

# Official limits (REFERENCE.md); the defaults leave room for the "(i/n)" prefix and mentions. Email and
# the inbox have no hard limit: theirs only keep one notification from becoming a monster.
DEFAULT_MESSAGE_BYTES: dict[str, int] = {
    "dingtalk": 20000, "wecom": 4096, "feishu": 18000, "email": 100_000, "inbox": 65_536,
}
# Rate limits where the kind's own is not the robots' 20 per minute: the inbox is a local table.
DEFAULT_RATE_LIMITS: dict[str, dict[str, float]] = {"inbox": {"messages": 600, "period_seconds": 60}}
# The setting that must be non-empty for a target of each kind to exist (`optional: true` drops it).
CREDENTIALS: dict[str, tuple[str, ...]] = {
    "dingtalk": ("access_token",), "wecom": ("key",), "feishu": ("token",), "email": ("smtp", "host"),
}
# Keys each kind may use besides the common ones (language, template, timezone, limits ...).
_KIND_KEYS: dict[str, frozenset[str]] = {
    "dingtalk": frozenset({"access_token", "secret", "url", "mentions"}),
    "wecom": frozenset({"key", "url", "mentions"}),
    "feishu": frozenset({"token", "secret", "url", "mentions"}),
    "email": frozenset({"smtp", "recipients"}),
    "inbox": frozenset(),
}
DEFAULT_URLS: dict[str, str] = {
    "dingtalk": "https://oapi.dingtalk.com/robot/send",
    "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
    "feishu": "https://open.feishu.cn/open-apis/bot/v2/hook",
}
SEVERITIES = ("critical", "warning", "info", "default")
# The kinds of evidence a message can carry (webhook_relay.enrichment): live numbers and a diagnosis
# from Prometheus, a chart of the last hour, the instance's recent errors, a language model's analysis.
EvidencePart = Literal["context", "chart", "errors", "analysis"]
EVIDENCE_PARTS: tuple[EvidencePart, ...] = ("context", "chart", "errors", "analysis")

_SUBST = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_url(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The value itself may hold a token: never echo it.
        raise ValueError("must be an http(s) URL with a host")
    return value


def _check_link(value: str | None) -> str | None:
    """An absolute http(s) URL, or a path starting with `/` resolved against a configured base."""
    if value in (None, ""):
        return None
    if value.startswith("/") and not value.startswith("//"):
        return value
    return _check_url(value)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class Mention(_Strict):
    """Who to notify for one severity."""

    mobiles: list[str] = Field(default_factory=list)
    user_ids: list[str] = Field(default_factory=list)
    all: bool = False

    @field_validator("mobiles", "user_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # `${DINGTALK_AT_MOBILES:-}` substitutes to one string: let operators list people in .env.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def is_empty(self) -> bool:
        return not (self.mobiles or self.user_ids or self.all)


def _address_list(value: Any) -> Any:
    # `${SMTP_TO_CRITICAL:-}` substitutes to one string: a comma-separated list of addresses.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_ADDRESS = re.compile(r"^[^@\s<>,]+@[^@\s<>,]+$")


class Smtp(_Strict):
    """The mail server an email target sends through (`tls`: starttls | tls | none)."""

    host: str
    # Empty: 587 with STARTTLS, 465 with TLS, 25 without.
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    # The From: address.
    sender: str
    timeout_seconds: float = Field(default=30.0, gt=0)
    # A private CA bundle (PEM) for the server's certificate; empty: the system's trust store.
    ca_file: Path | None = None

    @field_validator("port", "username", "password", "ca_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("must be an email address")
        return value

    @model_validator(mode="after")
    def _password_with_user(self) -> Smtp:
        if (self.username is None) != (self.password is None):
            raise ValueError("`username` and `password` go together (both empty: no authentication)")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.tls]


class RateLimit(_Strict):
    """At most `messages` sends in any window of `period_seconds` (the robots' own limit is 20/min)."""

    messages: int = Field(default=20, ge=1)
    period_seconds: float = Field(default=60.0, gt=0)


class Target(_Strict):
    """One way out: a group robot, a mailbox, or the relay's own inbox page."""

    kind: ChannelKind
    # Dropped, with its name from every route, when its credential is empty (see the module docstring).
    optional: bool = False
    url: str | None = None
    access_token: SecretStr | None = None  # dingtalk
    key: SecretStr | None = None  # wecom
    token: SecretStr | None = None  # feishu
    secret: SecretStr | None = None  # dingtalk / feishu signing
    language: Literal["zh", "en"] = "zh"
    template: Path | None = None
    timezone: str = "Asia/Shanghai"
    max_message_bytes: int | None = Field(default=None, ge=256)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    mentions: dict[str, Mention] = Field(default_factory=dict)
    dashboard_url: str | None = None
    # One notification (one Alertmanager group) becomes at most this many messages on this target:
    # past it, alerts are listed one line each, and what still does not fit is counted, not dropped
    # silently. A 20-alert group must not take minutes of a robot's 20-per-minute budget.
    max_messages: int = Field(default=3, ge=1, le=50)
    smtp: Smtp | None = None  # email
    # The evidence this target shows under an alert (each part only when `enrichment` provides it).
    enrich: list[EvidencePart] = Field(default_factory=lambda: list(EVIDENCE_PARTS))
    # email: addresses by severity label (critical | warning | info | default); a severity with no
    # list (and no `default`) is not mailed.
    recipients: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("rate_limit") is None:
            default = DEFAULT_RATE_LIMITS.get(str(value.get("kind")))
            if default is not None:
                value = {**value, "rate_limit": default}
        return value

    @field_validator("recipients", mode="before")
    @classmethod
    def _recipient_lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _address_list(v) for k, v in value.items()}
        return value

    @field_validator("recipients")
    @classmethod
    def _known_recipient_severities(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(SEVERITIES))
        if unknown:
            raise ValueError(f"unknown severity {unknown}; use {list(SEVERITIES)}")
        for severity, addresses in value.items():
            for address in addresses:
                if not _ADDRESS.match(address):
                    raise ValueError(f"{severity}: {address!r} is not an email address")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard_url(cls, value: str | None) -> str | None:
        return _check_link(value)

    @field_validator("access_token", "key", "token", "secret", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("template", mode="before")
    @classmethod
    def _empty_template_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone(value)

    @field_validator("mentions")
    @classmethod
    def _known_severities(cls, value: dict[str, Mention]) -> dict[str, Mention]:
        unknown = sorted(set(value) - set(SEVERITIES))
        if unknown:
            raise ValueError(f"unknown severity {unknown}; use {list(SEVERITIES)}")
        return value

    @model_validator(mode="after")
    def _credentials_for_kind(self) -> Target:
        needed = CREDENTIALS.get(self.kind, ())
        if needed and getattr(self, needed[0]) is None:
            raise ValueError(f"kind {self.kind} needs `{needed[0]}`")
        allowed = _KIND_KEYS[self.kind]
        for name in sorted(set().union(*_KIND_KEYS.values()) - allowed):
            if getattr(self, name):
                raise ValueError(f"`{name}` is not used by kind {self.kind}")
        if self.kind == "email" and not any(self.recipients.values()):
            raise ValueError("kind email needs `recipients` (a list for at least one severity)")
        return self

    @property
    def message_bytes(self) -> int:
        return self.max_message_bytes or DEFAULT_MESSAGE_BYTES[self.kind]

    def recipients_for(self, severity: str) -> list[str]:
        """Email: the addresses for a severity label, else the `default` list (empty: not mailed)."""
        return self.recipients.get(severity) or self.recipients.get("default") or []

    def mention_for(self, severity: str) -> Mention:
        return self.mentions.get(severity) or self.mentions.get("default") or Mention()


class AliveReport(_Strict):
    """An optional daily "pipeline alive" line, at a local time, instead of a message per Watchdog."""

    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    timezone: str = "Asia/Shanghai"
    targets: list[str] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone(value)


class Heartbeat(_Strict):
    """Dead-man's switch: alarm on `notify` when no webhook reached the route for a while.

    With `forward_url` every heartbeat that arrives is also passed on, after the relay's own health
    checks, to an external push monitor (healthchecks.io, Uptime Kuma): when Prometheus,
    Alertmanager or the relay dies, the pings stop and that service raises the alarm.
    """

    missing_after_seconds: float = Field(default=300.0, gt=0)
    notify: list[str] = Field(min_length=1)
    runbook_url: str | None = None
    # The push URL carries the monitor's token in its path: a secret, masked wherever it is shown.
    forward_url: SecretStr | None = None
    forward_timeout_seconds: float = Field(default=10.0, gt=0)
    alive_report: AliveReport | None = None

    @field_validator("runbook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_link(value)

    @field_validator("forward_url", mode="before")
    @classmethod
    def _forward_url(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        _check_url(value if isinstance(value, str) else value.get_secret_value())
        return value

    @field_validator("alive_report", mode="before")
    @classmethod
    def _empty_report_is_none(cls, value: Any) -> Any:
        # `at: ${RELAY_ALIVE_REPORT_AT:-}` left empty turns the report off.
        if isinstance(value, dict) and value.get("at") in (None, ""):
            return None
        return value


class Route(_Strict):
    """An Alertmanager receiver (the URL path `/webhook/<name>`) and the targets it fans out to."""

    targets: list[str] = Field(default_factory=list)
    heartbeat: Heartbeat | None = None
    # The evidence this route's alerts get (intersected with each target's `enrich`).
    enrich: list[EvidencePart] = Field(default_factory=lambda: list(EVIDENCE_PARTS))

    @model_validator(mode="after")
    def _does_something(self) -> Route:
        if not self.targets and self.heartbeat is None:
            raise ValueError("a route needs `targets`, a `heartbeat`, or both")
        return self


class Server(_Strict):
    host: str = "0.0.0.0"  # noqa: S104 - the relay is a network service; compose publishes it on loopback
    port: int = Field(default=8080, ge=1, le=65535)
    auth_token: SecretStr | None = None
    # The token read from a file instead (the stack: generated at first start into a volume shared with
    # Alertmanager's credentials_file), so it never sits in the container's environment.
    auth_token_file: Path | None = None
    require_auth: bool = True
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    # runbook.md, served rendered at GET /runbook (public: it holds no secret). Empty: not served.
    runbook_path: Path | None = None

    @field_validator("runbook_path", "auth_token_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("auth_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _token_when_required(self) -> Server:
        if self.auth_token is not None and self.auth_token_file is not None:
            raise ValueError("set `auth_token` or `auth_token_file`, not both")
        if self.require_auth and self.auth_token is None and self.auth_token_file is None:
            raise ValueError("`auth_token` and `auth_token_file` are empty but `require_auth` is true")
        return self

    def token(self) -> SecretStr | None:
        """The inbound token, read from `auth_token_file` when that is the source (at start-up).

        Raises ConfigError when the file cannot be read or is empty.
        """
        if self.auth_token_file is None:
            return self.auth_token
        try:
            value = self.auth_token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"server.auth_token_file: cannot read {self.auth_token_file}: {exc.strerror}"
            ) from None
        if not value:
            raise ConfigError(f"server.auth_token_file: {self.auth_token_file} is empty")
        return SecretStr(value)


class Storage(_Strict):
    path: Path = Path("/var/lib/webhook-relay/outbox.db")
    # How often the relay tries a durable test write: how soon a full disk is noticed and reported.
    check_interval_seconds: float = Field(default=5.0, gt=0)
    # While the outbox stays unwritable, the direct notice to the chats is repeated this often.
    notice_repeat_seconds: float = Field(default=3600.0, gt=0)


class Inbox(_Strict):
    """GET /inbox: the last messages rendered for every target, kept in the outbox database."""

    keep_per_target: int = Field(default=200, ge=1, le=10_000)


class Delivery(_Strict):
    timeout_seconds: float = Field(default=10.0, gt=0)
    backoff_initial_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    jitter_ratio: float = Field(default=0.2, ge=0, le=1)
    # Transient failures are retried this long, then dead-lettered (never dropped silently).
    give_up_after_seconds: float = Field(default=86400.0, gt=0)
    # Absorbs Alertmanager's retries of a notification already stored and an HA pair's copies
    # (seconds to a few minutes). It must stay below every route's repeat_interval, or the reminder
    # of an unresolved alert (identical to the first message) is answered "duplicate" and never posted.
    dedup_window_seconds: float = Field(default=300.0, ge=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Delivered notifications are kept this long (for inspection), then pruned; dead letters stay.
    keep_delivered_seconds: float = Field(default=7 * 86400.0, ge=0)


class Analysis(_Strict):
    """An OpenAI-compatible chat-completions server asked for a root-cause hypothesis (off until `url`
    and `model` are set). It never holds up an alert: past the message deadline the alert goes without
    it and the analysis follows as a second message, if it comes within `deadline_seconds`."""

    # Base URL of the API (`http://vllm:8000/v1`; `/chat/completions` is added) or the full endpoint.
    url: str | None = None
    model: str = ""
    api_key: SecretStr | None = None
    # From the alert's arrival: a slower answer is dropped (counted, logged), never waited for.
    deadline_seconds: float = Field(default=20.0, gt=0)
    max_concurrency: int = Field(default=2, ge=1, le=64)
    # Circuit breaker: this many failures in a row stop the calls for `open_seconds`.
    failures_to_open: int = Field(default=3, ge=1)
    open_seconds: float = Field(default=300.0, gt=0)
    # The same alerts (fingerprints) within this long reuse the last answer.
    cache_seconds: float = Field(default=3600.0, ge=0)
    # Characters of the answer shown in a message.
    max_chars: int = Field(default=280, ge=40, le=2000)
    max_tokens: int = Field(default=400, ge=32, le=8192)
    # json_schema (vLLM, LMDeploy, Ollama >= 0.5, OpenAI), json_object, or none (the prompt asks for JSON).
    response_format: Literal["json_schema", "json_object", "none"] = "json_schema"
    # Attach the chart as an image (multimodal models: Janus-Pro, Qwen-VL, GPT-4o).
    send_chart: bool = False
    # The language the model is asked to answer in.
    language: Literal["zh", "en"] = "en"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def configured(self) -> bool:
        return self.url is not None and bool(self.model.strip())


class RecentErrors(_Strict):
    """The instance's own recent-errors view (ofa-ve: GET /v1/errors), asked at http://<instance><path>."""

    path: str = Field(default="/v1/errors", pattern=r"^/[A-Za-z0-9/_.-]*$")
    count: int = Field(default=3, ge=1, le=10)


class Chart(_Strict):
    """One PNG of the last hour, kept in the outbox database and served at signed, expiring URLs."""

    # Base URL of the relay as the chat's servers reach it (DingTalk fetches `![](url)` itself); empty:
    # no image link (WeCom gets the PNG in the message anyway, the inbox a link relative to the relay).
    public_url: str | None = None
    expires_seconds: float = Field(default=7 * 86400.0, gt=0)
    # At most this many charts are kept; the oldest go first.
    keep: int = Field(default=500, ge=1, le=100_000)

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)


class Enrichment(_Strict):
    """Evidence under each firing alert that matches `match` (webhook_relay.enrichment): off by default."""

    enabled: bool = False
    # Live numbers, the diagnosis and the chart come from here; empty: none of them.
    prometheus_url: str | None = None
    # Label values an alert must have to be enriched (the queries are ofa-ve's).
    match: dict[str, str] = Field(default_factory=lambda: {"service": "ofa-ve"})
    # The message deadline: an enriched alert is held at most this long (from its arrival) for its
    # evidence, then goes with whatever is ready.
    deadline_seconds: float = Field(default=2.0, gt=0)
    # Evidence for at most this many instances of one notification (the others are counted).
    max_instances: int = Field(default=3, ge=1, le=10)
    errors: RecentErrors = Field(default_factory=RecentErrors)
    chart: Chart = Field(default_factory=Chart)
    analysis: Analysis = Field(default_factory=Analysis)

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    def available(self) -> frozenset[str]:
        """The parts this configuration can provide."""
        if not self.enabled:
            return frozenset()
        parts = {"errors"}
        if self.prometheus_url:
            parts |= {"context", "chart"}
        if self.analysis.configured:
            parts.add("analysis")
        return frozenset(parts)


class RelayConfig(_Strict):
    server: Server = Field(default_factory=Server)
    storage: Storage = Field(default_factory=Storage)
    delivery: Delivery = Field(default_factory=Delivery)
    targets: dict[str, Target] = Field(min_length=1)
    routes: dict[str, Route] = Field(min_length=1)
    # Alert links given as paths (`/runbook#servicedown`, `/d/ofa-ve-overview`) are resolved against
    # the base named by their annotation, so the rules need not know where this deployment lives.
    links: dict[str, str] = Field(default_factory=dict)
    inbox: Inbox = Field(default_factory=Inbox)
    enrichment: Enrichment = Field(default_factory=Enrichment)
    # Optional targets dropped for want of a credential (set by parse_config; not a config key).
    _disabled: tuple[str, ...] = PrivateAttr(default=())

    @property
    def disabled_targets(self) -> tuple[str, ...]:
        return self._disabled

    @field_validator("links")
    @classmethod
    def _link_bases(cls, value: dict[str, str]) -> dict[str, str]:
        for name, base in value.items():
            if not base:
                raise ValueError(f"links.{name}: empty base URL")
            _check_url(base)
        return value

    @field_validator("routes")
    @classmethod
    def _route_names(cls, value: dict[str, Route]) -> dict[str, Route]:
        for name in value:
            if not _ROUTE_NAME.match(name):
                raise ValueError(f"route name {name!r} must match {_ROUTE_NAME.pattern}")
        return value

    @model_validator(mode="after")
    def _routes_name_targets(self) -> RelayConfig:
        for name, route in self.routes.items():
            for target in route.targets:
                if target not in self.targets:
                    raise ValueError(f"routes.{name}.targets: unknown target {target!r}")
            for target in route.heartbeat.notify if route.heartbeat else []:
                if target not in self.targets:
                    raise ValueError(f"routes.{name}.heartbeat.notify: unknown target {target!r}")
            report = route.heartbeat.alive_report if route.heartbeat else None
            for target in report.targets if report else []:
                if target not in self.targets:
                    raise ValueError(
                        f"routes.{name}.heartbeat.alive_report.targets: unknown target {target!r}"
                    )
        return self

    def evidence_parts(self, route: str, target: str) -> frozenset[str]:
        """What `target` shows under the alerts of `route`: both ask for it and enrichment provides it."""
        r, t = self.routes.get(route), self.targets.get(target)
        if r is None or t is None:
            return frozenset()
        return self.enrichment.available() & set(r.enrich) & set(t.enrich)

    def alarm_targets(self) -> list[str]:
        """Who hears the relay's own alarms: every heartbeat route's `notify`, else every target."""
        named = [t for r in self.routes.values() if r.heartbeat for t in r.heartbeat.notify]
        return list(dict.fromkeys(named)) or list(self.targets)


def substitute(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree."""
    if isinstance(node, dict):
        return {k: substitute(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = env.get(name, "")
        if value:
            return value
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set (or empty)")

    return _SUBST.sub(one, node)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _credential(target: dict[str, Any]) -> Any:
    node: Any = target
    for key in CREDENTIALS.get(str(target.get("kind")), ()):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def drop_unconfigured(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`raw` without the `optional: true` targets whose credential is empty, and their names.

    The names go from every route's `targets`, `heartbeat.notify` and `alive_report.targets` too. A
    route left with nothing to do, or an alarm left with nobody to tell, is still refused by validation.
    """
    targets = raw.get("targets")
    if not isinstance(targets, dict):
        return raw, []
    dropped = [
        name for name, t in targets.items()
        if isinstance(t, dict) and t.get("optional") is True and t.get("kind") in CREDENTIALS
        and _blank(_credential(t))
    ]
    if not dropped:
        return raw, []
    gone = set(dropped)

    def keep(names: Any) -> Any:
        return [n for n in names if n not in gone] if isinstance(names, list) else names

    routes: dict[str, Any] = {}
    for name, route in (raw.get("routes") or {}).items():
        if not isinstance(route, dict):
            routes[name] = route
            continue
        route = {**route, "targets": keep(route.get("targets", []))}
        beat = route.get("heartbeat")
        if isinstance(beat, dict):
            beat = {**beat, "notify": keep(beat.get("notify"))}
            report = beat.get("alive_report")
            if isinstance(report, dict) and "targets" in report:
                beat["alive_report"] = {**report, "targets": keep(report["targets"])}
            route["heartbeat"] = beat
        routes[name] = route
    out = {**raw, "targets": {n: t for n, t in targets.items() if n not in gone}, "routes": routes}
    return out, dropped


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-after"))


def parse_config(text: str, env: Mapping[str, str] | None = None) -> RelayConfig:
    """Parse and validate a config document; raise ConfigError naming the key on any problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML's message quotes the offending line, which may hold a literal token: position only.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}") from None
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping")
    raw = substitute(raw, os.environ if env is None else env)
    raw, dropped = drop_unconfigured(raw)
    try:
        config = RelayConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False, include_input=False):
            where = _loc(err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {msg}")
        if dropped:
            lines.append(f"(optional targets without credentials, left out: {', '.join(dropped)})")
        raise ConfigError("; ".join(lines)) from None
    config._disabled = tuple(dropped)
    return config


def read_env_file(path: Path | str) -> dict[str, str]:
    """`NAME=value` lines (blank lines and `#` comments skipped; the value is taken verbatim, no quotes)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read environment file {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
            # The line may hold a secret: its number only.
            raise ConfigError(f"environment file {path}, line {number}: expected NAME=value")
        values[name.strip()] = value.rstrip("\r")
    return values


def environment(env_file: Path | str | None) -> dict[str, str]:
    """The process environment, with the non-empty values of `env_file` on top."""
    merged = dict(os.environ)
    if env_file is not None:
        merged.update({k: v for k, v in read_env_file(env_file).items() if v})
    return merged


def load_config(path: Path | str, env: Mapping[str, str] | None = None) -> RelayConfig:
    """Read and validate the YAML file at `path`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, env)
