"""Ways out of the relay. Each kind of target is a class implementing `Channel`: the sender, preview
and `send-test` call that one interface, whatever the transport (HTTP robot, SMTP, the local inbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from webhook_relay.channels.base import DELIVERED, Outcome, Request, Result
from webhook_relay.channels.dingtalk import DingTalkChannel
from webhook_relay.channels.email import EmailChannel
from webhook_relay.channels.feishu import FeishuChannel
from webhook_relay.channels.inbox import InboxChannel
from webhook_relay.channels.wecom import WeComChannel

if TYPE_CHECKING:
    from webhook_relay.config import Target
    from webhook_relay.inbox import Inbox
    from webhook_relay.render import Message


@runtime_checkable
class Channel(Protocol):
    """What the sender needs from a channel.

    `reasons`: every failure reason it can report (metric labels, all counted from 0); `preview`: what
    would be sent, secrets masked (POST /api/v1/preview); `send`: deliver one message and say what
    happened, never raising and never putting a secret in `Result.detail`.
    """

    @property
    def reasons(self) -> tuple[str, ...]: ...

    def preview(self, message: Message, now: float) -> dict[str, Any]: ...

    async def send(self, message: Message, now: float) -> Result: ...


def open_channel(
    name: str, target: Target, *, client: httpx.AsyncClient, inbox: Inbox | None = None
) -> Channel:
    """The channel for target `name` (HTTP robots share `client`; the inbox channel writes to `inbox`)."""
    if target.kind == "dingtalk":
        return DingTalkChannel(target, client)
    if target.kind == "wecom":
        return WeComChannel(target, client)
    if target.kind == "feishu":
        return FeishuChannel(target, client)
    if target.kind == "email":
        return EmailChannel(target)
    if inbox is None:
        raise ValueError(f"target {name}: the inbox channel needs the inbox store")
    return InboxChannel(name, target, inbox)


__all__ = ["DELIVERED", "Channel", "Outcome", "Request", "Result", "open_channel"]
