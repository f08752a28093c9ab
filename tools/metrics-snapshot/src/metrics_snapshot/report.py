"""The day's HTML report: summary tables and charts in one self-contained file (inline CSS and SVG)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from metrics_snapshot import SCHEMA_VERSION
from metrics_snapshot.charts import Line, format_value, line_chart
from metrics_snapshot.collect import Windows
from metrics_snapshot.histogram import merge, quantile, total
from metrics_snapshot.tables import QUANTILES, mean, regroup, regroup_histograms

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1560px; color: #222;
       padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #555; } table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } figure.chart { margin: 0; border: 1px solid #ddd; }
svg .title { font-size: 14px; font-weight: 600; } svg .tick { font-size: 11px; fill: #555; }
svg .legend { font-size: 11px; } svg .grid { stroke: #e5e5e5; } svg .empty { font-size: 14px; fill: #999; }
"""

LATENCY_LABELS = [f"P{round(q * 100)}" for q in QUANTILES]


def _cell(value: Any, unit: str = "") -> str:
    if value is None:
        return "<td>–</td>"
    if isinstance(value, str):
        return f'<td class="text">{escape(value)}</td>'
    if unit:
        return f"<td>{escape(format_value(value, unit))}</td>"
    return f"<td>{value:,.0f}</td>" if abs(value) >= 100 else f"<td>{value:.3g}</td>"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f'<th class="{"text" if i < 2 else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(f"<tr>{''.join(cells)}</tr>" for cells in rows)
    return f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>No data for this day.</p>"


