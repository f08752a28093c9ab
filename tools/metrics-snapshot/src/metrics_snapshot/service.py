"""The long-running service: catch up at start, then export each day at SNAPSHOT_AT, retrying a failed
day every SNAPSHOT_RETRY_INTERVAL_S; /metrics and /-/healthy on SNAPSHOT_LISTEN."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from metrics_snapshot.runner import Snapshotter

log = logging.getLogger(__name__)
# The loop re-reads the wall clock at least this often, so a suspended host or a clock step does not
# make it oversleep an export time.
MAX_SLEEP_S = 60.0


def make_http_server(host: str, port: int, registry: CollectorRegistry) -> ThreadingHTTPServer:
    """A small HTTP server: GET /metrics (the registry) and GET /-/healthy."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] in ("/metrics", "/metrics/"):
                body, ctype, status = generate_latest(registry), CONTENT_TYPE_LATEST, 200
            elif self.path == "/-/healthy":
                body, ctype, status = b"ok\n", "text/plain; charset=utf-8", 200
            else:
                body, ctype, status = b"not found\n", "text/plain; charset=utf-8", 404
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every 15 s would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def next_wake(snapshotter: Snapshotter, now: datetime, failed: bool, retry_s: float) -> datetime:
    """The next export time, or sooner when a day just failed."""
    wake = snapshotter.schedule.next_run_after(now)
    if failed:
        wake = min(wake, now + timedelta(seconds=retry_s))
    return wake


def run_forever(
    snapshotter: Snapshotter, stop: threading.Event, retry_s: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Catch up now, then sleep until the next export (or retry) time, until `stop` is set."""
    while not stop.is_set():
        result = snapshotter.run_pending()
        wake = next_wake(snapshotter, clock(), not result.ok, retry_s)
        log.info("next run", extra={"at": wake.isoformat(timespec="seconds"),
                                    "failed_days": len(result.failed)})
        while not stop.is_set():
            left = (wake - clock()).total_seconds()
            if left <= 0:
                break
            stop.wait(min(left, MAX_SLEEP_S))
