"""metrics-snapshot: daily exports of the OFA-VE metrics, their backup and restore, and comparisons.

    metrics-snapshot serve                      the service: catch up, then one day at SNAPSHOT_AT
    metrics-snapshot run [--day D ...]          once: the days due (or the days given, redone); 1 if one fails
    metrics-snapshot compare --a SIDE --b SIDE  before/after report (Markdown and/or HTML)
    metrics-snapshot restore                    vmrestore the backup into VictoriaMetrics' data (stopped)
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from metrics_snapshot import __version__
from metrics_snapshot.backup import BackupError, BackupResult, run_vmbackup, run_vmrestore, vm_is_up
from metrics_snapshot.collect import collect
from metrics_snapshot.compare import Comparison, compare_metrics, parse_side, side_metrics
from metrics_snapshot.metrics import SnapshotMetrics
from metrics_snapshot.promapi import PromClient, QueryError
from metrics_snapshot.runner import Snapshotter
from metrics_snapshot.schedule import Schedule
from metrics_snapshot.service import make_http_server, run_forever
from metrics_snapshot.settings import Settings
from metrics_snapshot.store import SnapshotStore

log = logging.getLogger("metrics_snapshot")
_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The message followed by its `extra` fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{self.formatTime(record)} {record.levelname.lower()} {record.getMessage()} {extra}".rstrip()


def _setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _schedule(settings: Settings) -> Schedule:
    return Schedule(settings.zone, settings.at_time, settings.keep_days)


def _snapshotter(
    settings: Settings, client: PromClient, metrics: SnapshotMetrics | None = None
) -> Snapshotter:
    def backup() -> BackupResult:
        return run_vmbackup(settings.vmbackup, settings.url, settings.vm_data_path,
                            settings.backup_destination, settings.backup_timeout_s)

    return Snapshotter(
        client, SnapshotStore(settings.dir), _schedule(settings), rule_interval_s=settings.rule_interval_s,
        matchers=settings.selector, backup=backup if settings.backup else None, metrics=metrics,
    )


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    """The long-running service."""
    registry = CollectorRegistry()
    schedule = _schedule(settings)
    store = SnapshotStore(settings.dir)
    store.installed_at(datetime.now(UTC))  # the install day: no day before it is owed
    metrics = SnapshotMetrics(registry, store, schedule)
    host, _, port = settings.listen.rpartition(":")
    server = make_http_server(host, int(port), registry)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("serving", extra={
        "listen": settings.listen, "at": settings.at, "timezone": settings.timezone, "source": settings.url,
        "dir": str(settings.dir), "keep_days": settings.keep_days,
    })
    with PromClient(settings.url, timeout=settings.query_timeout_s) as client:
        run_forever(_snapshotter(settings, client, metrics), stop, settings.retry_interval_s)
    server.shutdown()
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """One run; exit status 1 when any day failed."""
    with PromClient(settings.url, timeout=settings.query_timeout_s) as client:
        snapshotter = _snapshotter(settings, client)
        if args.day:
            result = snapshotter.run(sorted(set(args.day)))
        else:
            result = snapshotter.run_pending()
    for day in result.complete:
        log.info("day complete", extra={"day": day.isoformat(), "dir": str(settings.dir / day.isoformat())})
    if not result.complete and not result.failed:
        log.info("nothing due")
    return 0 if result.ok else 1


def cmd_compare(settings: Settings, args: argparse.Namespace) -> int:
    """Before/after report; exit status 2 with --fail-on-regression when a metric regressed."""
    zone = settings.zone
    now = datetime.now(zone)
    end = datetime.combine(now.date(), datetime.min.time(), tzinfo=zone)
    start = end - timedelta(days=args.days)
    try:
        a = parse_side(args.a, start, end, zone)
        b = parse_side(args.b, start, end, zone)
    except ValueError as exc:
        log.error("bad side", extra={"error": str(exc)})
        return 64
    window_s = int(args.window_minutes * 60)
    with PromClient(settings.url, timeout=settings.query_timeout_s) as client:
        sides = [side_metrics(collect(client, side.start, side.end, window_s, settings.rule_interval_s,
                                      side.matchers(settings.selector))) for side in (a, b)]
    for name, side, metrics in (("A", args.a, sides[0]), ("B", args.b, sides[1])):
        if not metrics["requests per second"].windows:
            log.error("no requests found for one side: check its model, revision and range",
                      extra={"side": name, "spec": side, "source": settings.url})
            return 1
    rows = compare_metrics(sides[0], sides[1], alpha=args.alpha, min_effect=args.min_effect)
    result = Comparison(a, b, window_s, args.alpha, args.min_effect, zone, rows, sides[0], sides[1])
    if args.markdown:
        Path(args.markdown).write_text(result.markdown(), encoding="utf-8")
    if args.html:
        Path(args.html).write_text(result.html(), encoding="utf-8")
    if not args.markdown and not args.html:
        sys.stdout.write(result.markdown())
    return 2 if args.fail_on_regression and result.regressions() else 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """vmrestore the backup into SNAPSHOT_VM_DATA_PATH; refuses while VictoriaMetrics answers."""
    if vm_is_up(settings.url):
        log.error("VictoriaMetrics is running: stop it first (docker compose stop victoriametrics)",
                  extra={"url": settings.url})
        return 1
    source = args.src or settings.backup_destination
    run_vmrestore(settings.vmrestore, source, settings.vm_data_path, settings.backup_timeout_s)
    log.info("restored", extra={"source": source, "storage_data_path": str(settings.vm_data_path)})
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="metrics-snapshot", description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run as a service: catch up, then export each day at SNAPSHOT_AT")
    run = sub.add_parser("run", help="export the days due now, or the days given, once")
    run.add_argument("--day", type=_day, action="append", help="a local day to redo, YYYY-MM-DD (repeatable)")
    cmp = sub.add_parser("compare", help="before/after report of two revisions or two time ranges")
    cmp.add_argument("--a", required=True, help="side A, e.g. revision=v1.0 or from=2025-06-01,to=2025-06-08")
    cmp.add_argument("--b", required=True, help="side B, same form")
    cmp.add_argument("--days", type=int, default=7, help="range of a side without from/to: the last N days")
    cmp.add_argument("--window-minutes", type=float, default=60, help="window length (default 60)")
    cmp.add_argument("--alpha", type=float, default=0.01, help="significance level (default 0.01)")
    cmp.add_argument("--min-effect", type=float, default=0.05, help="smallest relative change that counts")
    cmp.add_argument("--markdown", help="write the Markdown report here")
    cmp.add_argument("--html", help="write the HTML report here")
    cmp.add_argument("--fail-on-regression", action="store_true", help="exit 2 when a metric regressed")
    restore = sub.add_parser("restore", help="vmrestore the backup (VictoriaMetrics stopped)")
    restore.add_argument("--src", help="backup to restore (default: SNAPSHOT_BACKUP_DST)")
    return top


COMMANDS = {"serve": cmd_serve, "run": cmd_run, "compare": cmd_compare, "restore": cmd_restore}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `metrics-snapshot` command."""
    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(f"metrics-snapshot: bad settings:\n{exc}\n")
        return 78
    _setup_logging(settings)
    try:
        return COMMANDS[args.command](settings, args)
    except (QueryError, BackupError, OSError, ValueError) as exc:
        log.error("failed", extra={"command": args.command, "error": str(exc)})
        return 1


if __name__ == "__main__":
    sys.exit(main())
