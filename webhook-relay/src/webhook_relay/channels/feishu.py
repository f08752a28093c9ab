"""Feishu / Lark custom bot: an interactive card with markdown; signature in the JSON body."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from webhook_relay.channels.base import (
    COMMON_REASONS,
    DELIVERED,
    Request,
    Result,
    errcode_result,
    parse_reply,
)
from webhook_relay.channels.http import HttpChannel
from webhook_relay.config import DEFAULT_URLS, Target
from webhook_relay.render import Message

TRANSIENT = {11232: "rate_limited"}
PERMANENT = {19021: "signature", 19022: "security_check", 19024: "security_check", 19001: "bad_token"}
# Every `reason` label value this channel can produce (the failure counters start at 0 for each).
REASONS = tuple(sorted({*COMMON_REASONS, *TRANSIENT.values(), *PERMANENT.values()}))


def sign(timestamp_s: int, secret: str) -> str:
    """Base64 HMAC-SHA256 keyed by `"{timestamp}\\n{secret}"` over an empty message (Feishu's scheme)."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def build(target: Target, message: Message, now: float) -> Request:
    assert target.token is not None  # guaranteed by config validation
    base = target.url or DEFAULT_URLS["feishu"]
    body: dict[str, Any] = {
        "msg_type": "interactive",
        "card": {
            "header": {"title": {"tag": "plain_text", "content": message.title}},
            "elements": [{"tag": "markdown", "content": message.text}],
        },
    }
    if target.secret is not None:
        ts = int(now)
        body["timestamp"] = str(ts)
        body["sign"] = sign(ts, target.secret.get_secret_value())
    return Request(url=f"{base.rstrip('/')}/{target.token.get_secret_value()}", body=body)


def interpret(status: int, content: bytes) -> Result:
    body = parse_reply(status, content)
    if isinstance(body, Result):
        return body
    # Feishu answers {"code":0,"msg":"success"}; older deployments {"StatusCode":0,...}.
    code = body.get("code", body.get("StatusCode"))
    if code == 0:
        return DELIVERED
    if not isinstance(code, int):
        return errcode_result(-2, "reply without code", {}, {-2: "invalid_response"})
    return errcode_result(code, str(body.get("msg", body.get("StatusMessage", ""))), TRANSIENT, PERMANENT)


class FeishuChannel(HttpChannel):
    """The Feishu / Lark custom bot as a `Channel`."""

    reasons = REASONS

    def build(self, message: Message, now: float) -> Request:
        return build(self.target, message, now)

    def interpret(self, status: int, content: bytes) -> Result:
        return interpret(status, content)
