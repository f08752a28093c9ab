"""A day of synthetic data backfilled into a real VictoriaMetrics, exported by the real command: the CSV and
JSON files hold the values the data was built with."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta

import pytest
from metrics_snapshot import SCHEMA_VERSION

from tests.integration.metrics_snapshot.conftest import DAY, REPLICAS, ZONE, Snapshot
from tests.support.vmdata import HOUR_S, LATENCY_QUANTILES, close

pytestmark = pytest.mark.integration

HOURS = [(datetime.combine(DAY, datetime.min.time(), tzinfo=ZONE) + timedelta(hours=h)).isoformat()
         for h in range(24)]


def _rows(snapshot: Snapshot, table: str) -> list[dict[str, str]]:
    with (snapshot.folder / f"{table}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _expected_success(instance: str, hour: int) -> float:
    (replica,) = [r for r in REPLICAS if r.instance == instance]
    return replica.success_rate(hour) * HOUR_S


def test_requests_per_hour_replica_and_revision_are_the_backfilled_rates(snapshot: Snapshot) -> None:
    """Every hour of every replica: requests = rate x 3600 and qps = rate, under the revision it served."""
    rows = _rows(snapshot, "requests")
    assert sorted({r["hour_start"] for r in rows}) == HOURS
    seen = 0
    for row in rows:
        if row["instance"] == "all":
            continue
        hour = HOURS.index(row["hour_start"])
        (replica,) = [r for r in REPLICAS if r.instance == row["instance"]]
        assert row["revision"] == replica.revision_of_hour(hour), row
        rate = replica.success_rate(hour) if row["result"] == "success" else replica.server_error_rate
        assert close(float(row["requests"]), rate * HOUR_S) and close(float(row["qps"]), rate), row
        seen += 1
    assert seen == 3 * 24 * 2


def test_the_all_replicas_rows_sum_each_revision(snapshot: Snapshot) -> None:
    """At 01:00 v1 is 10.0.0.1 (1.25/s) and 10.0.0.2 (1/s); at 13:00 v2 is 10.0.0.2 and 10.0.0.3 (1.5/s)."""
    rows = {(r["hour_start"], r["revision"], r["result"]): r for r in _rows(snapshot, "requests")
            if r["instance"] == "all"}
    assert close(float(rows[(HOURS[1], "v1", "success")]["requests"]), 2.25 * HOUR_S)
    assert close(float(rows[(HOURS[13], "v2", "success")]["requests"]), 1.5 * HOUR_S)
    assert (HOURS[13], "v1", "success") in rows and (HOURS[1], "v2", "success") in rows


def test_latency_percentiles_are_the_shapes_quantiles_in_every_row(snapshot: Snapshot) -> None:
    """P50 0.375, P90 0.85, P95 1.2, P99 1.84 s for every replica and hour; requests count all results."""
    rows = _rows(snapshot, "latency")
    assert len(rows) == 24 * 3 + 24 * 2  # a row per replica-hour, plus v1 and v2 "all" rows each hour
    for row in rows:
        for column, value in LATENCY_QUANTILES.items():
            assert close(float(row[column]), value), (column, row)
    first = next(r for r in rows if r["instance"] == "10.0.0.1:8000" and r["hour_start"] == HOURS[0])
    assert close(float(first["requests"]), (1.0 + 0.125) * HOUR_S)


def test_errors_stages_load_and_gpu_rows_hold_the_backfilled_values(snapshot: Snapshot) -> None:
    """Errors per request, stage percentiles, queue depth mean/max, batch size and GPU gauges as built."""
    errors = next(r for r in _rows(snapshot, "errors") if r["instance"] == "10.0.0.3:8000")
    assert errors["type"] == "inference_failed" and close(float(errors["errors"]), 450)
    assert close(float(errors["errors_per_request"]), 0.125 / 0.625)
    stage = next(r for r in _rows(snapshot, "stages") if r["instance"] == "10.0.0.3:8000")
    assert (stage["stage"], float(stage["p50_seconds"]), float(stage["p95_seconds"])) == (
        "inference", 0.05, 0.095)
    assert close(float(stage["count"]), 0.625 * HOUR_S / 4)
    load = next(r for r in _rows(snapshot, "load") if r["instance"] == "10.0.0.3:8000")
    queue = (float(load["queue_depth_mean"]), float(load["queue_depth_max"]), float(load["batch_size_mean"]))
    assert queue == (3.0, 4.0, 4.0)
    gpu = _rows(snapshot, "gpu")
    assert len(gpu) == 3 * 24
    assert {(r["memory_used_bytes_mean"], r["utilization_max"]) for r in gpu} == {("8000000000", "0.5")}


def test_json_has_the_schema_version_and_the_csv_rows(snapshot: Snapshot) -> None:
    """snapshot.json carries schema_version, the day, the zone, and as many rows per table as the CSV."""
    doc = json.loads((snapshot.folder / "snapshot.json").read_text(encoding="utf-8"))
    assert (doc["schema_version"], doc["day"]) == (SCHEMA_VERSION, DAY.isoformat())
    assert doc["timezone"] == "Asia/Shanghai" and doc["start"] == HOURS[0]
    for table, rows in doc["tables"].items():
        assert len(rows) == len(_rows(snapshot, table)), table
    manifest = json.loads((snapshot.folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True and manifest["backup"]["bytes"] > 0
    assert set(manifest["files"]) == {f"{t}.csv" for t in doc["tables"]} | {"snapshot.json", "report.html"}
