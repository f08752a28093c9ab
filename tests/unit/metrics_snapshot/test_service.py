"""The service: its HTTP endpoints, its wake-up times and its loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import httpx
import pytest
from metrics_snapshot.service import make_http_server, next_wake, run_forever
from prometheus_client import CollectorRegistry, Counter

from tests.unit.metrics_snapshot.conftest import Rig


@pytest.fixture
def served() -> Iterator[str]:
    """The HTTP server on a free loopback port, with one counter in its registry."""
    registry = CollectorRegistry()
    Counter("metrics_snapshot_probe", "A probe.", registry=registry).inc()
    server = make_http_server("127.0.0.1", 0, registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_metrics_and_health_are_served_and_nothing_else(served: str) -> None:
    """/metrics is the registry in the text format, /-/healthy answers ok, other paths 404."""
    metrics = httpx.get(f"{served}/metrics", timeout=5)
    assert metrics.status_code == 200 and "metrics_snapshot_probe_total 1.0" in metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    assert httpx.get(f"{served}/-/healthy", timeout=5).text == "ok\n"
    assert httpx.get(f"{served}/snapshots", timeout=5).status_code == 404


def test_the_next_wake_is_the_export_time_or_a_retry_after_a_failure(rig_factory: Callable[..., Rig]) -> None:
    """After a good run the service sleeps until tomorrow 03:00; after a failure, the retry interval."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-02T03:05")
    now = rig.clock()
    tomorrow = now.replace(hour=3, minute=0) + timedelta(days=1)
    assert next_wake(rig.snapshotter, now, failed=False, retry_s=1800) == tomorrow
    assert next_wake(rig.snapshotter, now, failed=True, retry_s=1800) == now + timedelta(seconds=1800)


def test_the_loop_catches_up_first_and_stops_when_asked(rig_factory: Callable[..., Rig]) -> None:
    """Started after downtime it exports the owed day at once, then waits; setting `stop` ends it."""
    rig = rig_factory("2025-06-01T10:00", "2025-06-02T03:05")
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(rig.snapshotter, stop, 1800, rig.clock), daemon=True)
    thread.start()
    deadline = threading.Event()
    while not rig.store.complete_days() and not deadline.wait(0.05):
        pass
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert rig.store.complete_days() == [date(2025, 6, 1)]
