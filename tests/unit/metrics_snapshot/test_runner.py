"""Runs of the snapshotter: catch-up, failures, backups, retention, and what the alert reads afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime

import pytest
from metrics_snapshot.tables import DayTables

from tests.unit.metrics_snapshot.conftest import ZONE, Rig

FILES = {"requests.csv", "latency.csv", "stages.csv", "errors.csv", "load.csv", "gpu.csv", "snapshot.json",
         "report.html", "manifest.json"}


def _at(rig: Rig, text: str) -> None:
    rig.clock.now = datetime.fromisoformat(text).replace(tzinfo=ZONE)


def test_a_fresh_install_writes_nothing_and_is_not_behind(rig_factory: Callable[..., Rig]) -> None:
    """Installed this morning: no day is due yet, nothing is queried, days_behind is 0 (no alert)."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-01T18:00")
    result = rig.snapshotter.run_pending()
    assert result.ok and result.complete == []
    assert rig.api.queries == [] and rig.backups == []
    assert rig.metric("metrics_snapshot_days_behind") == 0
    assert rig.metric("metrics_snapshot_last_success_timestamp_seconds") is None


def test_missed_days_are_caught_up_with_one_backup(rig_factory: Callable[..., Rig]) -> None:
    """Three days due: each gets its folder, one backup follows, all three are complete."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-04T03:05")
    assert rig.metric("metrics_snapshot_days_behind") == 3
    result = rig.snapshotter.run_pending()
    assert result.complete == [date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)]
    assert len(rig.backups) == 1
    for day in result.complete:
        assert {p.name for p in rig.store.day_dir(day).iterdir()} == FILES
        manifest = rig.store.manifest(day)
        assert manifest["complete"] is True and manifest["backup"]["bytes"] == 12345
    assert rig.metric("metrics_snapshot_days_behind") == 0
    assert rig.metric("metrics_snapshot_days_total", result="complete") == 3
    newest = datetime(2025, 6, 3, tzinfo=ZONE).timestamp()
    assert rig.metric("metrics_snapshot_newest_day_timestamp_seconds") == newest
    assert rig.metric("metrics_snapshot_backup_bytes") == 12345


def test_a_failing_query_api_leaves_the_day_owed_across_a_restart(rig_factory: Callable[..., Rig]) -> None:
    """The query API down: the day fails, nothing is published, and a restarted service still reports it."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-02T03:05")
    rig.api.fail = lambda expr, start, end: True
    result = rig.snapshotter.run_pending()
    assert list(result.failed) == [date(2025, 6, 1)] and "fake outage" in result.failed[date(2025, 6, 1)]
    assert rig.store.days() == [] and rig.backups == []
    assert rig.metric("metrics_snapshot_failures_total", stage="query") == 1
    assert rig.metric("metrics_snapshot_days_behind") == 1
    restarted = rig.restart()
    assert restarted.metric("metrics_snapshot_days_behind") == 1


def test_a_failed_backup_publishes_the_files_but_keeps_the_day_owed(rig_factory: Callable[..., Rig]) -> None:
    """The report is there to read, the manifest says incomplete, and the next run redoes the day."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-02T03:05")
    rig.backup_fails = True
    result = rig.snapshotter.run_pending()
    assert "backup" in result.failed[date(2025, 6, 1)]
    assert (rig.store.day_dir(date(2025, 6, 1)) / "report.html").exists()
    assert rig.store.manifest(date(2025, 6, 1))["complete"] is False
    assert rig.metric("metrics_snapshot_failures_total", stage="backup") == 1
    assert rig.metric("metrics_snapshot_days_behind") == 1
    rig.backup_fails = False
    assert rig.snapshotter.run_pending().complete == [date(2025, 6, 1)]
    assert rig.metric("metrics_snapshot_days_behind") == 0


def test_a_failed_day_stays_owed_until_a_later_day_succeeds(rig_factory: Callable[..., Rig]) -> None:
    """The 1st keeps failing: owed on the 2nd and still on the 3rd until the 2nd succeeds, then no longer."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-02T03:05")
    first_day_end = datetime(2025, 6, 2, tzinfo=ZONE).timestamp()
    rig.api.fail = lambda expr, start, end: end == first_day_end
    assert not rig.snapshotter.run_pending().ok
    _at(rig, "2025-06-02T23:00")
    assert rig.metric("metrics_snapshot_days_behind") == 1  # still firing the next evening
    _at(rig, "2025-06-03T03:05")
    assert rig.metric("metrics_snapshot_days_behind") == 2
    result = rig.snapshotter.run_pending()
    assert result.complete == [date(2025, 6, 2)] and list(result.failed) == [date(2025, 6, 1)]
    assert rig.metric("metrics_snapshot_days_behind") == 0


def test_a_rerun_of_a_day_replaces_it_with_the_same_tables(rig_factory: Callable[..., Rig]) -> None:
    """Running the same day twice gives byte-identical CSV files (only generated_at differs in the JSON)."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-02T03:05")
    day = date(2025, 6, 1)
    rig.snapshotter.run([day])
    first = {p.name: p.read_bytes() for p in rig.store.day_dir(day).glob("*.csv")}
    _at(rig, "2025-06-02T09:00")
    rig.snapshotter.run([day])
    assert {p.name: p.read_bytes() for p in rig.store.day_dir(day).glob("*.csv")} == first
    doc = json.loads((rig.store.day_dir(day) / "snapshot.json").read_text())
    assert doc["generated_at"].startswith("2025-06-02T09:00")
    assert [p.name for p in rig.store.root.iterdir() if p.name.startswith(".2025")] == []


def test_days_older_than_keep_days_are_deleted(rig_factory: Callable[..., Rig]) -> None:
    """With SNAPSHOT_KEEP_DAYS=2, a run on the 5th keeps only the 3rd and 4th."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-03T03:05", keep_days=2)
    rig.snapshotter.run_pending()
    assert rig.store.days() == [date(2025, 6, 1), date(2025, 6, 2)]
    _at(rig, "2025-06-05T03:05")
    rig.snapshotter.run_pending()
    assert rig.store.days() == [date(2025, 6, 3), date(2025, 6, 4)]
    assert rig.metric("metrics_snapshot_retained_days") == 2


def test_a_day_without_any_data_is_exported_empty(rig_factory: Callable[..., Rig]) -> None:
    """No series at all (VictoriaMetrics empty): headers-only CSVs, a report saying so, the day complete."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-02T03:05")
    rig.api.series = {}
    assert rig.snapshotter.run_pending().complete == [date(2025, 6, 1)]
    folder = rig.store.day_dir(date(2025, 6, 1))
    header = "hour_start,hour_end,instance,model,revision,result,requests,qps"
    assert (folder / "requests.csv").read_text().splitlines() == [header]
    report = (folder / "report.html").read_text()
    assert "No data for this day." in report and report.count('class="chart empty"') == 8


def test_an_unexpected_error_fails_only_that_day(
    rig_factory: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash while building one day's tables is counted as an export failure; the service carries on."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-03T03:05")

    calls: list[object] = []

    def crash_on_the_first(windows: object, zone: object) -> object:
        calls.append(windows)
        if len(calls) == 1:
            raise KeyError("le")
        return DayTables(windows, zone)  # type: ignore[arg-type]

    monkeypatch.setattr("metrics_snapshot.runner.DayTables", crash_on_the_first)
    result = rig.snapshotter.run_pending()
    assert "export: KeyError" in result.failed[date(2025, 6, 1)] and result.complete == [date(2025, 6, 2)]
    assert rig.metric("metrics_snapshot_failures_total", stage="export") == 1
