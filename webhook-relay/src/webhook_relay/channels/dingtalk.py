"""DingTalk custom robot: markdown with `at`, optional HMAC signing, `errcode` checked on HTTP 200."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus, urlencode

from webhook_relay.channels.base import COMMON_REASONS, Request, Result, interpret_errcode
from webhook_relay.channels.http import HttpChannel
from webhook_relay.config import DEFAULT_URLS, Target
from webhook_relay.render import Message

TRANSIENT = {-1: "busy", 130101: "rate_limited"}
PERMANENT = {300001: "bad_token", 300005: "bad_token", 310000: "security_check", 460101: "too_long"}
# Every `reason` label value this channel can produce (the failure counters start at 0 for each).
REASONS = tuple(sorted({*COMMON_REASONS, *TRANSIENT.values(), *PERMANENT.values()}))


def sign(timestamp_ms: int, secret: str) -> str:
    """URL-encoded base64 HMAC-SHA256 of `"{timestamp}\\n{secret}"` keyed by the secret."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def build(target: Target, message: Message, now: float) -> Request:
    assert target.access_token is not None  # guaranteed by config validation
    params = {"access_token": target.access_token.get_secret_value()}
    query = urlencode(params)
    if target.secret is not None:
        ts = int(now * 1000)
        # sign() is already URL-encoded: append it verbatim.
        query += f"&timestamp={ts}&sign={sign(ts, target.secret.get_secret_value())}"
    base = target.url or DEFAULT_URLS["dingtalk"]
    sep = "&" if "?" in base else "?"
    body = {
        "msgtype": "markdown",
        "markdown": {"title": message.title, "text": message.text},
        "at": {
            "atMobiles": list(message.mention.mobiles),
            "atUserIds": list(message.mention.user_ids),
            "isAtAll": message.mention.all,
        },
    }
    return Request(url=f"{base}{sep}{query}", body=body)


def interpret(status: int, content: bytes) -> Result:
    return interpret_errcode(status, content, TRANSIENT, PERMANENT)


class DingTalkChannel(HttpChannel):
    """The DingTalk custom robot as a `Channel`."""

    reasons = REASONS

    def build(self, message: Message, now: float) -> Request:
        return build(self.target, message, now)

    def interpret(self, status: int, content: bytes) -> Result:
        return interpret(status, content)
