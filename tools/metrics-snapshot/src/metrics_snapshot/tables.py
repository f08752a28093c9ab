"""The tables of a daily snapshot: one row per hour, replica, model and revision (plus rows for all
replicas of a revision together, instance "all"), as written to CSV and JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from metrics_snapshot.collect import Key, Windows
from metrics_snapshot.histogram import merge, parse_le, quantile, total

QUANTILES = (0.5, 0.9, 0.95, 0.99)
ALL = "all"
_HOUR = ("hour_start", "hour_end", "instance", "model", "revision")
_Q = tuple(f"p{round(q * 100)}_seconds" for q in QUANTILES)

# Columns of every table, in order (schema version 1; README.md describes each).
COLUMNS: dict[str, tuple[str, ...]] = {
    "requests": (*_HOUR, "result", "requests", "qps"),
    "latency": (*_HOUR, "endpoint", "requests", *_Q),
    "stages": (*_HOUR, "stage", "count", *_Q),
    "errors": (*_HOUR, "type", "errors", "errors_per_request"),
    "load": (*_HOUR, "queue_depth_mean", "queue_depth_max", "batches", "batch_size_mean"),
    "gpu": (*_HOUR, "gpu", "memory_used_bytes_mean", "memory_used_bytes_max", "utilization_mean",
            "utilization_max"),
}  # fmt: skip

Row = dict[str, Any]
Points = dict[int, float]
Histograms = dict[Key, dict[int, dict[float, float]]]


def regroup(
    values: dict[Key, Points], keyfn: Callable[[Key], Any], combine: Callable[[list[float]], float] = sum
) -> dict[Any, Points]:
    """Series combined per window under a new key (`keyfn` of their labels): summed, or `combine`d."""
    grouped: dict[Any, dict[int, list[float]]] = {}
    for key, points in values.items():
        for t, value in points.items():
            grouped.setdefault(keyfn(key), {}).setdefault(t, []).append(value)
    return {key: {t: combine(vs) for t, vs in points.items()} for key, points in grouped.items()}


def with_all(values: dict[Key, Points], combine: Callable[[list[float]], float] = sum) -> dict[Key, Points]:
    """The per-replica values plus, per model and revision, all replicas combined (instance "all")."""
    return {**values, **regroup(values, lambda key: (ALL, *key[1:]), combine)}


def histograms(values: dict[Key, Points]) -> Histograms:
    """Bucket series (last label `le`) regrouped as {key without le: {window end: {bound: count}}}."""
    out: Histograms = {}
    for key, points in values.items():
        bound = parse_le(key[-1])
        for t, count in points.items():
            out.setdefault(key[:-1], {}).setdefault(t, {})[bound] = count
    return out


def regroup_histograms(values: dict[Key, Points], keyfn: Callable[[Key], Any]) -> dict[Any, dict[int, dict]]:
    """Bucket series merged per window under a new key (`keyfn` of their labels without `le`)."""
    out: dict[Any, dict[int, dict[float, float]]] = {}
    for key, points in histograms(values).items():
        slot = out.setdefault(keyfn(key), {})
        for t, buckets in points.items():
            slot[t] = merge([slot.get(t, {}), buckets])
    return out


def quantiles(buckets: dict[float, float]) -> list[float | None]:
    """P50, P90, P95, P99 of one histogram (None each when it is empty)."""
    return [quantile(q, buckets) for q in QUANTILES]


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean of a non-empty iterable."""
    values = list(values)
    return sum(values) / len(values)


