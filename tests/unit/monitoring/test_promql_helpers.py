"""The static PromQL helpers the monitoring tests rely on."""

from __future__ import annotations

import pytest

from tests.support.promql import (
    duration_seconds,
    exposed_names,
    metric_names,
    range_seconds,
    substitute_grafana_variables,
)


def test_metric_names_skips_functions_labels_keywords_and_numbers() -> None:
    """Only selected series names come out of an expression."""
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(foo_bucket{a="b", le=~"1|1\\\\.0"}[5m] offset 1h)))'
        " / on (x) group_left (y) bar > bool 1e9 and vector(0) or baz:qux:rate5m"
    )
    assert metric_names(expr) == {"foo_bucket", "bar", "baz:qux:rate5m"}


def test_metric_names_ignores_words_inside_strings() -> None:
    """A label value or label_replace argument is not a metric."""
    assert metric_names('label_replace(up{job="ofa-ve"}, "dst", "$1", "src", "(not_a_metric)")') == {"up"}


def test_substitute_grafana_variables_replaces_known_and_refuses_unknown() -> None:
    """Known variables get concrete values; an unknown one is an error, not a silent pass."""
    assert (
        substitute_grafana_variables('rate(x{instance=~"$instance"}[$__rate_interval])')
        == 'rate(x{instance=~".*"}[1m])'
    )
    with pytest.raises(ValueError, match="unknown Grafana variable"):
        substitute_grafana_variables('x{job="$job"}')


def test_exposed_names_expands_declared_families() -> None:
    """A declared counter or histogram without samples still yields its series names."""
    text = "\n".join(
        [
            "# TYPE a_total counter",
            "# TYPE b_seconds histogram",
            "# TYPE c gauge",
            'c{x="1"} 2',
            "d_untyped 1",
        ]
    )
    assert {"a_total", "b_seconds_bucket", "b_seconds_sum", "b_seconds_count", "c", "d_untyped"} <= (
        exposed_names(text)
    )


def test_duration_seconds_reads_prometheus_durations_and_refuses_others() -> None:
    """`1h30m` is 5400 s, Go's `1h5m0s` too; a bare number or a unit Prometheus lacks is an error."""
    assert duration_seconds("15m") == 900
    assert duration_seconds("1h30m") == 5400
    assert duration_seconds("1h5m0s") == 3900
    for bad in ("", "15", "15 m", "1mo"):
        with pytest.raises(ValueError, match="not a Prometheus duration"):
            duration_seconds(bad)


def test_range_seconds_finds_the_windows_of_one_metric() -> None:
    """Only the named metric's ranges, with or without label matchers; a subquery is not a range."""
    expr = (
        'increase(a_total{x="1"}[15m]) > 0 and rate(a_total[5m])'
        " or rate(b_a_total[1h]) or max_over_time(c[1h:])"
    )
    assert range_seconds(expr, "a_total") == [900, 300]
    assert range_seconds(expr, "c") == []
