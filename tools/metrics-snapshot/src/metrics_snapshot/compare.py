"""Before/after: two model revisions, or two time ranges, side by side with a significance test.

Each side is a set of label matchers on the per-revision series (model, revision) and a time range. Its
range is cut into windows (an hour by default); every window gives one value of each metric (its P95
from that window's buckets, its error ratio, ...), and the whole range gives the headline value (the
P95 of all its buckets together). The relative change compares the headline values; the test compares
the windows of one side with those of the other (stats.py says which test and why). A metric counts as
changed when the test is significant (p < alpha) AND the relative change is at least `min_effect`:
with weeks of windows even a 1 % shift can be significant, and nobody should roll back for that.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from html import escape
from zoneinfo import ZoneInfo

from metrics_snapshot.charts import Line, format_value, line_chart
from metrics_snapshot.collect import Windows
from metrics_snapshot.histogram import merge, quantile, total
from metrics_snapshot.report import STYLE
from metrics_snapshot.stats import mann_whitney_u, smallest_p
from metrics_snapshot.tables import regroup, regroup_histograms

LATENCY_QUANTILES = (0.5, 0.9, 0.95, 0.99)
STAGE_QUANTILES = (0.5, 0.95)
SIDE_KEYS = ("model", "revision", "from", "to")
VERDICT_STYLE = "tr.regression td { background: #fde2e2; } tr.improvement td { background: #e2f5e2; }"
# A window's q-quantile is used only when this many observations lie above it: count * (1 - q) >= 5,
# i.e. 10 requests for a P50, 100 for a P95, 500 for a P99. A ratio needs this many requests.
MIN_TAIL = 5
MIN_RATIO_REQUESTS = 20


@dataclass(frozen=True)
class Side:
    """One side of the comparison: which series (model / revision, None = any) over which time range."""

    model: str | None
    revision: str | None
    start: datetime
    end: datetime

    def matchers(self, selector: str = "") -> str:
        """PromQL label matchers for this side's series."""
        parts = [selector] if selector else []
        for label, value in (("model", self.model), ("revision", self.revision)):
            if value is not None:
                parts.append(f'{label}="{_escape_label(value)}"')
        return ", ".join(parts)

    def describe(self, zone: ZoneInfo) -> str:
        """For the report: what and when."""
        what = ", ".join(f"{k}={v}" for k, v in (("model", self.model), ("revision", self.revision)) if v)
        fmt = "%Y-%m-%d %H:%M"
        start, end = self.start.astimezone(zone).strftime(fmt), self.end.astimezone(zone).strftime(fmt)
        when = f"{start} to {end} ({zone})"
        return f"{what or 'all revisions'}, {when}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """A date (local midnight), a local date-time, or an ISO time with an offset."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a date or ISO date-time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def parse_side(spec: str, default_start: datetime, default_end: datetime, zone: ZoneInfo) -> Side:
    """`revision=v1.1`, `model=damo/ofa_xl,revision=v2`, `from=2025-06-01,to=2025-06-08` (to: exclusive),
    or any mix; unnamed parts fall back to the defaults (any model and revision, the common range)."""
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in SIDE_KEYS or not value.strip():
            raise ValueError(f"bad side {spec!r}: expected key=value parts with keys {', '.join(SIDE_KEYS)}")
        fields[key.strip()] = value.strip()
    start = parse_time(fields["from"], zone) if "from" in fields else default_start
    end = parse_time(fields["to"], zone) if "to" in fields else default_end
    if end <= start:
        raise ValueError(f"bad side {spec!r}: its range ends before it starts")
    return Side(fields.get("model"), fields.get("revision"), start.astimezone(UTC), end.astimezone(UTC))


@dataclass
class Metric:
    """One compared quantity on one side: the whole range's value and one value per usable window."""

    name: str
    unit: str
    better: str | None  # "lower", "higher", or None when neither is better (traffic)
    overall: float | None
    windows: list[float] = field(default_factory=list)


