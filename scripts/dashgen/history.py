"""Metrics history: Prometheus' remote write into VictoriaMetrics, VictoriaMetrics itself, daily snapshots."""

from __future__ import annotations

from dashgen.common import REMOTE_WRITE_LAG_ALERT_SECONDS, links
from dashgen.links import HISTORY_UID
from dashgen.panels import Grid, dashboard, stat, timeseries

RI = "[$__rate_interval]"
# Seconds of samples Prometheus has but has not yet sent, per remote (PrometheusRemoteWriteBehind).
REMOTE_WRITE_LAG = (
    "max by (remote_name) (prometheus_remote_storage_highest_timestamp_in_seconds"
    " - ignoring (remote_name, url) group_right"
    " prometheus_remote_storage_queue_highest_sent_timestamp_seconds)"
)


def _remote_write(g: Grid) -> None:
    g.row("Remote write: Prometheus to VictoriaMetrics")
    g.add(
        timeseries(
            "Remote write lag",
            [(REMOTE_WRITE_LAG, "{{remote_name}}")],
            "s",
            description="Newest sample Prometheus has minus newest it sent. Past the dashed line for 15 "
            "minutes: PrometheusRemoteWriteBehind. Samples wait in the WAL (about 2 hours) while the "
            "receiver is away.",
            thresholds=[(None, "green"), (REMOTE_WRITE_LAG_ALERT_SECONDS, "red")],
        )
    )
    g.add(
        timeseries(
            "Samples sent, retried, failed",
            [
                (f"sum by (remote_name) (rate(prometheus_remote_storage_samples_total{RI}))",
                 "{{remote_name}} sent"),
                (f"sum by (remote_name) (rate(prometheus_remote_storage_samples_retried_total{RI}))",
                 "{{remote_name}} retried"),
                (f"sum by (remote_name) (rate(prometheus_remote_storage_samples_failed_total{RI}))",
                 "{{remote_name}} failed"),
            ],
            "ops",
            description="Failed samples are lost for VictoriaMetrics (PrometheusRemoteWriteFailing); retried "
            "ones were sent again after a 5xx or a network error.",
        )
    )
    g.add(
        timeseries(
            "Shards and pending samples",
            [
                ("sum by (remote_name) (prometheus_remote_storage_shards)", "{{remote_name}} shards"),
                ("sum by (remote_name) (prometheus_remote_storage_samples_pending)",
                 "{{remote_name}} pending"),
            ],
            "short",
            description="Parallel senders (1 to max_shards, 4) and samples buffered in them.",
        )
    )


def _victoriametrics(g: Grid) -> None:
    g.row("VictoriaMetrics")
    g.add(
        timeseries(
            "Rows ingested per second",
            [(f"sum by (type) (rate(vm_rows_inserted_total{RI}))", "{{type}}")],
            "ops",
            description="promremotewrite: from Prometheus; other types come from imports (backfills).",
        )
    )
    g.add(
        timeseries(
            "Active series (last hour)",
            [('sum(vm_cache_entries{type="storage/hour_metric_ids"})', "series")],
            "short",
        )
    )
    g.add(
        timeseries(
            "Disk: data and free space",
            [
                ("sum(vm_data_size_bytes)", "data"),
                ("min(vm_free_disk_space_bytes)", "free"),
            ],
            "bytes",
            description="Below -storage.minFreeDiskSpaceBytes of free space VictoriaMetrics stops accepting "
            "samples (remote write then fails).",
        )
    )
    g.add(
        timeseries(
            "Bytes per stored sample",
            [('sum(vm_data_size_bytes{type=~"storage/.*"}) / sum(vm_rows{type=~"storage/.*"})',
              "bytes/sample")],
            "bytes",
            description="Disk cost of history: this times the samples of a day (rows ingested per second x "
            "86,400) is the disk a day of history takes.",
        )
    )


def _snapshots(g: Grid) -> None:
    g.row("Daily snapshots")
    g.add(
        stat(
            "Days behind",
            [("max(metrics_snapshot_days_behind)", "days")],
            "short",
            description="Days due and without a complete snapshot (export and backup). Above 0 for an "
            "hour: MetricsSnapshotFailed.",
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
        ),
        width=6,
        height=5,
    )
    g.add(
        stat(
            "Newest complete day, age",
            [("time() - max(metrics_snapshot_newest_day_timestamp_seconds)", "age")],
            "s",
            description="Time since the start of the newest complete day: 1 to 2 days when up to date.",
            thresholds=[(None, "green"), (3 * 86400, "red")],
        ),
        width=6,
        height=5,
    )
    g.add(
        stat(
            "Last run",
            [("max(metrics_snapshot_last_run_duration_seconds)", "duration")],
            "s",
            description="The service's last run: every owed day's queries and files, then vmbackup.",
        ),
        width=6,
        height=5,
    )
    g.add(
        stat(
            "Backup size",
            [("max(metrics_snapshot_backup_bytes)", "vmbackup")],
            "bytes",
            description="The incremental vmbackup after the newest complete day.",
        ),
        width=6,
        height=5,
    )
    g.add(
        timeseries(
            "Days exported and failed steps (per day)",
            [
                ("sum by (result) (increase(metrics_snapshot_days_total[1d]))", "days {{result}}"),
                ("sum by (stage) (increase(metrics_snapshot_failures_total[1d]))", "failed {{stage}}"),
            ],
            "short",
            description="Counted by the service since its start (a restart resets the count, not the state: "
            "Days behind is read from the snapshot volume).",
        ),
        width=24,
    )


def build() -> dict:
    """The metrics history dashboard."""
    g = Grid()
    for section in (_remote_write, _victoriametrics, _snapshots):
        section(g)
    return dashboard(
        HISTORY_UID,
        "Metrics history",
        "Long-term history: Prometheus' remote write into VictoriaMetrics, VictoriaMetrics' ingestion and "
        "disk, and the daily snapshots.",
        g,
        [],
        links(),
    )
