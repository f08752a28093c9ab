"""Chat channels: each builds the HTTP request for a message and interprets the reply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from webhook_relay.channels import dingtalk, feishu, wecom
from webhook_relay.channels.base import DELIVERED, Outcome, Request, Result

if TYPE_CHECKING:
    from webhook_relay.config import Target
    from webhook_relay.render import Message


class Channel(Protocol):
    """What a chat channel provides: its failure reasons, the request for a message, the verdict."""

    REASONS: tuple[str, ...]

    def build(self, target: Target, message: Message, now: float) -> Request: ...
    def interpret(self, status: int, content: bytes) -> Result: ...


CHANNELS: dict[str, Channel] = {"dingtalk": dingtalk, "wecom": wecom, "feishu": feishu}


__all__ = ["CHANNELS", "DELIVERED", "Channel", "Outcome", "Request", "Result"]