def _quantile_metrics(name: str, hist: dict[int, dict[float, float]], qs: tuple[float, ...]) -> list[Metric]:
    everything = merge(hist.values())
    out = []
    for q in qs:
        usable = [b for b in hist.values() if total(b) * (1 - q) >= MIN_TAIL]
        windows = [v for b in usable if (v := quantile(q, b)) is not None]
        overall = quantile(q, everything) if everything else None
        out.append(Metric(f"{name} P{round(q * 100)}", "s", "lower", overall, windows))
    return out


def side_metrics(w: Windows) -> dict[str, Metric]:
    """Every compared metric of one side, keyed by name."""
    metrics: list[Metric] = []
    for endpoint, hist in sorted(regroup_histograms(w.family("latency"), lambda k: k[3]).items()):
        metrics += _quantile_metrics(f"latency {endpoint}", hist, LATENCY_QUANTILES)
    by_result = regroup(w.family("requests"), lambda k: k[3])
    served = regroup(w.family("requests"), lambda k: "all").get("all", {})
    failed = by_result.get("server_error", {})
    metrics.append(Metric(
        "requests per second", "reqps", None,
        sum(served.values()) / (len(served) * w.length_s) if served else None,
        [n / w.length_s for n in served.values()],
    ))
    metrics.append(Metric(
        "server error ratio", "ratio", "lower",
        sum(failed.values()) / sum(served.values()) if sum(served.values()) else None,
        [failed.get(t, 0.0) / n for t, n in served.items() if n >= MIN_RATIO_REQUESTS],
    ))
    for stage, hist in sorted(regroup_histograms(w.family("stages"), lambda k: k[3]).items()):
        metrics += _quantile_metrics(f"stage {stage}", hist, STAGE_QUANTILES)
    memory = w.family("gpu_memory_mean")
    if memory:
        per_window: dict[int, list[float]] = {}
        for points in memory.values():
            for t, v in points.items():
                per_window.setdefault(t, []).append(v)
        means = [sum(vs) / len(vs) for vs in per_window.values()]
        metrics.append(Metric("GPU memory used per GPU", "bytes", "lower", sum(means) / len(means), means))
    items = regroup(w.family("batch_items"), lambda k: "all").get("all", {})
    passes = regroup(w.family("batches"), lambda k: "all").get("all", {})
    if sum(passes.values()):
        metrics.append(Metric(
            "batch size (mean)", "", None, sum(items.values()) / sum(passes.values()),
            [items.get(t, 0.0) / n for t, n in passes.items() if n > 0],
        ))
    return {m.name: m for m in metrics}


@dataclass(frozen=True)
class Row:
    """One line of the comparison."""

    name: str
    unit: str
    a: float | None
    b: float | None
    change: float | None  # (b - a) / a
    p: float | None
    n_a: int
    n_b: int
    verdict: str


def compare_metrics(
    a: dict[str, Metric], b: dict[str, Metric], alpha: float = 0.01, min_effect: float = 0.05
) -> list[Row]:
    """Rows for every metric present on both sides, in side A's order."""
    if not 0 < alpha < 1 or min_effect < 0:
        raise ValueError("alpha must be within (0, 1) and min_effect not negative")
    rows = []
    for name, ma in a.items():
        mb = b.get(name)
        if mb is None:
            continue
        change = None
        if ma.overall is not None and mb.overall is not None:
            if ma.overall != 0:
                change = (mb.overall - ma.overall) / abs(ma.overall)
            else:
                change = 0.0 if mb.overall == 0 else math.copysign(math.inf, mb.overall)
        n_a, n_b = len(ma.windows), len(mb.windows)
        p = None
        if n_a >= 2 and n_b >= 2 and smallest_p(n_a, n_b) < alpha:
            p = mann_whitney_u(ma.windows, mb.windows).p
        if p is None:
            verdict = "insufficient data"
        elif p < alpha and change is not None and abs(change) >= min_effect:
            if ma.better is None:
                verdict = "higher" if change > 0 else "lower"
            else:
                worse = (change > 0) == (ma.better == "lower")
                verdict = "regression" if worse else "improvement"
        else:
            verdict = "no change"
        rows.append(Row(name, ma.unit, ma.overall, mb.overall, change, p, n_a, n_b, verdict))
    return rows


