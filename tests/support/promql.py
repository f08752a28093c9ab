"""Static helpers for PromQL found in rule files and dashboards: metric names, Grafana variables.

There is no PromQL parser in Python and Prometheus 2.53 has no parse-only API, so metric names are
found by stripping what cannot be a metric name (strings, label matchers, grouping clauses,
durations, function calls, keywords); validity itself is checked by a real Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# Grafana's built-in and dashboard variables, replaced by values a plain Prometheus accepts.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$instance": ".*",
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?")
_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}  # fmt: skip


_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as `15m` or `1h30m`; anything else is a ValueError."""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _DURATION_SECONDS[u] for n, u in parts)


def range_seconds(expr: str, metric: str) -> list[float]:
    """The range of every `metric[...]` selection in an expression, in seconds."""
    pattern = re.compile(rf"(?<![\w:]){re.escape(metric)}(?:\{{[^{{}}]*\}})?\[([^\]:]+)\]")
    return [duration_seconds(found) for found in pattern.findall(expr)]


def substitute_grafana_variables(expr: str) -> str:
    """The query as Prometheus would receive it from Grafana, for the variable values above."""
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    if "$" in expr:
        raise ValueError(f"unknown Grafana variable left in {expr!r}")
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, labels, keywords or numbers)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def rule_files(root: Path) -> list[Path]:
    """Every recording and alerting rule file."""
    return sorted([*root.glob("prometheus/rules/*.rules.yml"), *root.glob("prometheus/alerts/*.alerts.yml")])


def rules(root: Path) -> Iterator[dict[str, Any]]:
    """Every rule of every rule file."""
    for path in rule_files(root):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            yield from group["rules"]


def recorded_names(root: Path) -> set[str]:
    """Names defined by recording rules."""
    return {rule["record"] for rule in rules(root) if "record" in rule}


def dashboard_expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every query of a dashboard: panels, annotations and variables."""
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} ref {target['refId']}", target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            yield f"variable {variable['name']!r}", inner.group(1) if inner else query


_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\w+)$")
_SAMPLE_LINE = re.compile(r"^([A-Za-z_:][\w:]*)[{ ]")
_SUFFIXES = {
    "counter": ("", "_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("", "_info"),
}


def exposed_names(exposition: str) -> set[str]:
    """Series names a /metrics text exposes, including families declared without samples yet."""
    names = set()
    for line in exposition.splitlines():
        if typed := _TYPE_LINE.match(line):
            name, kind = typed.groups()
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in _SUFFIXES.get(kind, ("",)))
        elif sample := _SAMPLE_LINE.match(line):
            names.add(sample.group(1))
    return names
