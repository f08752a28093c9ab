"""The static PromQL helpers the monitoring tests rely on."""

from __future__ import annotations

import pytest

from tests.support.promql import exposed_names, metric_names, substitute_grafana_variables


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