def _value(value: float | None, unit: str) -> str:
    return "–" if value is None else format_value(value, unit)


def _change(change: float | None) -> str:
    if change is None:
        return "–"
    if math.isinf(change):
        return "+∞" if change > 0 else "−∞"
    return f"{change * 100:+.1f} %"


def _p(p: float | None) -> str:
    return "–" if p is None else (f"{p:.2g}" if p >= 1e-4 else "<0.0001")


@dataclass(frozen=True)
class Comparison:
    """Everything a rendered comparison shows."""

    a: Side
    b: Side
    window_s: int
    alpha: float
    min_effect: float
    zone: ZoneInfo
    rows: list[Row]
    series_a: dict[str, Metric]
    series_b: dict[str, Metric]

    def method(self) -> str:
        """How the verdicts were reached, in one paragraph."""
        return (
            f"Each side is cut into {self.window_s // 60}-minute windows; every window with enough traffic "
            f"gives one value per metric (a quantile needs 5 requests above it: 100 for a P95). Headline "
            f"values use the whole range's buckets. p: two-sided Mann-Whitney U test of side A's windows "
            f"against side B's (rank-based: no normality assumed, robust to outlier windows; windows taken "
            f"as independent). A metric changed when p < {self.alpha:g} and the relative change is at least "
            f"{self.min_effect * 100:g} %; \"insufficient data\": too few windows for p to get below "
            f"{self.alpha:g}."
        )

    def regressions(self) -> list[Row]:
        """The rows judged regressions."""
        return [row for row in self.rows if row.verdict == "regression"]

    def markdown(self) -> str:
        """The comparison as a Markdown document."""
        lines = [
            "# Before/after comparison",
            "",
            f"- **A**: {self.a.describe(self.zone)}",
            f"- **B**: {self.b.describe(self.zone)}",
            "",
            self.method(),
            "",
            "| metric | A | B | change | p | windows A / B | verdict |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in self.rows:
            verdict = f"**{r.verdict}**" if r.verdict in ("regression", "improvement") else r.verdict
            cells = [r.name, _value(r.a, r.unit), _value(r.b, r.unit), _change(r.change), _p(r.p),
                     f"{r.n_a} / {r.n_b}", verdict]
            lines.append(f"| {' | '.join(cells)} |")
        if not self.rows:
            lines.append("| (no metric has data on both sides) | | | | | | |")
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        """The comparison as a self-contained HTML page with a chart of each latency P95 window by window."""
        body = "".join(
            f'<tr class="{escape(r.verdict.replace(" ", "-"))}"><td class="text">{escape(r.name)}</td>'
            f"<td>{escape(_value(r.a, r.unit))}</td><td>{escape(_value(r.b, r.unit))}</td>"
            f"<td>{escape(_change(r.change))}</td><td>{escape(_p(r.p))}</td><td>{r.n_a} / {r.n_b}</td>"
            f'<td class="text">{escape(r.verdict)}</td></tr>'
            for r in self.rows
        )
        charts = []
        for name in self.series_a:
            if name.startswith("latency ") and name.endswith(" P95") and name in self.series_b:
                wa, wb = self.series_a[name].windows, self.series_b[name].windows
                n = max(len(wa), len(wb))
                lines = [Line("A", [*wa, *[None] * (n - len(wa))]), Line("B", [*wb, *[None] * (n - len(wb))])]
                labels = [str(i + 1) for i in range(n)]
                title = f"{name}, window by window"
                charts.append(line_chart(name.replace(" ", "-"), title, labels, lines, "s"))
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Before/after comparison</title>
<style>{STYLE}{VERDICT_STYLE}</style>
</head><body><h1>Before/after comparison</h1>
<p><b>A</b>: {escape(self.a.describe(self.zone))}<br><b>B</b>: {escape(self.b.describe(self.zone))}</p>
<p class="meta">{escape(self.method())}</p>
<table><tr><th class="text">metric</th><th>A</th><th>B</th><th>change</th><th>p</th><th>windows A / B</th>
<th class="text">verdict</th></tr>{body}</table>
<div class="charts">{"".join(charts)}</div></body></html>
"""
