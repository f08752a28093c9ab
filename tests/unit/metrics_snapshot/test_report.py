"""The HTML report and its SVG charts (the browser test opens a real one)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from metrics_snapshot.charts import Line, format_value, line_chart

from tests.unit.metrics_snapshot.conftest import Rig


def test_a_chart_draws_one_polyline_per_series_and_breaks_at_gaps() -> None:
    """Two series, one with a gap in the middle: three polylines, a legend entry each, values in tooltips."""
    lines = [Line("a", [1.0, 2.0, 3.0]), Line("b", [1.0, None, 2.0])]
    svg = line_chart("x", "Title", ["00", "01", "02"], lines, "s")
    assert svg.count("<polyline") == 3 and svg.count("<circle") == 5
    assert "a 01: 2 s" in svg and ">b</text>" in svg


def test_a_chart_without_data_says_so() -> None:
    """Every value missing: a figure marked empty with "no data", no polyline."""
    svg = line_chart("x", "Title", ["00"], [Line("a", [None])], "s")
    assert 'class="chart empty"' in svg and "no data" in svg and "<polyline" not in svg


def test_names_are_escaped() -> None:
    """A revision named like markup is shown as text."""
    svg = line_chart("x", "<b>", ["00"], [Line("<script>", [1.0])], "")
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_values_are_formatted_in_their_unit() -> None:
    """Seconds under 1 in ms, ratios in percent, bytes in binary units."""
    assert format_value(0.375, "s") == "375 ms" and format_value(1.84, "s") == "1.84 s"
    assert format_value(0.1, "ratio") == "10 %" and format_value(8e9, "bytes") == "7.45 GiB"


def test_the_report_is_self_contained_with_every_chart(rig_factory: Callable[..., Rig]) -> None:
    """report.html loads nothing from anywhere and holds the eight charts and the two summary tables."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-02T03:05")
    rig.snapshotter.run_pending()
    html = (rig.store.day_dir(date(2025, 6, 1)) / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?https?:""", html) and "<script" not in html
    charts = re.findall(r'<figure class="chart" id="chart-([\w-]+)"', html)
    assert charts == ["latency", "latency-endpoint", "qps", "errors", "stages", "gpu-memory",
                      "gpu-utilization", "load"]
    assert "Per model revision, whole day" in html and "damo/ofa_large" in html
