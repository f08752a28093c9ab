"""Chat channels: each builds the HTTP request for a message and interprets the reply."""

from __future__ import annotations

from types import ModuleType

from webhook_relay.channels import dingtalk, feishu, wecom
from webhook_relay.channels.base import DELIVERED, Outcome, Request, Result

CHANNELS: dict[str, ModuleType] = {"dingtalk": dingtalk, "wecom": wecom, "feishu": feishu}


__all__ = ["CHANNELS", "DELIVERED", "Outcome", "Request", "Result"]
