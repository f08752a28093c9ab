"""A small client for Prometheus' HTTP query API: instant and range queries, every answer checked."""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx


class PrometheusError(Exception):
    """A query failed (unreachable, an error status, a malformed answer)."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Curve:
    labels: dict[str, str]
    points: list[tuple[float, float]]


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class Prometheus:
    """Queries one Prometheus through the shared client; the caller bounds the time of each call."""

    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client

    async def _get(self, path: str, params: dict[str, str]) -> list[dict[str, object]]:
        try:
            reply = await self.client.get(f"{self.base_url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{type(exc).__name__}") from None
        try:
            body = reply.json()
        except ValueError:
            raise PrometheusError(f"HTTP {reply.status_code}, not JSON") from None
        if reply.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise PrometheusError(f"HTTP {reply.status_code} {str(error)[:120]}".strip())
        result = body.get("data", {}).get("result")
        if not isinstance(result, list):
            raise PrometheusError("answer without a result vector")
        return result

    async def instant(self, query: str, at: float) -> list[Sample]:
        """The vector of an instant query at Unix time `at` (NaN and infinite values dropped)."""
        samples = []
        for item in await self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"}):
            value = item.get("value")
            number = _number(value[1]) if isinstance(value, list) and len(value) == 2 else None
            labels = item.get("metric")
            if number is not None and isinstance(labels, dict):
                samples.append(Sample({str(k): str(v) for k, v in labels.items()}, number))
        return samples

    async def range(self, query: str, start: float, end: float, step: float) -> list[Curve]:
        """The matrix of a range query (NaN and infinite points dropped)."""
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        curves = []
        for item in await self._get("/api/v1/query_range", params):
            labels, values = item.get("metric"), item.get("values")
            if not isinstance(labels, dict) or not isinstance(values, list):
                continue
            points = []
            for pair in values:
                if isinstance(pair, list) and len(pair) == 2:
                    t, v = _number(pair[0]), _number(pair[1])
                    if t is not None and v is not None:
                        points.append((t, v))
            curves.append(Curve({str(k): str(v) for k, v in labels.items()}, points))
        return curves
