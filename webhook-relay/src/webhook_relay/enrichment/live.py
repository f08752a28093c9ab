"""Live numbers of one instance from Prometheus, and the diagnosis they support (see table.py)."""

from __future__ import annotations

import asyncio
import math
import re
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from webhook_relay.enrichment.prometheus import Curve, Prometheus, PrometheusError, Sample
from webhook_relay.enrichment.table import DIAGNOSES, LINES, QUERIES, SHED_ERRORS, Query
from webhook_relay.evidence import Finding, Line, time_mark

HOUR = 3600.0
# Errors still counted within this long of now are "ongoing" (the range query's step is a minute).
_ONGOING_S = 180.0
_STEP_S = 60.0


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selectors(match: Mapping[str, str], instance: str) -> tuple[str, str]:
    """(`$sel`, `$svc`): matchers for the instance (match labels and instance) and for the service."""
    svc = ",".join(f"{k}={_quote(v)}" for k, v in sorted(match.items()))
    sel = ",".join(filter(None, [svc, f"instance={_quote(instance)}" if instance else ""]))
    return sel, svc


_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)")
_NUMBER = re.compile(r"^\s*(bool\s+)?[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def _top_level(expr: str) -> list[tuple[int, int, str]]:
    """(start, end, operator) of the comparison and set operators outside brackets and strings."""
    found: list[tuple[int, int, str]] = []
    depth, quote, i = 0, "", 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            op = _COMPARISON.match(expr, i)
            if op and not (op.group(0) in ("<", ">") and expr[i - 1: i] in ("=", "!")):
                found.append((i, op.end(), op.group(0)))
                i = op.end()
                continue
            word = re.match(r"(?<![\w:])(and|or|unless)(?![\w:])", expr[i:])
            if word and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_:")):
                found.append((i, i + len(word.group(1)), word.group(1)))
                i += len(word.group(1))
                continue
        i += 1
    return found


def alert_expression(generator_url: str) -> str | None:
    """The alert's expression from its generatorURL, without its threshold (`x > 2` is `x`)."""
    if not generator_url:
        return None
    exprs = parse_qs(urlsplit(generator_url).query).get("g0.expr")
    if not exprs or not exprs[0].strip():
        return None
    expr = exprs[0].strip()
    ops = _top_level(expr)
    for start, _, op in ops:
        if op in ("and", "or", "unless"):
            expr = expr[:start].strip()
            ops = _top_level(expr)
            break
    comparisons = [(s, e) for s, e, op in ops if op not in ("and", "or", "unless")]
    if len(comparisons) == 1:
        start, end = comparisons[0]
        left, right = expr[:start].strip(), expr[end:].strip()
        if _NUMBER.match(right):
            return left
        if _NUMBER.match(left):
            return right
    return expr


def _unit(expr: str | None) -> str:
    """How the alert's own value reads, from the naming conventions of its series."""
    if not expr:
        return ""
    if re.search(r"[_:]ratio", expr):
        return "pct"
    if re.search(r"_seconds\b|_seconds[_:]", expr):
        return "s"
    return ""


def _matching(samples: list[Sample], labels: Mapping[str, str]) -> Sample | None:
    """The sample whose labels agree best with the alert's (none that contradicts them)."""
    best, score = None, -1
    for sample in samples:
        common = [k for k in sample.labels if k in labels]
        if any(sample.labels[k] != labels[k] for k in common):
            continue
        if len(common) > score:
            best, score = sample, len(common)
    return best


def _since(curve: Curve, now: float) -> float | None:
    """Start of the last unbroken run of non-zero points, if it is still going on."""
    points = [(t, v) for t, v in curve.points if v > 0]
    if not points or now - points[-1][0] > _ONGOING_S:
        return None
    start = points[-1][0]
    for t, _ in reversed(points[:-1]):
        if start - t > 1.5 * _STEP_S:
            break
        start = t
    return start


async def query_facts(
    prom: Prometheus, query_sel: tuple[str, str], expr: str | None, labels: Mapping[str, str], now: float,
    within: float,
) -> tuple[dict[str, Any], list[str]]:
    """Every query of the table for one instance, all at once, each bounded by `within` seconds.

    Returns the raw values by query name (a number, a {label: number} breakdown, or for range queries
    {label: curve}) and the problems met (one short line).
    """
    sel, svc = query_sel

    async def one(query: Query) -> tuple[str, Any]:
        promql = string.Template(query.promql).substitute(sel=sel, svc=svc, expr=expr or "")
        if query.at == "range":
            curves = await prom.range(promql, now - HOUR, now, _STEP_S)
            return query.name, {c.labels.get(query.by or "", ""): c for c in curves}
        at = now - HOUR if query.at == "hour_ago" else now
        samples = await prom.instant(promql, at)
        if query.name.startswith("value"):
            found = _matching(samples, labels)
            return query.name, found.value if found else None
        if query.by:
            return query.name, {s.labels.get(query.by, ""): s.value for s in samples}
        return query.name, samples[0].value if samples else None

    wanted = [q for q in QUERIES if expr is not None or "$expr" not in q.promql]
    results = await asyncio.gather(
        *(asyncio.wait_for(one(q), within) for q in wanted), return_exceptions=True
    )
    values: dict[str, Any] = {}
    failures: list[str] = []
    for result in results:
        if isinstance(result, BaseException):
            if isinstance(result, TimeoutError):
                failures.append(f"no answer within {within:.1f} s")
            elif isinstance(result, PrometheusError):
                failures.append(str(result))
            else:
                raise result
            continue
        values[result[0]] = result[1]
    problems = []
    if failures:
        problems.append(f"prometheus: {len(failures)} of {len(wanted)} queries failed ({failures[0]})")
    values["value_unit"] = _unit(expr)
    return values, problems


def derive(values: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The facts the lines and the diagnosis read: the values plus shares, sums and maxima."""
    f: dict[str, Any] = dict(values)

    def num(name: str) -> float | None:
        value = values.get(name)
        return float(value) if isinstance(value, int | float) else None

    def share(part: float | None) -> float | None:
        p95 = num("p95")
        return part / p95 if part is not None and p95 else None

    value, before = num("value"), num("value_hour_ago")
    f["value_change"] = value / before if value is not None and before else None
    stages: dict[str, float] = dict(values.get("p95_stage") or {})
    f["queue_share"] = share(stages.get("queue"))
    f["inference_share"] = share(stages.get("inference"))
    f["wait_share"] = share(num("p95_wait"))
    parts = dict(stages)
    if num("p95_wait") is not None:
        parts["wait"] = float(values["p95_wait"])
    f["p95_parts"] = parts
    depth, capacity = num("queue_depth"), num("queue_capacity")
    f["queue_fill"] = depth / capacity if depth is not None and capacity else None
    rejected = values.get("rejected")
    f["rejected_rate"] = sum(rejected.values()) if isinstance(rejected, dict) else None
    for name in ("gpu_memory", "gpu_util"):
        series = values.get(name)
        f[f"{name}_max"] = max(series.values()) if isinstance(series, dict) and series else None
    revisions = values.get("revision")
    f["revision"] = ", ".join(sorted(revisions)) if isinstance(revisions, dict) and revisions else None
    total = max(num("replicas") or 0, num("replicas_expected") or 0)
    ready = num("replicas_ready")
    f["replicas_total"] = total or None
    f["not_ready"] = total - ready if total and ready is not None else None
    ratios: dict[str, float] = dict(values.get("errors_by_type") or {})
    since: dict[str, float] = {}
    for kind, curve in (values.get("errors_since") or {}).items():
        started = _since(curve, now) if isinstance(curve, Curve) else None
        if started is not None and kind not in SHED_ERRORS:
            since[kind] = started
    f["failures_since"] = {k: {"since": t, "ratio": ratios.get(k)} for k, t in sorted(since.items(),
                                                                                     key=lambda kv: kv[1])}
    return f


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _plain(value: float) -> str:
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{min(digits, 4)}f}"


_UNITS = {
    "s": _seconds,
    "pct": lambda v: f"{v * 100:.1f} %",
    "rate": lambda v: f"{_plain(v)}/s",
    "n": lambda v: f"{v:.0f}",
    "x": lambda v: f"{v:.1f}×",
    "t": time_mark,
}


class _Formatter(string.Formatter):
    """Formats facts with the table's specs; a missing fact is `–`."""

    def __init__(self, facts: Mapping[str, Any]) -> None:
        super().__init__()
        self.facts = facts

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        return self.facts.get(str(key))

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec.startswith("by_"):
            if not isinstance(value, dict):
                return ""
            show = _UNITS[format_spec[3:]]
            top = sorted(((k, v) for k, v in value.items() if v), key=lambda kv: -kv[1])[:3]
            return f" ({', '.join(f'{k} {show(v)}' for k, v in top)})" if top else ""
        if value is None:
            return "–"
        if format_spec == "v":
            unit = str(self.facts.get("value_unit") or "")
            return _UNITS[unit](float(value)) if unit in _UNITS else _plain(float(value))
        if format_spec in _UNITS and isinstance(value, int | float):
            return _UNITS[format_spec](float(value))
        return str(value)


def describe(facts: Mapping[str, Any]) -> tuple[list[Line], list[Finding]]:
    """The lines of numbers and the findings of the diagnosis table for these facts."""
    fmt = _Formatter(facts)
    lines = [Line(en=fmt.format(spec.en), zh=fmt.format(spec.zh)) for spec in LINES
             if facts.get(spec.needs) is not None]
    findings: list[Finding] = []
    for rule in DIAGNOSES:
        if rule.fallback:
            continue
        if rule.each is None:
            if rule.when(facts):
                findings.append(Finding(key=rule.key, en=fmt.format(rule.en), zh=fmt.format(rule.zh)))
            continue
        for item, extra in (facts.get(rule.each) or {}).items():
            scoped = _Formatter({**facts, **extra, "item": item})
            if rule.when(scoped.facts):
                findings.append(Finding(key=rule.key, en=scoped.format(rule.en), zh=scoped.format(rule.zh)))
    if not findings:
        findings = [Finding(key=r.key, en=fmt.format(r.en), zh=fmt.format(r.zh))
                    for r in DIAGNOSES if r.fallback and r.when(facts)][:1]
    return lines, findings
