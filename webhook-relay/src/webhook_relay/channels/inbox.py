"""The relay's own inbox as a channel: delivering a message is storing it for GET /inbox."""

from __future__ import annotations

import asyncio
from typing import Any

from webhook_relay.channels.base import DELIVERED, Outcome, Result
from webhook_relay.config import Target
from webhook_relay.inbox import Inbox
from webhook_relay.outbox import StorageError
from webhook_relay.render import Message

REASONS = ("storage",)


class InboxChannel:
    """Needs no credential, so a stack without any robot still shows every alert somewhere."""

    reasons = REASONS

    def __init__(self, name: str, target: Target, inbox: Inbox) -> None:
        self.name = name
        self.target = target
        self.inbox = inbox

    def preview(self, message: Message, now: float) -> dict[str, Any]:
        return {"inbox": self.name, "title": message.title, "text": message.text}

    async def send(self, message: Message, now: float) -> Result:
        try:
            await asyncio.to_thread(self.inbox.record, self.name, "inbox", message, now)
        except StorageError as exc:
            # The outbox itself is failing: the sender keeps the message and retries with backoff.
            return Result(Outcome.TRANSIENT, "storage", str(exc)[:200])
        return DELIVERED
