"""One run: export each day asked for, back up once, mark the days complete, delete old days."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import httpx

from metrics_snapshot import __version__
from metrics_snapshot.backup import BackupError, BackupResult
from metrics_snapshot.collect import collect
from metrics_snapshot.export import to_csv, to_json
from metrics_snapshot.metrics import SnapshotMetrics
from metrics_snapshot.promapi import PromClient, QueryError
from metrics_snapshot.report import DayReport
from metrics_snapshot.schedule import Schedule
from metrics_snapshot.store import SnapshotStore
from metrics_snapshot.tables import DayTables

log = logging.getLogger(__name__)
HOUR_S = 3600


@dataclass
class RunResult:
    """Days completed and days failed (with why) in one run."""

    complete: list[date] = field(default_factory=list)
    failed: dict[date, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no day failed."""
        return not self.failed


class Snapshotter:
    """Exports days from the query API into the store; `backup` (None: off) runs once per run."""

    def __init__(
        self,
        client: PromClient,
        store: SnapshotStore,
        schedule: Schedule,
        *,
        rule_interval_s: float,
        matchers: str = "",
        backup: Callable[[], BackupResult] | None = None,
        metrics: SnapshotMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.store = store
        self.schedule = schedule
        self.rule_interval_s = rule_interval_s
        self.matchers = matchers
        self.backup = backup
        self.metrics = metrics
        self.clock = clock

    def export(self, day: date) -> None:
        """Query one local day hour by hour and publish its CSV, JSON and HTML files (not yet complete)."""
        start, end = self.schedule.day_bounds(day)
        windows = collect(self.client, start, end, HOUR_S, self.rule_interval_s, self.matchers)
        zone = self.schedule.zone
        meta = {
            "timezone": str(zone),
            "start": start.astimezone(zone).isoformat(),
            "end": end.astimezone(zone).isoformat(),
            "source": self.client.base_url,
            "selector": self.matchers,
            "generated_at": self.clock().astimezone(zone).isoformat(timespec="seconds"),
            "generator": f"metrics-snapshot {__version__}",
        }
        tables = DayTables(windows, zone).all()
        files = {f"{name}.csv": to_csv(name, rows) for name, rows in tables.items()}
        files["snapshot.json"] = to_json(day, meta, tables)
        files["report.html"] = DayReport(day, windows, zone, meta).render().encode()
        self.store.write_day(day, files, meta)
        log.info("day exported", extra={"day": day.isoformat(), "rows": sum(len(r) for r in tables.values())})

    def _fail(self, stage: str) -> None:
        if self.metrics is not None:
            self.metrics.failures.labels(stage).inc()

    def run(self, days: list[date]) -> RunResult:
        """Export `days` (replacing what is there), then back up and mark the exported days complete."""
        started = time.monotonic()
        result = RunResult()
        exported = []
        for day in days:
            try:
                self.export(day)
                exported.append(day)
            except (QueryError, httpx.HTTPError) as exc:
                self._fail("query")
                result.failed[day] = f"query: {exc}"
            except OSError as exc:
                self._fail("write")
                result.failed[day] = f"write: {exc}"
            except Exception as exc:  # a bug or data we did not foresee: that day fails, the service goes on
                log.exception("day export crashed", extra={"day": day.isoformat()})
                self._fail("export")
                result.failed[day] = f"export: {exc.__class__.__name__}: {exc}"
        backup = None
        if exported and self.backup is not None:
            try:
                backup = self.backup().as_dict()
            except BackupError as exc:
                self._fail("backup")
                for day in exported:
                    result.failed[day] = f"backup: {exc}"
                exported = []
        for day in exported:
            try:
                self.store.mark_complete(day, backup, self.clock())
                result.complete.append(day)
            except OSError as exc:
                self._fail("write")
                result.failed[day] = f"write: {exc}"
        for day, why in sorted(result.failed.items()):
            log.error("day failed", extra={"day": day.isoformat(), "error": why})
        if self.metrics is not None:
            self.metrics.days.labels("complete").inc(len(result.complete))
            self.metrics.days.labels("failed").inc(len(result.failed))
            self.metrics.last_run_duration.set(time.monotonic() - started)
            self.metrics.last_run.set(time.time())
        return result

    def pending(self) -> list[date]:
        """The days due and owed now (see schedule.Schedule.pending)."""
        now = self.clock()
        return self.schedule.pending(now, self.store.installed_at(now), self.store.newest_complete())

    def run_pending(self) -> RunResult:
        """Catch up: every day due and owed, then delete day folders past SNAPSHOT_KEEP_DAYS."""
        days = self.pending()
        result = self.run(days) if days else RunResult()
        removed = self.store.prune(self.schedule.oldest_kept(self.clock()))
        if removed:
            log.info("old days deleted", extra={"days": [d.isoformat() for d in removed]})
        return result
