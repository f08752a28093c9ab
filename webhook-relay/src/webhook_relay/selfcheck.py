"""The relay watching its own outbox: can it still store alerts?

When the disk under the outbox is full or read-only, webhooks are answered 503 (Alertmanager keeps
and retries them, so nothing is lost), readiness fails and the external heartbeat stops. People in
the chat would still hear nothing until the external monitor's grace period ran out, and an alarm
queued through the outbox cannot be stored: so this one notice is posted directly, bypassing the
outbox, once when the outbox becomes unwritable (again every `repeat_seconds` while it stays so),
and a recovery goes through the outbox once it can be stored again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from webhook_relay.alertmanager import Notification
from webhook_relay.metrics import RelayMetrics
from webhook_relay.notices import alert_payload, dumps
from webhook_relay.outbox import Outbox, StorageError
from webhook_relay.sender import Sender

log = logging.getLogger(__name__)
ALERTNAME = "WebhookRelayOutboxNotWritable"
RUNBOOK_URL = "/runbook#webhookrelayoutboxnotwritable"


class StorageWatch:
    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        metrics: RelayMetrics,
        targets: list[str],
        clock: Callable[[], float],
        *,
        interval: float = 5.0,
        repeat_seconds: float = 3600.0,
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.metrics = metrics
        self.targets = targets
        self.clock = clock
        self.interval = interval
        self.repeat_seconds = repeat_seconds
        self.broken_since: float | None = None
        self._notified_at: float | None = None
        self._error = ""

    @property
    def writable(self) -> bool:
        return self.broken_since is None

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("unexpected error while checking the outbox")
            await asyncio.sleep(self.interval)

    async def check(self) -> None:
        now = self.clock()
        try:
            await asyncio.to_thread(self.outbox.check_writable, now)
        except StorageError as exc:
            self.metrics.outbox_writable.set(0)
            if self.broken_since is None:
                self.broken_since, self._error = now, str(exc)
                log.error("outbox not writable: webhooks are refused with 503 until it is",
                          extra={"error": self._error})
            if self._notified_at is None or now - self._notified_at >= self.repeat_seconds:
                self._notified_at = now
                await self._notify_directly(now)
            return
        self.metrics.outbox_writable.set(1)
        if self.broken_since is not None:
            since, notified = self.broken_since, self._notified_at is not None
            self.broken_since, self._notified_at = None, None
            log.info("outbox writable again", extra={"down_s": round(now - since)})
            if notified:
                payload = self._payload("resolved", since, now)
                await asyncio.to_thread(
                    self.outbox.enqueue, "webhook-relay", self.targets, dumps(payload), None, 0, now
                )
                self.sender.wake(self.targets)

    def _payload(self, status: str, since: float, now: float) -> dict[str, object]:
        return alert_payload(
            key="outbox",
            alertname=ALERTNAME,
            status=status,
            starts=since,
            now=now,
            summary="webhook-relay cannot store alerts (outbox not writable)",
            summary_zh="webhook-relay 无法保存告警（发件箱不可写）",
            description="The disk under the relay's outbox refuses writes: new alerts are answered "
            "503 and wait in Alertmanager, which retries them; they arrive once space is freed. "
            f"Error: {self._error[:200]}",
            description_zh="中继发件箱所在的磁盘拒绝写入：新告警会收到 503，由 Alertmanager 保留并重试，"
            f"腾出空间后即可送达。错误：{self._error[:200]}",
            runbook_url=RUNBOOK_URL,
        )

    async def _notify_directly(self, now: float) -> None:
        assert self.broken_since is not None
        note = Notification.model_validate(self._payload("firing", self.broken_since, now))
        for name in self.targets:
            try:
                messages = self.sender.renderers[name].render(note)
                await self.sender.send_direct(name, messages)
            except Exception:
                log.exception("direct notice failed", extra={"target": name})
