"""What a channel must say about a reply: delivered, worth retrying, or permanently refused."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Result:
    """`reason` is a short fixed word (a metric label); `detail` is for logs and never holds a secret."""

    outcome: Outcome
    reason: str
    detail: str = ""


DELIVERED = Result(Outcome.DELIVERED, "ok")

# Reasons any channel can report (HTTP level, transport, and the generic code fallbacks below).
COMMON_REASONS = ("timeout", "network", "http_5xx", "http_4xx", "rate_limited", "invalid_response", "errcode")


@dataclass(frozen=True)
class Request:
    url: str
    body: dict[str, Any]


def parse_reply(status: int, content: bytes) -> Result | dict[str, Any]:
    """Common HTTP-level handling; returns the decoded JSON body when the channel must decide."""
    if status == 429:
        return Result(Outcome.TRANSIENT, "rate_limited", "HTTP 429")
    if status >= 500:
        return Result(Outcome.TRANSIENT, "http_5xx", f"HTTP {status}")
    if status >= 400:
        return Result(Outcome.PERMANENT, "http_4xx", f"HTTP {status}")
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # A proxy error page with a 200: the robot did not see the message.
        return Result(Outcome.TRANSIENT, "invalid_response", f"HTTP {status} with a non-JSON body")
    return body


def errcode_result(code: int, message: str, transient: dict[int, str], permanent: dict[int, str]) -> Result:
    """Map a chat API error code; unknown codes are permanent so a human looks at them (dead letter)."""
    detail = f"errcode {code}: {message[:200]}"
    if code in transient:
        return Result(Outcome.TRANSIENT, transient[code], detail)
    return Result(Outcome.PERMANENT, permanent.get(code, "errcode"), detail)


def interpret_errcode(
    status: int, content: bytes, transient: dict[int, str], permanent: dict[int, str]
) -> Result:
    """DingTalk and WeCom style replies: HTTP 200 whatever happened, success only when `errcode` is 0."""
    body = parse_reply(status, content)
    if isinstance(body, Result):
        return body
    code = body.get("errcode")
    if code == 0:
        return DELIVERED
    if not isinstance(code, int):
        return errcode_result(-2, "reply without errcode", {}, {-2: "invalid_response"})
    return errcode_result(code, str(body.get("errmsg", "")), transient, permanent)
