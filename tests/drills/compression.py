"""One compression factor, applied to every interval of the committed configuration.

A drill of "two hours of robot outage" runs in two minutes when every clock the pipeline runs on is 60
times faster: Prometheus' scrape and evaluation intervals, the `for:` of every alert and the range of
every PromQL window, Alertmanager's group_wait / group_interval / repeat_interval, the relay's backoff,
rate-limit window, dedup window and heartbeat limit, the service's load-retry backoff. Nothing here is
copied by hand: every value is read from the committed files (or the binaries' documented defaults where
the stack leaves them unset) and divided by the factor.

What is NOT scaled, on purpose: timeouts of single requests (a slow answer is physical time), latency
thresholds (`P95 > 2 s` is about how long inference takes, not about how long an incident lasts), and
rate thresholds (no drill drives request traffic). Thresholds on AGES are durations and are scaled:
`..._age_seconds > 300` and `time() - ... > 600` (see `AGE_COMPARISON`).

Alerts on physical latency (`PHYSICAL_SERIES`: request latency, the event loop's lag) keep their real
`for:`. Their conditions are measured in physical time, which no compression can speed up: a replica
importing ModelScope stalls its loop for ~5 real seconds, nothing against a 5-minute `for:` in
production, but the whole of it at 60x. Kept at their real length they cannot fire within a drill,
exactly as such a blip cannot fire them in production.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from tests.support.env import ROOT

# One factor for the whole suite: 60 makes a simulated minute one real second.
FACTOR = float(os.environ.get("DRILL_COMPRESSION", "60"))

# Prometheus / Alertmanager flags the stack leaves at their defaults but whose timing matters over an
# incident (documented defaults of Prometheus 2.53 and Alertmanager 0.28).
PROMETHEUS_FLAG_DEFAULTS = {
    "--rules.alert.resend-delay": "1m",
    "--query.lookback-delta": "5m",
    "--rules.alert.for-grace-period": "10m",
    "--rules.alert.for-outage-tolerance": "1h",
}

PHYSICAL_SERIES = (
    "ofa_ve_request_duration_seconds",
    "ofa_ve_event_loop_lag_seconds",
    "ofa_ve_request_wait_seconds",
)

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_DURATION = re.compile(r"^(?:\d+(?:y|w|d|h|ms|m|s))+$")
_DURATION_PART = re.compile(r"(\d+)(y|w|d|h|ms|m|s)")
# Range selectors `[5m]`, subqueries `[1h:1m]`, and `offset 5m` inside PromQL.
_RANGE = re.compile(r"\[(\d+[a-z]+(?:\d+[a-z]+)*)(?::(\d+[a-z]+(?:\d+[a-z]+)*)?)?\]")
_OFFSET = re.compile(r"\boffset\s+(\d+[a-z]+(?:\d+[a-z]+)*)")
# `<something>_age_seconds ... > N` and `time() - <timestamp> ... > N`: N is a duration.
AGE_COMPARISON = re.compile(
    r"((?:time\(\)\s*-\s*|\b\w+_age_seconds\b)[^<>=!\n]*?)\s*(>=|<=|>|<)\s*(\d+(?:\.\d+)?)"
)


def seconds(duration: str) -> float:
    """Seconds of a Prometheus duration string (`1h30m`, `250ms`)."""
    if not _DURATION.match(duration):
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNITS[u] for n, u in _DURATION_PART.findall(duration))


def duration(value_s: float) -> str:
    """A Prometheus duration for `value_s` seconds, at millisecond resolution (at least 1 ms)."""
    return f"{max(1, round(value_s * 1000))}ms"


@dataclass(frozen=True)
class Compression:
    factor: float = FACTOR

    def real(self, sim_seconds: float) -> float:
        """Real seconds for a simulated duration."""
        return sim_seconds / self.factor

    def sim(self, real_seconds: float) -> float:
        """Simulated seconds for a real duration."""
        return real_seconds * self.factor

    def scale(self, text: str) -> str:
        """A duration string, compressed."""
        return duration(self.real(seconds(text)))

    def promql(self, expr: str) -> str:
        """An expression with its windows, offsets and age thresholds compressed."""

        def window(match: re.Match[str]) -> str:
            rng, step = match.group(1), match.group(2)
            inner = self.scale(rng)
            if match.group(0).endswith(":]"):
                return f"[{inner}:]"
            return f"[{inner}:{self.scale(step)}]" if step else f"[{inner}]"

        def age(match: re.Match[str]) -> str:
            value = float(match.group(3)) / self.factor
            return f"{match.group(1)} {match.group(2)} {value:g}"

        expr = _RANGE.sub(window, expr)
        expr = _OFFSET.sub(lambda m: f"offset {self.scale(m.group(1))}", expr)
        return AGE_COMPARISON.sub(age, expr)

    # --- Prometheus ---------------------------------------------------------------------------------

    def rule_file(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(doc)
        for group in out["groups"]:
            if "interval" in group:
                group["interval"] = self.scale(group["interval"])
            for rule in group["rules"]:
                physical = "alert" in rule and any(name in rule["expr"] for name in PHYSICAL_SERIES)
                rule["expr"] = self.promql(rule["expr"])
                for key in ("for", "keep_firing_for"):
                    if key in rule and not physical:
                        rule[key] = self.scale(rule[key])
        return out

    def prometheus(
        self,
        doc: dict[str, Any],
        *,
        addresses: dict[str, str],
        ofa_ve_targets_file: Path,
        rule_files: list[str],
    ) -> dict[str, Any]:
        """prometheus.yml for local processes: timing compressed, compose host names replaced.

        Docker's DNS discovery of ofa-ve becomes file discovery, which the drills edit the way Docker's
        DNS changes: a stopped replica leaves the file (it vanishes), a hung one stays (it times out).
        Static jobs of services the drills do not run (VictoriaMetrics, the snapshot service) are left
        out, as is remote_write: their targets would only be down and fire ServiceDown.
        """
        out = copy.deepcopy(doc)
        g = out.setdefault("global", {})
        interval = self.scale(g.get("scrape_interval", "1m"))
        g["scrape_interval"] = interval
        # A timeout may not exceed the interval; a compressed scrape gets the whole interval.
        g["scrape_timeout"] = interval
        g["evaluation_interval"] = self.scale(g.get("evaluation_interval", "1m"))
        out.pop("remote_write", None)
        out["rule_files"] = rule_files
        for am in out["alerting"]["alertmanagers"]:
            for static in am.get("static_configs", []):
                static["targets"] = [addresses.get(t, t) for t in static["targets"]]
        out["scrape_configs"] = [
            job for job in out["scrape_configs"]
            if "dns_sd_configs" in job
            or all(t in addresses for static in job.get("static_configs", []) for t in static["targets"])
        ]
        for job in out["scrape_configs"]:
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
            for sd in job.pop("dns_sd_configs", []):
                job.setdefault("file_sd_configs", []).append(
                    {"files": [str(ofa_ve_targets_file)],
                     "refresh_interval": self.scale(sd.get("refresh_interval", "30s"))}
                )
            for static in job.get("static_configs", []):
                static["targets"] = [addresses.get(t, t) for t in static["targets"]]
        return out

    def prometheus_flags(self, compose_command: list[str]) -> list[str]:
        """The timing flags: the stack's own value when compose sets one, else the binary's default."""
        flags = []
        for flag, default in PROMETHEUS_FLAG_DEFAULTS.items():
            given = next((c.split("=", 1)[1] for c in compose_command if c.startswith(flag + "=")), default)
            flags.append(f"{flag}={self.scale(given)}")
        return flags

    # --- Alertmanager -------------------------------------------------------------------------------

    def alertmanager(self, doc: dict[str, Any], *, relay_url: str, token_file: Path) -> dict[str, Any]:
        out = copy.deepcopy(doc)
        glob = out.setdefault("global", {})
        glob["resolve_timeout"] = self.scale(glob.get("resolve_timeout", "5m"))

        def route(node: dict[str, Any]) -> None:
            for key in ("group_wait", "group_interval", "repeat_interval"):
                if key in node:
                    node[key] = self.scale(node[key])
            for child in node.get("routes", []):
                route(child)

        # The root's implicit defaults (Alertmanager: 30s / 5m / 4h) are made explicit first.
        root = out["route"]
        for key, default in (("group_wait", "30s"), ("group_interval", "5m"), ("repeat_interval", "4h")):
            root.setdefault(key, default)
        route(root)
        for receiver in out.get("receivers", []):
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = re.sub(r"^http://webhook-relay:8080", relay_url, hook["url"])
                auth = hook.get("http_config", {}).get("authorization")
                if auth and "credentials_file" in auth:
                    auth["credentials_file"] = str(token_file)
        return out

    # --- webhook-relay ------------------------------------------------------------------------------

    def relay(self, config: Any) -> dict[str, Any]:
        """The relay's validated config as a plain document with every interval compressed.

        Works on the parsed model, so keys the stack leaves at their defaults (the 20-per-60-s rate
        limit, the 300 s dedup window) are compressed too. Request timeouts are not intervals.
        """

        def walk(node: Any, key: str = "") -> Any:
            if isinstance(node, dict):
                return {k: walk(v, k) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            if isinstance(node, SecretStr):
                return node.get_secret_value()
            if isinstance(node, Path):
                return str(node)
            if key.endswith("_seconds") and "timeout" not in key and isinstance(node, int | float):
                return self.real(float(node))
            return node

        return walk(config.model_dump())

    def relay_rate_limit(self, config: Any, target: str) -> tuple[int, float]:
        """The robots' own limit (the relay's default for the target), compressed, for the fake chat."""
        limit = config.targets[target].rate_limit
        return limit.messages, self.real(limit.period_seconds)

    # --- ofa-ve -------------------------------------------------------------------------------------

    def ofa_ve_env(self) -> dict[str, str]:
        """The service's load-retry backoff, compressed (its defaults live in ofa_ve.loading)."""
        from ofa_ve.loading import LOAD_RETRY_INITIAL_S, LOAD_RETRY_MAX_S

        return {
            "OFA_VE_LOAD_RETRY_INITIAL_S": f"{self.real(LOAD_RETRY_INITIAL_S):g}",
            "OFA_VE_LOAD_RETRY_MAX_S": f"{self.real(LOAD_RETRY_MAX_S):g}",
        }


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose_command(service: str) -> list[str]:
    """The `command:` of a service in docker-compose.yml (flags the stack sets)."""
    doc = load_yaml(ROOT / "docker-compose.yml")
    return [str(c) for c in doc["services"][service].get("command", [])]
