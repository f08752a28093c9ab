"""The day's tables and their CSV / JSON form, from hand-made hourly windows."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from metrics_snapshot import SCHEMA_VERSION
from metrics_snapshot.collect import Windows
from metrics_snapshot.export import number, to_csv, to_json
from metrics_snapshot.tables import COLUMNS, DayTables

ZONE = ZoneInfo("Asia/Shanghai")
H0 = 1748707200  # 2025-06-01 00:00 Shanghai
A, B = ("10.0.0.1:8000", "m", "v1"), ("10.0.0.2:8000", "m", "v2")


def _windows() -> Windows:
    ends = [H0 + 3600, H0 + 7200]
    w = Windows(3600, ends)
    w.values = {
        "requests": {(*A, "success"): {ends[0]: 3600.0, ends[1]: 7200.0},
                     (*A, "server_error"): {ends[0]: 400.0}, (*B, "success"): {ends[1]: 1000.0}},
        "errors": {(*A, "inference_failed"): {ends[0]: 400.0}, (*A, "bad_image"): {ends[0]: 0.0}},
        "latency": {(*A, "entailment", "0.5"): {ends[0]: 2000.0},
                    (*A, "entailment", "1.0"): {ends[0]: 4000.0},
                    (*A, "entailment", "+Inf"): {ends[0]: 4000.0}},
        "batch_items": {A: {ends[0]: 4000.0}}, "batches": {A: {ends[0]: 1000.0}},
        "queue_depth_mean": {A: {ends[0]: 2.0}, B: {ends[1]: 4.0}}, "queue_depth_max": {A: {ends[0]: 5.0}},
        "gpu_memory_mean": {(*A, "0"): {ends[0]: 8e9}}, "gpu_utilization_max": {(*A, "0"): {ends[0]: 0.9}},
    }  # fmt: skip
    return w


def test_requests_have_counts_rates_and_an_all_replicas_row_per_revision() -> None:
    """Counts per hour and result, qps = count / 3600, and instance "all" rows summing the replicas."""
    rows = DayTables(_windows(), ZONE).requests()
    first = [r for r in rows if r["hour_start"] == "2025-06-01T00:00:00+08:00"]
    assert [(r["instance"], r["result"], r["requests"], r["qps"]) for r in first] == [
        ("10.0.0.1:8000", "server_error", 400.0, 400 / 3600), ("10.0.0.1:8000", "success", 3600.0, 1.0),
        ("all", "server_error", 400.0, 400 / 3600), ("all", "success", 3600.0, 1.0),
    ]
    assert {(r["instance"], r["revision"]) for r in rows if r["hour_end"] == "2025-06-01T02:00:00+08:00"} == {
        ("10.0.0.1:8000", "v1"), ("10.0.0.2:8000", "v2"), ("all", "v1"), ("all", "v2")}


def test_latency_rows_carry_the_request_count_and_four_quantiles() -> None:
    """Half the requests under 0.5 s, all under 1 s: P50 0.5, P90 0.9, P95 0.95, P99 0.99."""
    (row, _all) = DayTables(_windows(), ZONE).latency()
    assert row["requests"] == 4000
    assert [row[c] for c in ("p50_seconds", "p90_seconds", "p95_seconds", "p99_seconds")] == pytest.approx(
        [0.5, 0.9, 0.95, 0.99])


def test_errors_are_per_finished_request_and_empty_types_are_left_out() -> None:
    """400 inference failures over 4,000 requests is 0.1 per request; a type with no error has no row."""
    rows = DayTables(_windows(), ZONE).errors()
    assert [(r["instance"], r["type"], r["errors"], r["errors_per_request"]) for r in rows] == [
        ("10.0.0.1:8000", "inference_failed", 400.0, 0.1), ("all", "inference_failed", 400.0, 0.1)]


def test_load_and_gpu_rows_hold_means_maxima_and_batch_size() -> None:
    """Mean batch size is items / passes; missing gauges are empty; the GPU row is per replica and card."""
    tables = DayTables(_windows(), ZONE)
    load = {(r["instance"], r["hour_end"][11:13]): r for r in tables.load()}
    assert load[("10.0.0.1:8000", "01")]["batch_size_mean"] == 4.0
    assert load[("10.0.0.1:8000", "01")]["queue_depth_max"] == 5.0
    assert load[("10.0.0.2:8000", "02")]["queue_depth_max"] is None
    (gpu,) = tables.gpu()
    assert (gpu["gpu"], gpu["memory_used_bytes_mean"], gpu["utilization_max"], gpu["utilization_mean"]) == (
        "0", 8e9, 0.9, None)


def test_csv_has_the_schema_columns_and_json_the_schema_version() -> None:
    """Every CSV starts with its COLUMNS header; the JSON carries schema_version and the same rows."""
    tables = DayTables(_windows(), ZONE).all()
    for name, rows in tables.items():
        parsed = list(csv.reader(io.StringIO(to_csv(name, rows).decode())))
        assert tuple(parsed[0]) == COLUMNS[name] and len(parsed) == len(rows) + 1
    doc = json.loads(to_json(date(2025, 6, 1), {"timezone": "Asia/Shanghai"}, tables))
    assert doc["schema_version"] == SCHEMA_VERSION and doc["day"] == "2025-06-01"
    assert doc["tables"]["requests"][1]["requests"] == 3600 and doc["columns"]["gpu"] == list(COLUMNS["gpu"])


def test_numbers_are_rounded_to_six_decimals_and_nan_is_empty() -> None:
    """Float noise disappears, integral values print without a decimal point, NaN and inf become empty."""
    assert number(0.1 + 0.2) == 0.3 and number(3600.0000000001) == 3600 and number(float("nan")) is None
    assert number("v1") == "v1" and number(None) is None
