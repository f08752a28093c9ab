"""The query API client: results parsed, every failure a QueryError that says why."""

from __future__ import annotations

import httpx
import pytest
from metrics_snapshot.promapi import PromClient, QueryError


def _client(handler: httpx.MockTransport) -> PromClient:
    return PromClient("http://vm.test/", transport=handler)


def test_a_matrix_is_parsed_and_nan_points_are_dropped() -> None:
    """Labels and (time, value) points come back as floats; NaN points are left out; the form is POSTed."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        result = [{"metric": {"instance": "a"}, "values": [[3600, "1.5"], [7200, "NaN"]]}]
        data = {"resultType": "matrix", "result": result}
        return httpx.Response(200, json={"status": "success", "data": data})

    (series,) = _client(httpx.MockTransport(answer)).query_range("up", 3600, 7200, 3600)
    assert series.labels == {"instance": "a"} and series.points == [(3600.0, 1.5)]
    assert seen[0].method == "POST" and seen[0].url.path == "/api/v1/query_range"
    assert b"step=3600" in seen[0].content


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (httpx.Response(400, json={"status": "error", "error": "parse error at char 4"}), "parse error"),
        (httpx.Response(503, text="overloaded"), "503: overloaded"),
        (httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": []}}),
         "expected a matrix"),
    ],
)
def test_refusals_become_query_errors_naming_the_reason(reply: httpx.Response, reason: str) -> None:
    """A 4xx, a 5xx or an unexpected result type raises QueryError with the server's reason and the query."""
    with pytest.raises(QueryError, match=reason) as caught:
        _client(httpx.MockTransport(lambda request: reply)).query_range("up", 0, 60, 60)
    assert caught.value.expr == "up"


def test_an_unreachable_server_is_a_query_error() -> None:
    """A connection failure is reported as the server being unreachable, not as a crash."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(QueryError, match="unreachable"):
        _client(httpx.MockTransport(refuse)).query_range("up", 0, 60, 60)


def test_a_backwards_range_is_refused_before_any_request() -> None:
    """end before start or a zero step is a ValueError."""
    with pytest.raises(ValueError, match="bad range"):
        _client(httpx.MockTransport(lambda r: httpx.Response(500))).query_range("up", 60, 0, 60)
