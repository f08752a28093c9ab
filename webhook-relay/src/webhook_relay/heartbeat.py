"""Dead-man's switch for heartbeat routes (Alertmanager's always-firing Watchdog).

When nothing reaches a heartbeat route for `missing_after_seconds`, the relay itself queues a critical
"HeartbeatMissing" notification to the route's `notify` targets through the normal outbox (durable,
rate-limited, retried), and a resolved one when heartbeats come back. Prometheus cannot raise this
alarm itself: it is one of the things that may be broken.

Last-seen times are kept in memory: after a restart the relay waits a full `missing_after_seconds`
before alarming, so a restart alone never pages anyone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from webhook_relay.config import RelayConfig
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Outbox, StorageError

log = logging.getLogger(__name__)
ALERTNAME = "HeartbeatMissing"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class HeartbeatWatch:
    def __init__(
        self,
        config: RelayConfig,
        outbox: Outbox,
        metrics: RelayMetrics,
        wake: Callable[[list[str]], None],
        clock: Callable[[], float],
    ) -> None:
        self.routes = {name: r.heartbeat for name, r in config.routes.items() if r.heartbeat is not None}
        self.outbox = outbox
        self.metrics = metrics
        self.wake = wake
        self.clock = clock
        self.dedup_window = config.delivery.dedup_window_seconds
        started = clock()
        self.last_seen = dict.fromkeys(self.routes, started)
        self.alarm_since: dict[str, float | None] = dict.fromkeys(self.routes, None)

    def beat(self, route: str) -> None:
        """A webhook reached a heartbeat route."""
        now = self.clock()
        self.last_seen[route] = now
        self.metrics.heartbeat_last_seen.labels(route=route).set(now)

    async def run(self) -> None:
        if not self.routes:
            return
        # Check often enough that an alarm is at most a quarter of the limit late.
        interval = min(5.0, *(cfg.missing_after_seconds / 4 for cfg in self.routes.values()))
        while True:
            try:
                await self.check()
            except StorageError:
                log.exception("could not queue a heartbeat notification; retrying")
            except Exception:
                # The switch must keep watching whatever happens to one check.
                log.exception("unexpected error in the heartbeat watch")
            await asyncio.sleep(interval)

    async def check(self) -> None:
        """Queue an alarm for each route silent too long, and a recovery for each route that came back."""
        now = self.clock()
        for route, cfg in self.routes.items():
            silent = now - self.last_seen[route]
            since = self.alarm_since[route]
            if since is None and silent > cfg.missing_after_seconds:
                await self._queue(
                    route, "firing", starts=self.last_seen[route] + cfg.missing_after_seconds, now=now
                )
                self.alarm_since[route] = self.last_seen[route] + cfg.missing_after_seconds
                log.error("heartbeat missing", extra={"route": route, "silent_s": round(silent)})
            elif since is not None and silent <= cfg.missing_after_seconds:
                await self._queue(route, "resolved", starts=since, now=now)
                self.alarm_since[route] = None
                log.info("heartbeat back", extra={"route": route})

    async def _queue(self, route: str, status: str, starts: float, now: float) -> None:
        cfg = self.routes[route]
        minutes = round(cfg.missing_after_seconds / 60, 1)
        annotations = {
            "summary": f"No heartbeat on relay route {route} for more than {minutes} min",
            "description": "Alertmanager's Watchdog stopped arriving: Prometheus, Alertmanager or the "
            "path to the relay is broken, so other alerts may not arrive either.",
        }
        if cfg.runbook_url:
            annotations["runbook_url"] = cfg.runbook_url
        alert = {
            "status": status,
            "labels": {"alertname": ALERTNAME, "severity": "critical", "route": route},
            "annotations": annotations,
            "startsAt": _iso(starts),
            "endsAt": _iso(now) if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": f"heartbeat-{route}",
        }
        payload = {
            "version": "4",
            "receiver": f"webhook-relay/{route}",
            "status": status,
            "alerts": [alert],
            "groupLabels": {"alertname": ALERTNAME},
            "commonLabels": dict(alert["labels"]),
            "commonAnnotations": annotations,
            "externalURL": "",
            "groupKey": f"webhook-relay:heartbeat:{route}",
        }
        await asyncio.to_thread(self.outbox.enqueue, route, cfg.notify, json.dumps(payload), None, 0, now)
        self.wake(cfg.notify)
