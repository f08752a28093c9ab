"""Background delivery from the outbox: rate-limited, retried with backoff and jitter, dead-lettered."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import random
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx

from webhook_relay.alertmanager import Notification
from webhook_relay.channels import Channel, Outcome, Result, open_channel
from webhook_relay.charts import ChartLinks
from webhook_relay.config import Delivery as DeliveryConfig
from webhook_relay.config import RelayConfig
from webhook_relay.evidence import FOLLOW_UP_KEY, Evidence, FollowUp
from webhook_relay.inbox import Inbox
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Delivery, Outbox, StorageError
from webhook_relay.ratelimit import RateLimiter
from webhook_relay.render import Message, Rendered, Renderer, RenderError
from webhook_relay.split import SplitError

log = logging.getLogger(__name__)


def backoff_delay(cfg: DeliveryConfig, attempts: int, rand: float) -> float:
    """Exponential backoff for the `attempts`-th failure, with +-jitter_ratio spread (rand in [0, 1))."""
    base = min(
        cfg.backoff_max_seconds, cfg.backoff_initial_seconds * cfg.backoff_multiplier ** (attempts - 1)
    )
    return base * (1 + cfg.jitter_ratio * (2 * rand - 1))


class Sender:
    """One delivery loop per target, so a slow or failing robot never holds up the others.

    When a chat post succeeded but recording it failed (disk full), the new state is kept in memory
    and written again later: the message is not posted a second time (and a failing robot is not
    retried faster than its backoff) just because the database refused a write.
    """

    def __init__(
        self,
        config: RelayConfig,
        outbox: Outbox,
        metrics: RelayMetrics,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        inbox: Inbox | None = None,
        charts: ChartLinks | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.metrics = metrics
        self.client = client
        self.clock = clock
        self.rand = rand
        # Every message any target got (or refused) is shown at GET /inbox; the inbox target itself
        # is one of the channels, storing there being its way of delivering.
        self.inbox = inbox or Inbox(outbox, config.inbox.keep_per_target)
        self.channels: dict[str, Channel] = {
            name: open_channel(name, t, client=client, inbox=self.inbox) for name, t in config.targets.items()
        }
        self.renderers = {
            name: Renderer(t, config.links, max_messages=t.max_messages, charts=charts)
            for name, t in config.targets.items()
        }
        self.limiters = {
            name: RateLimiter(t.rate_limit.messages, t.rate_limit.period_seconds)
            for name, t in config.targets.items()
        }
        self._wake = {name: asyncio.Event() for name in config.targets}
        self._limits_restored: set[str] = set()
        self._paused_until = dict.fromkeys(config.targets, 0.0)
        # Per target: writes the outbox refused, in order, and the state they would have recorded.
        self._unsaved: dict[str, dict[int, list[Callable[[], None]]]] = {n: {} for n in config.targets}
        self._overlay: dict[str, dict[int, dict[str, Any]]] = {n: {} for n in config.targets}

    def wake(self, targets: list[str] | None = None) -> None:
        """New work was stored: look at the outbox now instead of at the next poll."""
        for name in targets or list(self._wake):
            self._wake[name].set()

    def tasks(self) -> list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]:
        """The long-running coroutines of the sender (one loop per target, plus pruning)."""
        loops: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = [
            (f"sender-{name}", functools.partial(self._loop, name)) for name in self.config.targets
        ]
        loops.append(("outbox-prune", self._maintenance))
        return loops

    async def _maintenance(self, every: float = 300.0) -> None:
        cfg = self.config.delivery
        while True:
            try:
                await asyncio.to_thread(
                    self.outbox.prune, self.clock(), cfg.dedup_window_seconds, cfg.keep_delivered_seconds,
                    max(limiter.period for limiter in self.limiters.values()),
                )
            except StorageError:
                log.warning("outbox pruning failed; retrying later", exc_info=True)
            except Exception:
                log.exception("unexpected error while pruning the outbox; retrying later")
            await asyncio.sleep(every)

    async def _loop(self, name: str) -> None:
        poll = self.config.delivery.poll_interval_seconds
        while True:
            try:
                worked = await self.step(name)
            except StorageError:
                log.warning("outbox access failed", extra={"target": name}, exc_info=True)
                worked = False
            except Exception:
                # A bug must not stop delivery for good while the API keeps accepting webhooks.
                log.exception("unexpected error in the sender", extra={"target": name})
                worked = False
            if worked:
                continue
            self._wake[name].clear()
            try:
                await asyncio.wait_for(self._wake[name].wait(), timeout=poll)
            except TimeoutError:
                pass

    async def step(self, name: str) -> bool:
        """Deliver what is due for one target; False when there was nothing to do."""
        if name not in self._limits_restored:
            await self._restore_limit(name)
        await self._flush_unsaved(name)
        now = self.clock()
        if now < self._paused_until[name]:
            return False
        overlay = self._overlay[name]
        items = await asyncio.to_thread(self.outbox.due, name, now, 20 + len(overlay))
        worked = False
        for stored in items:
            item = self._apply_overlay(name, stored, now)
            if item is None:
                continue
            worked = True
            if not await self.deliver(name, item):
                break
        return worked

    def _apply_overlay(self, name: str, item: Delivery, now: float) -> Delivery | None:
        """The delivery as the sender knows it (None when it is done or not due, by unsaved state)."""
        state = self._overlay[name].get(item.id)
        if not state:
            return item
        if state.get("status", "pending") != "pending" or state.get("next_attempt_at", 0.0) > now:
            return None
        return dataclasses.replace(
            item,
            parts_sent=state.get("parts_sent", item.parts_sent),
            attempts=state.get("attempts", item.attempts),
        )

    def _write(self, method: str, *args: Any) -> Callable[[], None]:
        """An outbox write to run now or, if refused, later (the method is looked up at call time)."""
        return lambda: getattr(self.outbox, method)(*args)

    async def _persist(self, name: str, item_id: int, write: Callable[[], None], **state: Any) -> None:
        """Record a state change; when the outbox refuses it, keep it in memory and retry later."""
        unsaved = self._unsaved[name]
        self._overlay[name].setdefault(item_id, {}).update(state)
        if item_id in unsaved:
            unsaved[item_id].append(write)  # keep the order of the earlier, still unsaved writes
            return
        try:
            await asyncio.to_thread(write)
        except StorageError as exc:
            unsaved[item_id] = [write]
            log.error(
                "could not record delivery state; kept in memory and retried",
                extra={"target": name, "delivery_id": item_id, "error": str(exc)},
            )
            return
        self._overlay[name].pop(item_id, None)

    async def _flush_unsaved(self, name: str) -> None:
        unsaved = self._unsaved[name]
        for item_id in list(unsaved):
            writes = unsaved[item_id]
            while writes:
                try:
                    await asyncio.to_thread(writes[0])
                except StorageError:
                    return  # still refused: the overlay keeps serving the known state
                writes.pop(0)
            del unsaved[item_id]
            self._overlay[name].pop(item_id, None)
            log.info("recorded delivery state after the outbox recovered",
                     extra={"target": name, "delivery_id": item_id})

    async def deliver(self, name: str, item: Delivery) -> bool:
        """Deliver the remaining parts of one item; False when the target should be left alone a while."""
        target = self.config.targets[name]
        context = {"target": name, "delivery_id": item.id, "route": item.route}
        try:
            note = Notification.model_validate_json(item.payload)
            if item.kind == "analysis":
                follow = FollowUp.model_validate(json.loads(item.payload)[FOLLOW_UP_KEY])
                rendered = Rendered(self.renderers[name].render_follow_up(note, follow), "full")
            else:
                rendered = await self._render(name, item, note)
        except (RenderError, SplitError, ValueError, KeyError) as exc:
            reason = "too_long" if isinstance(exc, SplitError) else "template_error"
            await self._dead(name, item, reason, str(exc), context)
            return True
        messages = rendered.messages
        if item.parts_sent >= len(messages):
            # Every part went already (the chart image of an earlier render was pruned since).
            await self._persist(name, item.id, self._write("record_part", item.id, item.parts_sent, True,
                                                          self.clock()), status="delivered")
            return True
        if rendered.mode != "full" and item.attempts == 0 and item.parts_sent == 0:
            self.metrics.compacted.labels(target=name, mode=rendered.mode).inc()
            log.info("notification compacted to fit the message budget",
                     extra={**context, "mode": rendered.mode, "alerts": len(note.alerts),
                            "messages": len(messages)})
        channel = self.channels[name]
        for index in range(item.parts_sent, len(messages)):
            await self._wait_for_limit(name)
            now = self.clock()
            result = await channel.send(messages[index], now)
            await self._record_send(name)
            await self._show(name, messages[index], now, result)
            if result.outcome is Outcome.DELIVERED:
                done = index + 1 == len(messages)
                parts, at = index + 1, self.clock()
                await self._persist(
                    name, item.id,
                    self._write("record_part", item.id, parts, done, at),
                    parts_sent=parts, status="delivered" if done else "pending",
                )
                if result.reason != "skipped":  # an email severity nobody receives: nothing went out
                    self.metrics.delivered.labels(target=name, channel=target.kind).inc()
                if done:
                    self.metrics.delivery_duration.labels(channel=target.kind).observe(
                        max(0.0, self.clock() - item.received_at)
                    )
                    log.info("delivered", extra={**context, "parts": len(messages)})
                continue
            self.metrics.failed.labels(target=name, channel=target.kind, reason=result.reason).inc()
            if result.outcome is Outcome.PERMANENT:
                await self._dead(name, item, result.reason, result.detail, context)
                return True
            return await self._retry(name, item, result, context)
        return True

    async def _render(self, name: str, item: Delivery, note: Notification) -> Rendered:
        """The alert's messages, with the evidence the outbox holds for it (stored before it was first
        due, so every attempt renders the same parts); without it when there is none or it is unusable."""
        received = datetime.fromtimestamp(item.received_at, UTC)
        renderer = self.renderers[name]
        if not item.evidence:
            return renderer.render_budgeted(note, received)
        parts = self.config.evidence_parts(item.route, name)
        try:
            evidence = Evidence.model_validate_json(item.evidence)
        except ValueError:
            log.warning("stored evidence unreadable; sending the alert without it",
                        extra={"target": name, "delivery_id": item.id})
            return renderer.render_budgeted(note, received)
        png = None
        chart = evidence.chart
        if chart is not None and "chart" in parts and self.config.targets[name].kind == "wecom":
            stored = await asyncio.to_thread(self.outbox.chart, chart.id)
            png = stored.png if stored is not None else None
        return renderer.render_budgeted(note, received, evidence, parts, png)

    async def _show(self, name: str, message: Message, now: float, result: Result) -> None:
        """Keep what a robot or mailbox was given, and what it refused for good, for GET /inbox."""
        kind = self.config.targets[name].kind
        if kind == "inbox" or result.outcome is Outcome.TRANSIENT or result.reason == "skipped":
            return  # the inbox stores its own; a retried message shows once it went (or was refused)
        outcome = "sent" if result.outcome is Outcome.DELIVERED else "refused"
        detail = "" if outcome == "sent" else f"{result.reason}: {result.detail}"
        try:
            await asyncio.to_thread(self.inbox.record, name, kind, message, now, outcome, detail)
        except StorageError:
            log.warning("could not show a message in the inbox", extra={"target": name})

    async def send_direct(self, name: str, messages: list[Message]) -> bool:
        """Post now, bypassing the outbox (for notices about the outbox itself); True if all went."""
        target = self.config.targets[name]
        for message in messages:
            await self._wait_for_limit(name)
            result = await self.channels[name].send(message, self.clock())
            self.limiters[name].record(self.clock())
            if result.outcome is not Outcome.DELIVERED:
                self.metrics.failed.labels(target=name, channel=target.kind, reason=result.reason).inc()
                log.error("direct notice not delivered",
                          extra={"target": name, "reason": result.reason, "detail": result.detail})
                return False
            self.metrics.delivered.labels(target=name, channel=target.kind).inc()
        return True

    async def _restore_limit(self, name: str) -> None:
        # The sends of the previous process still count against the robot's window.
        limiter = self.limiters[name]
        for at in await asyncio.to_thread(self.outbox.recent_sends, name, self.clock() - limiter.period):
            limiter.record(at)
        self._limits_restored.add(name)

    async def _record_send(self, name: str) -> None:
        at = self.clock()
        self.limiters[name].record(at)
        try:
            await asyncio.to_thread(self.outbox.record_send, name, at)
        except StorageError:
            # Only the after-restart limit is weakened; the message itself must still be accounted for.
            log.warning("could not store the send time", extra={"target": name})

    async def _wait_for_limit(self, name: str) -> None:
        limiter = self.limiters[name]
        delay = limiter.delay(self.clock())
        if delay > 0:
            self.metrics.rate_limit_waits.labels(target=name).inc()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = limiter.delay(self.clock())

    async def _retry(self, name: str, item: Delivery, result: Result, context: dict[str, object]) -> bool:
        cfg = self.config.delivery
        now = self.clock()
        attempts = item.attempts + 1
        # Measured from the start of this series of attempts, so a replayed letter gets a full period.
        if now - item.retry_since > cfg.give_up_after_seconds:
            await self._dead(name, item, "retries_exhausted", result.detail, context)
            return True
        delay = backoff_delay(cfg, attempts, self.rand())
        if result.reason == "rate_limited":
            # The robot throttles for a while after a burst: stay quiet for a whole window at least.
            delay = max(delay, self.config.targets[name].rate_limit.period_seconds)
            self.limiters[name].block(now + delay)
        # Pause the whole target: when the robot is down, hammering it with every pending item helps
        # nobody. Set before recording, so a refused write cannot turn backoff into a retry storm.
        self._paused_until[name] = now + delay
        await self._persist(
            name, item.id,
            self._write("schedule_retry", item.id, attempts, now + delay, result.detail, now),
            attempts=attempts, next_attempt_at=now + delay,
        )
        self.metrics.retries.labels(target=name, channel=self.config.targets[name].kind).inc()
        log.warning(
            "delivery failed, will retry",
            extra={
                **context,
                "reason": result.reason,
                "detail": result.detail,
                "attempt": attempts,
                "retry_in_s": round(delay, 2),
            },
        )
        return False

    async def _dead(
        self, name: str, item: Delivery, reason: str, detail: str, context: dict[str, object]
    ) -> None:
        await self._persist(
            name, item.id, self._write("mark_dead", item.id, reason, detail, self.clock()), status="dead"
        )
        self.metrics.dead_letters_total.labels(target=name, reason=reason).inc()
        log.error(
            "delivery failed permanently, moved to dead letters",
            extra={**context, "reason": reason, "detail": detail},
        )
