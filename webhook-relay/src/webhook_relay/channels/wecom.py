"""WeCom group robot: markdown content (4096 bytes), the key is the only secret, `errcode` checked.

A message carrying an image (the evidence chart) goes as `msgtype: image`: the PNG in base64 with its
MD5, at most 2 MB, no hosting needed. It counts against the robot's 20 messages a minute like any other.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlencode

from webhook_relay.channels.base import COMMON_REASONS, Request, Result, interpret_errcode
from webhook_relay.channels.http import HttpChannel
from webhook_relay.config import DEFAULT_URLS, Target
from webhook_relay.render import Message

TRANSIENT = {-1: "busy", 45009: "rate_limited"}
PERMANENT = {93000: "bad_token", 40058: "too_long", 40008: "bad_request", 40009: "bad_image"}
# Every `reason` label value this channel can produce (the failure counters start at 0 for each).
REASONS = tuple(sorted({*COMMON_REASONS, *TRANSIENT.values(), *PERMANENT.values()}))


def build(target: Target, message: Message, now: float) -> Request:
    assert target.key is not None  # guaranteed by config validation
    base = target.url or DEFAULT_URLS["wecom"]
    sep = "&" if "?" in base else "?"
    body: dict[str, Any]
    if message.image is not None:
        checksum = hashlib.md5(message.image).hexdigest()  # noqa: S324 - WeCom's integrity check, not security
        body = {"msgtype": "image",
                "image": {"base64": base64.b64encode(message.image).decode("ascii"), "md5": checksum}}
    else:
        # WeCom markdown mentions live only in the content (`<@userid>`), added by the renderer.
        body = {"msgtype": "markdown", "markdown": {"content": message.text}}
    return Request(url=f"{base}{sep}{urlencode({'key': target.key.get_secret_value()})}", body=body)


def interpret(status: int, content: bytes) -> Result:
    return interpret_errcode(status, content, TRANSIENT, PERMANENT)


class WeComChannel(HttpChannel):
    """The WeCom group robot as a `Channel`."""

    reasons = REASONS

    def build(self, message: Message, now: float) -> Request:
        return build(self.target, message, now)

    def interpret(self, status: int, content: bytes) -> Result:
        return interpret(status, content)
