"""Before/after comparison: sides, metrics from windows, verdicts and their rendering."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from metrics_snapshot.collect import Windows
from metrics_snapshot.compare import Comparison, Side, compare_metrics, parse_side, side_metrics

ZONE = ZoneInfo("Asia/Shanghai")
START, END = datetime(2025, 6, 1, tzinfo=ZONE), datetime(2025, 6, 8, tzinfo=ZONE)
BOUNDS = ("0.1", "0.25", "0.5", "0.75", "1.0", "1.5", "2.0", "3.0", "5.0", "+Inf")


def _windows(seed: int, scale: float = 1.0, hours: int = 48, revision: str = "v1") -> Windows:
    """Hourly windows of one replica: 2,000 requests an hour with log-normal latencies times `scale`."""
    rng = random.Random(seed)
    ends = [1748707200 + 3600 * (i + 1) for i in range(hours)]
    w = Windows(3600, ends)
    key = ("10.0.0.1:8000", "m", revision)
    latency: dict[tuple[str, ...], dict[int, float]] = {}
    requests: dict[tuple[str, ...], dict[int, float]] = {}
    for end in ends:
        samples = [rng.lognormvariate(-0.7, 0.45) * scale for _ in range(2000)]
        for bound in BOUNDS:
            limit = float(bound) if bound != "+Inf" else float("inf")
            latency.setdefault((*key, "entailment", bound), {})[end] = sum(s <= limit for s in samples)
        requests.setdefault((*key, "success"), {})[end] = 1990.0
        requests.setdefault((*key, "server_error"), {})[end] = 10.0
    w.values = {"latency": latency, "requests": requests}
    return w


def _rows(a: Windows, b: Windows) -> dict[str, object]:
    return {row.name: row for row in compare_metrics(side_metrics(a), side_metrics(b))}


def test_a_planted_30_percent_p95_regression_is_found() -> None:
    """Latencies 1.3x slower on side B: P95 up about 30 %, p tiny, verdict regression; traffic unchanged."""
    rows = _rows(_windows(1), _windows(2, scale=1.3))
    p95 = rows["latency entailment P95"]
    assert p95.verdict == "regression" and 0.2 < p95.change < 0.4 and p95.p < 1e-6
    assert (p95.n_a, p95.n_b) == (48, 48)
    assert rows["requests per second"].verdict == "no change"
    assert rows["server error ratio"].verdict == "no change"


def test_identical_data_shows_no_change_anywhere() -> None:
    """The same windows on both sides: every change 0 %, every p 1, every verdict no change."""
    rows = _rows(_windows(1), _windows(1))
    assert rows and {r.verdict for r in rows.values()} == {"no change"}
    assert {r.change for r in rows.values()} == {0.0} and {r.p for r in rows.values()} == {1.0}


def test_another_sample_of_the_same_traffic_is_not_a_change() -> None:
    """Two independent days of the same distribution: no metric is reported changed."""
    rows = _rows(_windows(1), _windows(99))
    assert {r.verdict for r in rows.values()} == {"no change"}


def test_faster_is_an_improvement_and_too_few_windows_is_insufficient_data() -> None:
    """B 1.3x faster: improvement. Four hours a side cannot reach p < 0.01: insufficient data."""
    assert _rows(_windows(1), _windows(2, scale=1 / 1.3))["latency entailment P95"].verdict == "improvement"
    few = _rows(_windows(1, hours=4), _windows(2, scale=1.3, hours=4))["latency entailment P95"]
    assert few.verdict == "insufficient data" and few.p is None


def test_sides_parse_revisions_models_and_ranges() -> None:
    """key=value parts; a date is local midnight; unnamed parts fall back to the defaults."""
    side = parse_side("model=damo/ofa_xl, revision=v2", START, END, ZONE)
    assert (side.model, side.revision, side.start, side.end) == ("damo/ofa_xl", "v2", START, END)
    assert side.matchers('env="prod"') == 'env="prod", model="damo/ofa_xl", revision="v2"'
    ranged = parse_side("from=2025-06-01,to=2025-06-01T12:00", START, END, ZONE)
    assert ranged.end == datetime(2025, 6, 1, 4, tzinfo=UTC) and ranged.revision is None
    assert parse_side('revision=a"b', START, END, ZONE).matchers() == 'revision="a\\"b"'


@pytest.mark.parametrize("spec", ["revision", "colour=red", "from=today", "from=2025-06-02,to=2025-06-01"])
def test_bad_sides_are_refused_with_a_reason(spec: str) -> None:
    """Unknown keys, missing values, unparsable times and backwards ranges are ValueErrors."""
    with pytest.raises(ValueError):
        parse_side(spec, START, END, ZONE)


def test_markdown_and_html_show_each_metric_and_the_method() -> None:
    """Both renderings list the rows with the verdict and say which test was used."""
    a, b = _windows(1), _windows(2, scale=1.3)
    sa, sb = side_metrics(a), side_metrics(b)
    side_a = Side("m", "v1", START.astimezone(UTC), END.astimezone(UTC))
    side_b = Side("m", "v2", START.astimezone(UTC), END.astimezone(UTC))
    result = Comparison(side_a, side_b, 3600, 0.01, 0.05, ZONE, compare_metrics(sa, sb), sa, sb)
    markdown = result.markdown()
    assert "| latency entailment P95 |" in markdown and "**regression**" in markdown
    assert "Mann-Whitney U" in markdown and "revision=v2" in markdown
    html = result.html()
    assert '<tr class="regression">' in html and 'id="chart-latency-entailment-P95"' in html
    assert {r.name for r in result.regressions()} >= {"latency entailment P50", "latency entailment P95"}


def test_bad_significance_settings_are_refused() -> None:
    """alpha outside (0, 1) or a negative minimum effect is a ValueError."""
    with pytest.raises(ValueError, match="alpha"):
        compare_metrics({}, {}, alpha=1.5)