class DayTables:
    """Builds every table of one day from hourly windows."""

    def __init__(self, windows: Windows, zone: ZoneInfo) -> None:
        self.w = windows
        self.zone = zone

    def _hour(self, end: int) -> dict[str, str]:
        def local(t: int) -> str:
            return datetime.fromtimestamp(t, UTC).astimezone(self.zone).isoformat()

        return {"hour_start": local(end - self.w.length_s), "hour_end": local(end)}

    def _base(self, end: int, key: Key) -> Row:
        return {**self._hour(end), "instance": key[0], "model": key[1], "revision": key[2]}

    @staticmethod
    def _order(key: Key) -> tuple[bool, Key]:
        return (key[0] == ALL, key)  # replicas first, then the "all" rows

    def _rows(self, values: dict[Key, Points], build: Callable[[int, Key, float], Row | None]) -> list[Row]:
        rows = []
        for end in self.w.ends:
            for key in sorted(values, key=self._order):
                if end in values[key] and (row := build(end, key, values[key][end])) is not None:
                    rows.append(row)
        return rows

    def requests(self) -> list[Row]:
        """Requests and mean requests per second by result."""
        hour = self.w.length_s
        return self._rows(
            with_all(self.w.family("requests")),
            lambda end, key, n: {**self._base(end, key), "result": key[3], "requests": n, "qps": n / hour},
        )

    def _histogram_rows(self, family: str, label: str, count_column: str) -> list[Row]:
        hist = histograms(with_all(self.w.family(family)))
        rows = []
        for end in self.w.ends:
            for key in sorted(hist, key=self._order):
                buckets = hist[key].get(end)
                if buckets is None:
                    continue
                row = {**self._base(end, key), label: key[3], count_column: total(buckets)}
                rows.append(row | dict(zip(_Q, quantiles(buckets), strict=True)))
        return rows

    def latency(self) -> list[Row]:
        """Requests and latency percentiles by endpoint."""
        return self._histogram_rows("latency", "endpoint", "requests")

    def stages(self) -> list[Row]:
        """Observations and percentiles of each processing stage."""
        return self._histogram_rows("stages", "stage", "count")

    def errors(self) -> list[Row]:
        """Errors by type (types without an error in the hour left out), per finished request."""
        requests: dict[Key, Points] = {}  # all results together, per instance, model and revision
        for key, points in with_all(self.w.family("requests")).items():
            served = requests.setdefault(key[:3], {})
            for t, n in points.items():
                served[t] = served.get(t, 0.0) + n

        def row(end: int, key: Key, n: float) -> Row | None:
            if n <= 0:
                return None
            served = requests.get(key[:3], {}).get(end, 0.0)
            ratio = n / served if served > 0 else None
            return {**self._base(end, key), "type": key[3], "errors": n, "errors_per_request": ratio}

        return self._rows(with_all(self.w.family("errors")), row)

    def load(self) -> list[Row]:
        """Queue depth (mean, max) and forward passes with their mean batch size."""
        columns = {
            "queue_depth_mean": with_all(self.w.family("queue_depth_mean"), mean),
            "queue_depth_max": with_all(self.w.family("queue_depth_max"), max),
            "batches": with_all(self.w.family("batches")),
            "batch_items": with_all(self.w.family("batch_items")),
        }
        keys = sorted({k for values in columns.values() for k in values}, key=self._order)
        rows = []
        for end in self.w.ends:
            for key in keys:
                got = {name: values.get(key, {}).get(end) for name, values in columns.items()}
                if all(v is None for v in got.values()):
                    continue
                items, batches = got.pop("batch_items"), got["batches"]
                got["batch_size_mean"] = items / batches if items is not None and batches else None
                rows.append({**self._base(end, key), **got})
        return rows

    def gpu(self) -> list[Row]:
        """GPU memory in use and utilisation (mean, max) per replica and GPU."""
        columns = {
            "memory_used_bytes_mean": self.w.family("gpu_memory_mean"),
            "memory_used_bytes_max": self.w.family("gpu_memory_max"),
            "utilization_mean": self.w.family("gpu_utilization_mean"),
            "utilization_max": self.w.family("gpu_utilization_max"),
        }
        keys = sorted({k for values in columns.values() for k in values})
        rows = []
        for end in self.w.ends:
            for key in keys:
                got = {name: values.get(key, {}).get(end) for name, values in columns.items()}
                if any(v is not None for v in got.values()):
                    rows.append({**self._base(end, key), "gpu": key[3], **got})
        return rows

    def all(self) -> dict[str, list[Row]]:
        """Every table by name, in COLUMNS order."""
        return {name: getattr(self, name)() for name in COLUMNS}