class DayReport:
    """Renders report.html for one day from its hourly windows."""

    def __init__(self, day: date, windows: Windows, zone: ZoneInfo, meta: dict[str, Any]) -> None:
        self.day, self.w, self.zone, self.meta = day, windows, zone, meta
        self.labels = [
            datetime.fromtimestamp(end - windows.length_s, UTC).astimezone(zone).strftime("%H:%M")
            for end in windows.ends
        ]

    def _series(self, points: dict[int, float]) -> list[float | None]:
        return [points.get(end) for end in self.w.ends]

    def _summary(self) -> str:
        requests = regroup(self.w.family("requests"), lambda k: k[1:3])
        errors = regroup({k: v for k, v in self.w.family("requests").items() if k[3] == "server_error"},
                     lambda k: k[1:3])
        replicas = {k[1:3]: set() for k in self.w.family("requests")}
        for key in self.w.family("requests"):
            replicas[key[1:3]].add(key[0])
        latency = regroup_histograms(self.w.family("latency"), lambda k: k[1:3])
        rows = []
        for revision in sorted(requests):
            served = sum(requests[revision].values())
            failed = sum(errors.get(revision, {}).values())
            peak = max(requests[revision].values()) / self.w.length_s
            day = merge(latency.get(revision, {}).values())
            qs = [quantile(q, day) for q in QUANTILES] if day else [None] * len(QUANTILES)
            hours = len(requests[revision]) * self.w.length_s
            rows.append([_cell(revision[0]), _cell(revision[1]), _cell(float(len(replicas[revision]))),
                         _cell(served), _cell(served / hours, "reqps"), _cell(peak, "reqps"),
                         _cell(failed / served if served else None, "ratio"), *(_cell(q, "s") for q in qs)])
        headers = ["model", "revision", "replicas", "requests", "mean QPS (hours served)", "peak hourly QPS",
                   "server errors", *LATENCY_LABELS]
        return _table(headers, rows)

    def _endpoints(self) -> str:
        latency = regroup_histograms(self.w.family("latency"), lambda k: (k[1], k[2], k[3]))
        rows = []
        for key in sorted(latency):
            day = merge(latency[key].values())
            rows.append([_cell(key[0]), _cell(key[1]), _cell(key[2]), _cell(total(day)),
                         *(_cell(quantile(q, day), "s") for q in QUANTILES)])
        return _table(["model", "revision", "endpoint", "requests", *LATENCY_LABELS], rows)

    def _quantile(self, hours: dict[int, dict[float, float]], q: float) -> list[float | None]:
        return self._series({t: v for t, buckets in hours.items() if (v := quantile(q, buckets)) is not None})

    def _charts(self) -> list[str]:
        hours = regroup_histograms(self.w.family("latency"), lambda k: "all").get("all", {})
        pairs = zip(LATENCY_LABELS, QUANTILES, strict=True)
        latency = [Line(label, self._quantile(hours, q)) for label, q in pairs]
        by_endpoint = regroup_histograms(self.w.family("latency"), lambda k: k[3])
        p95_endpoint = [Line(name, self._quantile(pts, 0.95)) for name, pts in sorted(by_endpoint.items())]
        by_result = regroup(self.w.family("requests"), lambda k: k[3])
        qps = [Line(result, self._series({t: n / self.w.length_s for t, n in pts.items()}))
               for result, pts in sorted(by_result.items())]
        served = regroup(self.w.family("requests"), lambda k: "all").get("all", {})
        by_type = regroup(self.w.family("errors"), lambda k: k[3])
        busiest = sorted(by_type, key=lambda t: -sum(by_type[t].values()))[:6]
        errors = [Line(t, self._series({h: n / served[h] for h, n in by_type[t].items() if served.get(h)}))
                  for t in busiest if sum(by_type[t].values()) > 0]
        by_stage = regroup_histograms(self.w.family("stages"), lambda k: k[3])
        stages = [Line(stage, self._quantile(pts, 0.95)) for stage, pts in sorted(by_stage.items())]
        per_gpu = {"gpu_memory_mean": [], "gpu_utilization_mean": []}
        for family, lines in per_gpu.items():
            for key, pts in sorted(self.w.family(family).items()):
                lines.append(Line(f"{key[0]} gpu {key[3]} ({key[2]})", self._series(pts)))
        items = regroup(self.w.family("batch_items"), lambda k: "all").get("all", {})
        passes = regroup(self.w.family("batches"), lambda k: "all").get("all", {})
        queue = regroup(self.w.family("queue_depth_mean"), lambda k: "all", mean).get("all", {})
        load = [Line("mean batch size", self._series({t: items[t] / n for t, n in passes.items()
                                                      if n and t in items})),
                Line("mean queue depth per replica", self._series(queue))]
        return [
            line_chart("latency", "Request latency P50 / P90 / P95 / P99 (all replicas, all endpoints)",
                       self.labels, latency, "s"),
            line_chart("latency-endpoint", "Request latency P95 by endpoint", self.labels, p95_endpoint, "s"),
            line_chart("qps", "Requests per second by result", self.labels, qps, "reqps"),
            line_chart("errors", "Errors per request by type", self.labels, errors, "ratio"),
            line_chart("stages", "Stage latency P95", self.labels, stages, "s"),
            line_chart("gpu-memory", "GPU memory used (hourly mean)", self.labels, per_gpu["gpu_memory_mean"],
                       "bytes"),
            line_chart("gpu-utilization", "GPU utilisation (hourly mean)", self.labels,
                       per_gpu["gpu_utilization_mean"], "ratio"),
            line_chart("load", "Batch size and queue depth", self.labels, load, ""),
        ]

    def render(self) -> str:
        """The whole HTML document."""
        meta = self.meta
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>OFA-VE metrics {self.day.isoformat()}</title>
<style>{STYLE}</style></head><body>
<h1>OFA-VE metrics, {self.day.isoformat()}</h1>
<p class="meta">{escape(meta["start"])} to {escape(meta["end"])} ({escape(meta["timezone"])}), hourly, from
{escape(meta["source"])}; generated {escape(meta["generated_at"])}; schema version {SCHEMA_VERSION}.
Hourly rows per replica and revision: the CSV files and snapshot.json beside this file.</p>
<h2>Per model revision, whole day</h2>{self._summary()}
<h2>Latency by endpoint, whole day</h2>{self._endpoints()}
<h2>Hour by hour (times in {escape(meta["timezone"])})</h2>
<div class="charts">{"".join(self._charts())}</div>
</body></html>
"""
