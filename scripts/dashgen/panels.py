"""Builders for the few Grafana panel kinds the dashboards use, and a grid that places them.

Plain dicts in Grafana's dashboard JSON model (schemaVersion 39, Grafana 10/11). Every panel gets a
unit and the dashboard's `datasource` variable (Prometheus or VictoriaMetrics); ids and grid positions
are assigned in order so the output is stable from one run to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashgen.links import DATASOURCE, DATASOURCE_VARIABLE, PROMETHEUS_UID

GRID_WIDTH = 24


def target(
    expr: str, legend: str = "", *, ref: str = "A", instant: bool = False, fmt: str = "",
    exemplar: bool = False,
) -> dict:
    """One Prometheus query of a panel; `exemplar` also fetches the exemplars of the series it reads (the
    request ids that link to /v1/requests/{id} through the datasource's exemplar link)."""
    out: dict[str, Any] = {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
    if exemplar:
        out["exemplar"] = True
    if instant:
        out["instant"] = True
        out["range"] = False
    else:
        out["range"] = True
    if fmt:
        out["format"] = fmt
    return out


def _targets(queries: list[tuple[str, str]], exemplar: bool = False) -> list[dict]:
    return [
        target(expr, legend, ref=chr(ord("A") + i), exemplar=exemplar)
        for i, (expr, legend) in enumerate(queries)
    ]


def _thresholds(steps: list[tuple[float | None, str]]) -> dict:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def _panel(
    kind: str, title: str, description: str, targets: list[dict], defaults: dict, options: dict
) -> dict:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def timeseries(
    title: str,
    queries: list[tuple[str, str]],
    unit: str,
    *,
    description: str = "",
    stack: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    exemplars: bool = False,
) -> dict:
    """A time series panel; `thresholds` are drawn as dashed lines (alert levels); `exemplars` draws the
    queries' exemplars as points, each linking to its request."""
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 30 if stack else 10,
            "showPoints": "never",
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "thresholdsStyle": {"mode": "dashed" if thresholds else "off"},
        },
        "thresholds": _thresholds(thresholds or [(None, "green")]),
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, description, _targets(queries, exemplars), defaults, options)


def stat(
    title: str,
    queries: list[tuple[str, str]],
    unit: str,
    *,
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    decimals: int | None = None,
    names: list[tuple[int, str, str]] | None = None,
) -> dict:
    """A single-value panel showing the last value of each series; `names` maps values to (text, colour)."""
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": _thresholds(thresholds or [(None, "green")]),
        "color": {"mode": "thresholds"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if names:
        options_by_value = {
            str(value): {"text": text, "color": color, "index": i}
            for i, (value, text, color) in enumerate(names)
        }
        defaults["mappings"] = [{"type": "value", "options": options_by_value}]
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "area",
        "textMode": "value_and_name",
        "justifyMode": "auto",
        "orientation": "auto",
    }
    return _panel("stat", title, description, _targets(queries), defaults, options)


def heatmap(title: str, expr: str, unit: str, *, description: str = "") -> dict:
    """A heatmap of pre-bucketed histogram data (one series per `le`)."""
    options = {
        "calculate": False,
        "yAxis": {"axisPlacement": "left", "unit": unit},
        "rowsFrame": {"layout": "auto"},
        "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5, "fill": "dark-orange"},
        "cellGap": 1,
        "tooltip": {"show": True, "yHistogram": True},
        "legend": {"show": True},
    }
    targets = [target(expr, "{{le}}", fmt="heatmap")]
    return _panel("heatmap", title, description, targets, {"unit": unit}, options)


@dataclass
class Grid:
    """Lays panels out left to right in rows of 24 columns, each section under a row header."""

    panels: list[dict] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0

    def _next_id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        """Start a new section."""
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._next_id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def add(self, panel: dict, width: int = 8, height: int = 8) -> None:
        """Place a panel after the previous one, wrapping to a new line when the row is full."""
        if self._x + width > GRID_WIDTH:
            self._newline()
        self.panels.append(
            {"id": self._next_id(), "gridPos": {"h": height, "w": width, "x": self._x, "y": self._y}, **panel}
        )
        self._x += width
        self._row_height = max(self._row_height, height)

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0


def datasource_variable() -> dict:
    """The `datasource` variable: any Prometheus-API datasource, Prometheus (30 days) by default and
    VictoriaMetrics (a year) one click away."""
    return {
        "name": DATASOURCE_VARIABLE,
        "label": "Data source",
        "description": "Prometheus keeps 30 days; VictoriaMetrics the remote-written copy, 12 months.",
        "type": "datasource",
        "query": "prometheus",
        "regex": "",
        "current": {"selected": True, "text": "Prometheus", "value": PROMETHEUS_UID},
        "refresh": 1,
        "includeAll": False,
        "multi": False,
        "hide": 0,
        "options": [],
    }


def instance_variable(job: str) -> dict:
    """A multi-select `instance` variable over the targets of one scrape job."""
    query = f'label_values(up{{job="{job}"}}, instance)'
    return {
        "name": "instance",
        "label": "Instance",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "instance"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "options": [],
    }


def dashboard(
    uid: str, title: str, description: str, grid: Grid, variables: list[dict], links: list[dict]
) -> dict:
    """The dashboard envelope."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["ofa-ve", "generated"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "datasource": DATASOURCE,
                    "enable": True,
                    "expr": 'ALERTS{alertstate="firing", alertname!="Watchdog"}',
                    "iconColor": "red",
                    "name": "Firing alerts",
                    "step": "60s",
                    "titleFormat": "{{alertname}}",
                    "textFormat": "{{service}} {{instance}} {{severity}}",
                    "useValueForTime": False,
                },
            ]
        },
        "templating": {"list": [datasource_variable(), *variables]},
        "links": links,
        "panels": grid.panels,
    }
