"""The gate's outcome as Markdown (a PR comment) and as JSON (everything measured, for tooling)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from perf_gate import EXIT_NOT_MEASURED, EXIT_PASS, EXIT_REGRESSION
from perf_gate.decision import IMPROVEMENT, NOT_MEASURED, REGRESSION, Comparison, SloCheck
from perf_gate.errors import CouldNotMeasure

SLO_NAMES = {"p95_s": "P95 latency", "p99_s": "P99 latency", "error_ratio": "error ratio",
             "peak_rss_bytes": "peak RSS"}
SLO_UNITS = {"p95_s": "s", "p99_s": "s", "error_ratio": "ratio", "peak_rss_bytes": "bytes"}


@dataclass
class GateResult:
    mode: str  # ab | record | live
    profile: dict[str, Any] = field(default_factory=dict)
    builds: list[dict[str, str]] = field(default_factory=list)
    baseline_rule: str = ""
    slo_class: str | None = None
    rounds: int = 0
    alpha: float | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    slo: list[SloCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: CouldNotMeasure | None = None
    duration_s: float = 0.0
    summaries: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == REGRESSION]

    @property
    def slo_breaches(self) -> list[SloCheck]:
        return [c for c in self.slo if c.passed is False]

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_NOT_MEASURED
        return EXIT_REGRESSION if self.regressions or self.slo_breaches else EXIT_PASS

    def to_json(self) -> dict[str, Any]:
        return _clean({
            "mode": self.mode,
            "exit_code": self.exit_code,
            "verdict": {EXIT_PASS: "pass", EXIT_REGRESSION: "regression", EXIT_NOT_MEASURED: "not measured"}[
                self.exit_code],
            "error": None if self.error is None else {"reason": self.error.reason,
                                                      "detail": self.error.detail},
            "profile": self.profile,
            "builds": self.builds,
            "baseline_rule": self.baseline_rule,
            "slo_class": self.slo_class,
            "rounds": self.rounds,
            "alpha": self.alpha,
            "duration_s": round(self.duration_s, 1),
            "comparisons": [asdict(c) for c in self.comparisons],
            "slo": [asdict(c) for c in self.slo],
            "notes": self.notes,
            "summaries": self.summaries,
            "live": self.live,
        })


def _clean(value: Any) -> Any:
    """JSON has no infinity or NaN: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def to_json_text(result: GateResult) -> str:
    return json.dumps(result.to_json(), indent=1, sort_keys=False) + "\n"


