"""Background delivery from the outbox: rate-limited, retried with backoff and jitter, dead-lettered."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from webhook_relay.alertmanager import Notification
from webhook_relay.channels import CHANNELS, Outcome, Result
from webhook_relay.config import Delivery as DeliveryConfig
from webhook_relay.config import RelayConfig, Target
from webhook_relay.masking import scrub
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Delivery, Outbox, StorageError
from webhook_relay.ratelimit import RateLimiter
from webhook_relay.render import Message, Renderer, RenderError
from webhook_relay.split import SplitError

log = logging.getLogger(__name__)


def target_secrets(target: Target) -> list[str]:
    return [s.get_secret_value() for s in (target.access_token, target.key, target.token, target.secret) if s]


async def post_message(client: httpx.AsyncClient, target: Target, message: Message, now: float) -> Result:
    """Send one message; every failure becomes a Result (nothing raised, no secret in the detail)."""
    channel = CHANNELS[target.kind]
    request = channel.build(target, message, now)
    try:
        reply = await client.post(request.url, json=request.body)
    except httpx.TimeoutException:
        return Result(Outcome.TRANSIENT, "timeout", "request timed out")
    except httpx.HTTPError as exc:
        return Result(
            Outcome.TRANSIENT, "network", scrub(f"{type(exc).__name__}: {exc}", target_secrets(target))
        )
    result: Result = channel.interpret(reply.status_code, reply.content)
    return Result(result.outcome, result.reason, scrub(result.detail, target_secrets(target)))


def backoff_delay(cfg: DeliveryConfig, attempts: int, rand: float) -> float:
    """Exponential backoff for the `attempts`-th failure, with +-jitter_ratio spread (rand in [0, 1))."""
    base = min(
        cfg.backoff_max_seconds, cfg.backoff_initial_seconds * cfg.backoff_multiplier ** (attempts - 1)
    )
    return base * (1 + cfg.jitter_ratio * (2 * rand - 1))


class Sender:
    """One delivery loop per target, so a slow or failing robot never holds up the others."""

    def __init__(
        self,
        config: RelayConfig,
        outbox: Outbox,
        metrics: RelayMetrics,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.metrics = metrics
        self.client = client
        self.clock = clock
        self.rand = rand
        self.renderers = {name: Renderer(t) for name, t in config.targets.items()}
        self.limiters = {
            name: RateLimiter(t.rate_limit.messages, t.rate_limit.period_seconds)
            for name, t in config.targets.items()
        }
        self._wake = {name: asyncio.Event() for name in config.targets}
        self._limits_restored: set[str] = set()
        self._paused_until = dict.fromkeys(config.targets, 0.0)

    def wake(self, targets: list[str] | None = None) -> None:
        """New work was stored: look at the outbox now instead of at the next poll."""
        for name in targets or list(self._wake):
            self._wake[name].set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for name in self.config.targets:
                group.create_task(self._loop(name), name=f"sender-{name}")
            group.create_task(self._maintenance(), name="outbox-prune")

    async def _maintenance(self, every: float = 300.0) -> None:
        cfg = self.config.delivery
        while True:
            try:
                await asyncio.to_thread(
                    self.outbox.prune, self.clock(), cfg.dedup_window_seconds, cfg.keep_delivered_seconds,
                    max(limiter.period for limiter in self.limiters.values()),
                )
            except StorageError:
                log.exception("outbox pruning failed; retrying later")
            await asyncio.sleep(every)

    async def _loop(self, name: str) -> None:
        poll = self.config.delivery.poll_interval_seconds
        while True:
            try:
                worked = await self.step(name)
            except StorageError:
                log.exception("outbox access failed", extra={"target": name})
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
        now = self.clock()
        if now < self._paused_until[name]:
            return False
        items = await asyncio.to_thread(self.outbox.due, name, now, 20)
        for item in items:
            if not await self.deliver(name, item):
                break
        return bool(items)

    async def deliver(self, name: str, item: Delivery) -> bool:
        """Deliver the remaining parts of one item; False when the target should be left alone a while."""
        target = self.config.targets[name]
        context = {"target": name, "delivery_id": item.id, "route": item.route}
        try:
            note = Notification.model_validate_json(item.payload)
            received = datetime.fromtimestamp(item.received_at, UTC)
            messages = self.renderers[name].render(note, received)
        except (RenderError, SplitError, ValueError) as exc:
            reason = "too_long" if isinstance(exc, SplitError) else "template_error"
            await self._dead(name, item, reason, str(exc), context)
            return True
        for index in range(item.parts_sent, len(messages)):
            await self._wait_for_limit(name)
            now = self.clock()
            result = await post_message(self.client, target, messages[index], now)
            await self._record_send(name)
            if result.outcome is Outcome.DELIVERED:
                done = index + 1 == len(messages)
                await asyncio.to_thread(self.outbox.record_part, item.id, index + 1, done, self.clock())
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
        if now - item.received_at > cfg.give_up_after_seconds:
            await self._dead(name, item, "retries_exhausted", result.detail, context)
            return True
        delay = backoff_delay(cfg, attempts, self.rand())
        if result.reason == "rate_limited":
            # The robot throttles for a while after a burst: stay quiet for a whole window at least.
            delay = max(delay, self.config.targets[name].rate_limit.period_seconds)
            self.limiters[name].block(now + delay)
        await asyncio.to_thread(
            self.outbox.schedule_retry, item.id, attempts, now + delay, result.detail, now
        )
        self.metrics.retries.labels(target=name, channel=self.config.targets[name].kind).inc()
        # Pause the whole target: when the robot is down, hammering it with every pending item helps nobody.
        self._paused_until[name] = now + delay
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
        await asyncio.to_thread(self.outbox.mark_dead, item.id, reason, detail, self.clock())
        self.metrics.dead_letters_total.labels(target=name, reason=reason).inc()
        log.error(
            "delivery failed permanently, moved to dead letters",
            extra={**context, "reason": reason, "detail": detail},
        )
