"""Line charts as inline SVG: the report opens from a file, with no script, server or network."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f")  # fmt: skip
WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, PLOT_HEIGHT = 72, 16, 34, 190
LEGEND_ROW = 18


@dataclass(frozen=True)
class Line:
    """One series: a value (or a gap) per x position."""

    name: str
    values: list[float | None]


def format_value(value: float, unit: str) -> str:
    """A value for an axis label or a tooltip, in the unit's usual form."""
    if unit == "s":
        if value == 0:
            return "0"
        return f"{value * 1000:.3g} ms" if abs(value) < 1 else f"{value:.3g} s"
    if unit == "ratio":
        return f"{value * 100:.3g} %"
    if unit == "bytes":
        for suffix, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= size:
                return f"{value / size:.3g} {suffix}"
        return f"{value:.0f} B"
    if unit == "reqps":
        return f"{value:.3g}/s"
    return f"{value:.3g}"


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * 10**exponent >= value:
            return step * 10**exponent
    return 10 ** (exponent + 1)


def line_chart(key: str, title: str, x_labels: list[str], lines: list[Line], unit: str) -> str:
    """A <figure class="chart"> holding one SVG line chart; "no data" when every value is missing."""
    present = [v for line in lines for v in line.values if v is not None and math.isfinite(v)]
    legend_rows = math.ceil(len(lines) / 3) if present else 0
    height = TOP + PLOT_HEIGHT + 30 + legend_rows * LEGEND_ROW
    width = WIDTH - LEFT - RIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="20" class="title">{escape(title)}</text>',
    ]
    if not present:
        parts.append(f'<text x="{WIDTH / 2}" y="{TOP + PLOT_HEIGHT / 2}" text-anchor="middle" class="empty">'
                     "no data</text></svg>")
        return f'<figure class="chart empty" id="chart-{escape(key)}">{"".join(parts)}</figure>'
    top = _nice_ceiling(max(present))
    bottom = min(0.0, min(present))
    n = max(len(x_labels), 1)

    def x(i: int) -> float:
        return LEFT + (width * (i + 0.5) / n)

    def y(v: float) -> float:
        return TOP + PLOT_HEIGHT * (1 - (v - bottom) / (top - bottom))

    for k in range(5):  # horizontal grid and y labels
        value = bottom + (top - bottom) * k / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     'class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" class="tick">'
                     f"{escape(format_value(value, unit))}</text>")
    step = max(1, math.ceil(n / 12))
    for i in range(0, n, step):
        parts.append(f'<text x="{x(i):.1f}" y="{TOP + PLOT_HEIGHT + 16}" text-anchor="middle" class="tick">'
                     f"{escape(x_labels[i])}</text>")
    for index, line in enumerate(lines):
        color = PALETTE[index % len(PALETTE)]
        segment: list[str] = []
        segments = []
        for i, value in enumerate(line.values):
            if value is None or not math.isfinite(value):
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(value):.1f}")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="2.5" fill="{color}">'
                         f"<title>{escape(line.name)} {escape(x_labels[i])}: "
                         f"{escape(format_value(value, unit))}</title></circle>")
        if segment:
            segments.append(segment)
        for points in segments:
            joined = " ".join(points)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{joined}"/>')
        row, column = divmod(index, 3)
        lx, ly = LEFT + column * (width / 3), TOP + PLOT_HEIGHT + 34 + row * LEGEND_ROW
        parts.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="12" height="4" fill="{color}"/>'
                     f'<text x="{lx + 16:.1f}" y="{ly - 4}" class="legend">{escape(line.name)}</text>')
    parts.append("</svg>")
    return f'<figure class="chart" id="chart-{escape(key)}">{"".join(parts)}</figure>'