def fmt(value: float | None, unit: str) -> str:
    """A value for people: latencies in ms or s, ratios in %, memory in MiB."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "no answer" if unit == "s" else "∞"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    if unit == "bytes":
        return f"{value / 2**20:.0f} MiB"
    return f"{value:.1f} {unit}"


def _change(c: Comparison) -> str:
    if c.change is None:
        return "-"
    if math.isinf(c.change):
        return "+∞" if c.change > 0 else "-∞"
    if c.relative:
        return f"{c.change * 100:+.1f} %"
    return f"{c.change * 100:+.2f} pp"


def _threshold(c: Comparison) -> str:
    sign = "+" if c.higher_is_worse else "-"
    return f"{sign}{c.threshold * 100:.0f} %" if c.relative else f"{sign}{c.threshold * 100:.2f} pp"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def headline(result: GateResult) -> str:
    if result.error is not None:
        return f"COULD NOT MEASURE: {result.error.reason}"
    if result.exit_code == EXIT_REGRESSION:
        parts = []
        if result.regressions:
            n = len(result.regressions)
            parts.append(f"{n} regression{'s' if n > 1 else ''}")
        if result.slo_breaches:
            names = ", ".join(SLO_NAMES[c.name] for c in result.slo_breaches)
            parts.append(f"SLO `{result.slo_class}` breached ({names})")
        return "FAIL: " + "; ".join(parts)
    if result.mode == "live":
        return f"PASS: SLO `{result.slo_class}` met"
    if result.mode == "record":
        return "RECORDED"
    return "PASS: no regression" + (f", SLO `{result.slo_class}` met" if result.slo else "")


def markdown(result: GateResult) -> str:
    """The summary for a PR comment or a job log."""
    out = [f"### perf-gate ({result.mode}): {headline(result)}", ""]
    for build in result.builds:
        out.append(f"- {build['role']}: `{build['source']}` ({build['detail']})")
    if result.baseline_rule:
        out.append(f"- baseline chosen because {result.baseline_rule}")
    if result.profile:
        line = f"- profile `{result.profile.get('name')}` (sha256 {str(result.profile.get('sha256'))[:12]})"
        if result.rounds:
            line += f", {result.rounds} rounds per build" + (", interleaved" if result.mode == "ab" else "")
        if result.alpha is not None:
            line += f", alpha {result.alpha:g}"
        out.append(line)
    if result.live:
        live = result.live
        out.append(f"- Prometheus `{live.get('url')}`, selector `{live.get('selector') or '(all)'}`, "
                   f"window {live.get('window')} ending {live.get('at')}")
    out.append(f"- took {_duration(result.duration_s)}")
    out.extend(f"- note: {n}" for n in result.notes)
    out.append("")
    if result.error is not None:
        if result.error.detail:
            out += ["<details><summary>log tail</summary>", "", "```", result.error.detail.strip()[-2500:],
                    "```", "</details>", ""]
        return "\n".join(out)
    if result.regressions:
        out.append("**Regressions** (worse than the threshold and significant):")
        for c in result.regressions:
            out.append(f"- `{c.key}`: {fmt(c.baseline, c.unit)} → {fmt(c.candidate, c.unit)} "
                       f"({_change(c)}, threshold {_threshold(c)}, p = {_p(c.p_worse)})")
        out.append("")
    improvements = [c for c in result.comparisons if c.verdict == IMPROVEMENT]
    if improvements:
        out.append("Improvements: " + ", ".join(f"`{c.key}` {_change(c)}" for c in improvements))
        out.append("")
    if result.comparisons:
        out += ["| metric | baseline | candidate | change | threshold | p (worse) | verdict |",
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for c in result.comparisons:
            verdict = f"**{c.verdict.upper()}**" if c.verdict == REGRESSION else c.verdict
            out.append(f"| {c.key} | {fmt(c.baseline, c.unit)} | {fmt(c.candidate, c.unit)} | {_change(c)} | "
                       f"{_threshold(c)} | {_p(c.p_worse)} | {verdict} |")
        out.append("")
    if result.slo:
        both = result.mode == "ab"
        out += [f"**SLO `{result.slo_class}`**", "",
                "| check | limit | " + ("candidate | baseline" if both else "measured") + " | |",
                "| --- | ---: | ---: | " + ("---: | " if both else "") + "--- |"]
        for s in result.slo:
            unit = SLO_UNITS[s.name]
            state = s.note or {True: "ok", False: "**BREACHED**", None: NOT_MEASURED}[s.passed]
            cells = [SLO_NAMES[s.name], fmt(s.limit, unit), fmt(s.candidate, unit)]
            if both:
                cells.append(fmt(s.baseline, unit))
            out.append("| " + " | ".join([*cells, state]) + " |")
        out.append("")
    details = _step_details(result)
    if details:
        out += ["<details><summary>calls per step</summary>", "", *details, "</details>", ""]
    if result.comparisons:
        out.append(f"A metric fails when the candidate's median over rounds is worse than the baseline's by "
                   f"more than its threshold and a one-sided Mann-Whitney U test over the per-round values "
                   f"gives p < {result.alpha:g} (peak RSS: the threshold alone).")
    return "\n".join(out).rstrip() + "\n"


def _step_details(result: GateResult) -> list[str]:
    rows = []
    for role, summary in result.summaries.items():
        for step, totals in summary.get("steps", {}).items():
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(totals.get("statuses", {}).items()))
            example = totals.get("example", "").replace("|", "\\|").replace("\n", " ")[:160]
            counts = f"{totals['calls']} | {totals['unexpected']}"
            rows.append(f"| {role} | {step} | {counts} | {statuses} | {example} |")
    if not rows:
        return []
    return ["| build | step | calls | unexpected outcomes | statuses | first unexpected |",
            "| --- | --- | ---: | ---: | --- | --- |", *rows, ""]
