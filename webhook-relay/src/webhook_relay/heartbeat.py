"""Dead-man's switch for heartbeat routes (Alertmanager's always-firing Watchdog).

Two ways out, because the relay may itself be the part that died:
- inside: when nothing reaches a heartbeat route for `missing_after_seconds`, the relay queues a
  critical "HeartbeatMissing" to the route's `notify` targets through the normal outbox, and a
  resolved one when heartbeats come back (Prometheus or Alertmanager died; the relay still talks);
- outside: with `forward_url`, every heartbeat that arrives is passed on to an external push monitor
  (healthchecks.io, Uptime Kuma) after the relay's own health checks. When Prometheus, Alertmanager
  or the relay dies, or the relay cannot store alerts, the pings stop and that service alarms.

Watchdog itself is never posted to a chat; an optional daily "pipeline alive" line replaces it.
Last-seen times are kept in memory: after a restart the relay waits a full `missing_after_seconds`
before alarming, so a restart alone never pages anyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from webhook_relay.alertmanager import Notification
from webhook_relay.config import Heartbeat, RelayConfig
from webhook_relay.metrics import RelayMetrics
from webhook_relay.notices import alert_payload, dumps, notice_payload
from webhook_relay.outbox import Outbox, StorageError

log = logging.getLogger(__name__)
ALERTNAME = "HeartbeatMissing"


@dataclass
class BeatStatus:
    """What the inbox shows of one heartbeat route: when it last arrived, what, and the forward."""

    route: str
    last_seen: float | None = None  # None: nothing since the relay started
    received: int = 0
    last: Notification | None = None
    forward_configured: bool = False
    forwarded_at: float | None = None
    forward_result: str | None = None  # ok | failed | unhealthy
    alarm_since: float | None = None


class HeartbeatWatch:
    def __init__(
        self,
        config: RelayConfig,
        outbox: Outbox,
        metrics: RelayMetrics,
        wake: Callable[[list[str]], None],
        clock: Callable[[], float],
        *,
        client: httpx.AsyncClient | None = None,
        health: Callable[[], Awaitable[list[str]]] | None = None,
    ) -> None:
        self.routes: dict[str, Heartbeat] = {
            name: r.heartbeat for name, r in config.routes.items() if r.heartbeat is not None
        }
        self.outbox = outbox
        self.metrics = metrics
        self.wake = wake
        self.clock = clock
        self.client = client
        self.health = health
        started = clock()
        self.last_seen = dict.fromkeys(self.routes, started)
        self.beats = {route: BeatStatus(route, forward_configured=cfg.forward_url is not None)
                      for route, cfg in self.routes.items()}
        self.alarm_since: dict[str, float | None] = dict.fromkeys(self.routes, None)
        self._forwarding: dict[str, asyncio.Task[None]] = {}
        self._reported_on = {route: self._report_day(route, started) for route in self.routes}
        for route, cfg in self.routes.items():
            metrics.heartbeat_last_seen.labels(route=route)
            if cfg.forward_url is not None:
                metrics.init_heartbeat_forward(route, started)

    def status(self) -> list[BeatStatus]:
        """Per heartbeat route, for the inbox page."""
        for route, beat in self.beats.items():
            beat.alarm_since = self.alarm_since[route]
        return list(self.beats.values())

    def beat(self, route: str, note: Notification | None = None) -> None:
        """A webhook reached a heartbeat route (the caller already checked the bearer token)."""
        now = self.clock()
        self.last_seen[route] = now
        shown = self.beats[route]
        shown.last_seen, shown.received = now, shown.received + 1
        if note is not None:
            shown.last = note
        self.metrics.heartbeat_last_seen.labels(route=route).set(now)
        cfg = self.routes[route]
        running = self._forwarding.get(route)
        if cfg.forward_url is not None and (running is None or running.done()):
            # Never awaited by the webhook handler: a slow monitor must not delay Alertmanager.
            self._forwarding[route] = asyncio.get_running_loop().create_task(self._forward(route, cfg))

    async def _forward(self, route: str, cfg: Heartbeat) -> None:
        assert cfg.forward_url is not None and self.client is not None
        problems = await self.health() if self.health else []
        shown = self.beats[route]
        if problems:
            # Staying silent is the message: the monitor alarms when the pings stop.
            shown.forwarded_at, shown.forward_result = self.clock(), "unhealthy"
            self.metrics.heartbeat_forwards.labels(route=route, result="unhealthy").inc()
            log.error("heartbeat not forwarded: the relay is unhealthy",
                      extra={"route": route, "problems": problems})
            return
        try:
            reply = await self.client.get(cfg.forward_url.get_secret_value(),
                                          timeout=cfg.forward_timeout_seconds)
            ok, detail = reply.is_success, f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            # The exception text may quote the URL, whose path is the monitor's token.
            ok, detail = False, type(exc).__name__
        shown.forwarded_at, shown.forward_result = self.clock(), "ok" if ok else "failed"
        if ok:
            self.metrics.heartbeat_forwards.labels(route=route, result="ok").inc()
            self.metrics.heartbeat_forward_success.labels(route=route).set(self.clock())
        else:
            self.metrics.heartbeat_forwards.labels(route=route, result="failed").inc()
            log.warning("heartbeat forward failed", extra={"route": route, "detail": detail})

    async def run(self) -> None:
        if not self.routes:
            # Nothing to watch; stay alive so the supervisor does not take this for a crash.
            await asyncio.Event().wait()
        # Check often enough that an alarm is at most a quarter of the limit late.
        interval = min(5.0, *(cfg.missing_after_seconds / 4 for cfg in self.routes.values()))
        while True:
            try:
                await self.check()
                await self.report()
            except StorageError:
                log.warning("could not queue a heartbeat notification; retrying", exc_info=True)
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
                starts = self.last_seen[route] + cfg.missing_after_seconds
                await self._queue(route, cfg, "firing", starts=starts, now=now)
                self.alarm_since[route] = starts
                log.error("heartbeat missing", extra={"route": route, "silent_s": round(silent)})
            elif since is not None and silent <= cfg.missing_after_seconds:
                await self._queue(route, cfg, "resolved", starts=since, now=now)
                self.alarm_since[route] = None
                log.info("heartbeat back", extra={"route": route})

    async def _queue(self, route: str, cfg: Heartbeat, status: str, starts: float, now: float) -> None:
        minutes = round(cfg.missing_after_seconds / 60, 1)
        payload = alert_payload(
            key=f"heartbeat-{route}",
            alertname=ALERTNAME,
            status=status,
            starts=starts,
            now=now,
            summary=f"No heartbeat on relay route {route} for more than {minutes} min",
            summary_zh=f"中继路由 {route} 已超过 {minutes} 分钟没有收到心跳",
            description="Alertmanager's Watchdog stopped arriving: Prometheus, Alertmanager or the "
            "path to the relay is broken, so other alerts may not arrive either.",
            description_zh="Alertmanager 的 Watchdog 心跳不再到达：Prometheus、Alertmanager 或到中继的链路"
            "出了故障，其他告警可能也无法送达。",
            runbook_url=cfg.runbook_url,
            labels={"route": route},
        )
        await asyncio.to_thread(self.outbox.enqueue, route, cfg.notify, dumps(payload), None, 0, now)
        self.wake(cfg.notify)

    def _report_day(self, route: str, now: float) -> str | None:
        """The local date whose alive report is already due by `now` (None: not configured)."""
        report = self.routes[route].alive_report
        if report is None:
            return None
        local = datetime.fromtimestamp(now, ZoneInfo(report.timezone))
        hour, minute = map(int, report.at.split(":"))
        due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return (local if local >= due else local - timedelta(days=1)).date().isoformat()

    async def report(self) -> None:
        """Queue the daily "pipeline alive" line once the configured local time has passed."""
        now = self.clock()
        for route, cfg in self.routes.items():
            if cfg.alive_report is None:
                continue
            day = self._report_day(route, now)
            if day == self._reported_on[route]:
                continue
            self._reported_on[route] = day
            if self.alarm_since[route] is not None:
                continue  # HeartbeatMissing is the truth today: no "alive" line next to it
            zone = ZoneInfo(cfg.alive_report.timezone)
            seen = datetime.fromtimestamp(self.last_seen[route], zone).strftime("%Y-%m-%d %H:%M:%S %Z")
            stats = await asyncio.to_thread(self.outbox.stats, now)
            pending = sum(s.pending for s in stats.values())
            dead = sum(s.dead for s in stats.values())
            payload = notice_payload(
                key=f"alive-{route}-{day}",
                alertname="AlertPipelineAlive",
                title="Alert pipeline alive",
                title_zh="告警链路运行正常",
                text=f"Last heartbeat {seen}; {pending} message(s) waiting, {dead} dead letter(s).",
                text_zh=f"最近一次心跳 {seen}；{pending} 条消息待发送，{dead} 条死信。",
                now=now,
            )
            targets = cfg.alive_report.targets
            await asyncio.to_thread(self.outbox.enqueue, route, targets, dumps(payload), None, 0, now)
            self.wake(targets)
