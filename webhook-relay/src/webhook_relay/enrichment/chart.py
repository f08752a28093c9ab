"""One PNG of the last hour, drawn in-process with Pillow: no browser, no plotting stack.

Pillow is the one drawing dependency (pinned with ofa-ve's version; the wheel bundles libpng, zlib and
FreeType, so the slim image needs no system package). A few line panels need no more than lines, text
and a frame; matplotlib would bring numpy and five more packages into the relay for the same picture.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from webhook_relay.enrichment.prometheus import Curve
from webhook_relay.enrichment.table import Series

WIDTH, HEIGHT = 960, 600
_MARGIN_X, _MARGIN_TOP, _TITLE_H = 16, 16, 34
_COLORS = ((26, 115, 232), (217, 48, 37), (24, 128, 56), (227, 116, 0), (142, 36, 170), (0, 137, 123))
_GRID, _AXIS, _TEXT, _MUTED = (230, 232, 236), (160, 164, 170), (32, 33, 36), (95, 99, 104)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _label(value: float, unit: str) -> str:
    if unit == "pct":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2g}" if abs(value) < 1 else f"{value:.1f}"


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], series: Series, curves: Sequence[Curve],
           start: float, end: float, marker: float | None, colors: dict[str, tuple[int, int, int]]) -> None:
    left, top, right, bottom = box
    small, normal = _font(12), _font(14)
    draw.text((left, top), series.title, fill=_TEXT, font=normal)
    plot = (left + 56, top + 22, right - 8, bottom - 20)
    x0, y0, x1, y1 = plot
    values = [v for c in curves for _, v in c.points]
    high = max(values) if values else 1.0
    high = high * 1.1 if high > 0 else 1.0
    for i in range(5):
        y = y1 - (y1 - y0) * i / 4
        draw.line([(x0, y), (x1, y)], fill=_GRID, width=1)
        draw.text((left, y - 7), _label(high * i / 4, series.unit), fill=_MUTED, font=small)
    for i, text in enumerate(("-60m", "-45m", "-30m", "-15m", "now")):
        x = x0 + (x1 - x0) * i / 4
        draw.text((x - 12, y1 + 4), text, fill=_MUTED, font=small)
    draw.rectangle(plot, outline=_AXIS, width=1)

    def place(t: float, v: float) -> tuple[float, float]:
        return (x0 + (x1 - x0) * (t - start) / (end - start), y1 - (y1 - y0) * min(v, high) / high)

    if marker is not None and start <= marker <= end:
        mx = place(marker, 0)[0]
        for y in range(int(y0), int(y1), 8):
            draw.line([(mx, y), (mx, min(y + 4, y1))], fill=(217, 48, 37), width=2)
    if not values:
        draw.text((x0 + 10, y0 + 10), "no data", fill=_MUTED, font=normal)
    for curve in curves:
        color = colors.get(curve.labels.get("instance", ""), _COLORS[0])
        points = [place(t, v) for t, v in curve.points if start <= t <= end and math.isfinite(v)]
        if len(points) == 1:
            x, y = points[0]
            draw.ellipse([(x - 2, y - 2), (x + 2, y + 2)], fill=color)
        elif points:
            draw.line(points, fill=color, width=2, joint="curve")


def render_chart(title: str, panels: Sequence[tuple[Series, Sequence[Curve]]], start: float, end: float,
                 marker: float | None = None) -> bytes:
    """A PNG with one panel per series (two columns), lines per instance, a legend, and a dashed red
    line where the alert started (`marker`, Unix seconds)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text((_MARGIN_X, _MARGIN_TOP - 4), title[:110], fill=_TEXT, font=_font(18))
    instances = sorted({c.labels.get("instance", "") for _, curves in panels for c in curves})
    colors = {name: _COLORS[i % len(_COLORS)] for i, name in enumerate(instances)}
    legend_x = _MARGIN_X
    for name in instances[: len(_COLORS)]:
        color = colors[name]
        draw.rectangle([(legend_x, _MARGIN_TOP + 22), (legend_x + 12, _MARGIN_TOP + 30)], fill=color)
        draw.text((legend_x + 16, _MARGIN_TOP + 18), name or "all", fill=_MUTED, font=_font(12))
        legend_x += 30 + int(draw.textlength(name or "all", font=_font(12)))
    rows = max(1, math.ceil(len(panels) / 2))
    top = _MARGIN_TOP + _TITLE_H + 10
    cell_w, cell_h = (WIDTH - 2 * _MARGIN_X) // 2, (HEIGHT - top - 8) // rows
    for index, (series, curves) in enumerate(panels):
        row, col = divmod(index, 2)
        box = (_MARGIN_X + col * cell_w, top + row * cell_h, _MARGIN_X + (col + 1) * cell_w - 12,
               top + (row + 1) * cell_h - 10)
        _panel(draw, box, series, curves, start, end, marker, colors)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
