"""A small client of the Prometheus HTTP query API, as VictoriaMetrics and Prometheus both serve it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx


class QueryError(Exception):
    """A query the server refused or could not answer (the message says which and why)."""

    def __init__(self, expr: str, reason: str) -> None:
        super().__init__(f"{reason} (query: {expr})")
        self.expr = expr
        self.reason = reason

    def __repr__(self) -> str:
        return f"QueryError({self.reason!r})"


@dataclass(frozen=True)
class Series:
    """One result series: its labels and (unix seconds, value) points, NaN points left out."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PromClient:
    """Runs range queries against `base_url` (no trailing /api/v1)."""

    def __init__(
        self, base_url: str, *, timeout: float = 120.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> PromClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """The matrix of `expr` evaluated at start, start+step, ... end (unix seconds)."""
        if step <= 0 or end < start:
            raise ValueError(f"bad range: start={start} end={end} step={step}")
        form = {"query": expr, "start": _num(start), "end": _num(end), "step": _num(step)}
        try:
            reply = self._http.post("/api/v1/query_range", data=form)
        except httpx.HTTPError as exc:
            raise QueryError(expr, f"{self.base_url} unreachable: {exc.__class__.__name__}: {exc}") from exc
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.status_code != 200 or body.get("status") != "success":
            error = body.get("error") or reply.text[:300]
            raise QueryError(expr, f"{self.base_url} answered {reply.status_code}: {error}")
        data = body.get("data", {})
        if data.get("resultType") != "matrix":
            raise QueryError(expr, f"expected a matrix, got {data.get('resultType')!r}")
        out = []
        for item in data.get("result", []):
            points = [(float(t), float(v)) for t, v in item.get("values", [])]
            out.append(Series(dict(item.get("metric", {})), [(t, v) for t, v in points if not math.isnan(v)]))
        return out


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
