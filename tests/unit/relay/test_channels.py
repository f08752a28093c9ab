"""Reply interpretation: errcode on HTTP 200 is a failure; transient versus permanent errors."""

from __future__ import annotations

import json

import pytest
from webhook_relay.channels import Outcome, dingtalk, feishu, wecom


def reply(doc) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("module", "body", "outcome", "reason"),
    [
        (dingtalk, {"errcode": 0, "errmsg": "ok"}, Outcome.DELIVERED, "ok"),
        (dingtalk, {"errcode": 130101, "errmsg": "send too fast"}, Outcome.TRANSIENT, "rate_limited"),
        (
            dingtalk,
            {"errcode": 310000, "errmsg": "keywords not in content"},
            Outcome.PERMANENT,
            "security_check",
        ),
        (dingtalk, {"errcode": 300001, "errmsg": "token is not exist"}, Outcome.PERMANENT, "bad_token"),
        (dingtalk, {"errcode": 460101, "errmsg": "message too long"}, Outcome.PERMANENT, "too_long"),
        (wecom, {"errcode": 0, "errmsg": "ok"}, Outcome.DELIVERED, "ok"),
        (wecom, {"errcode": 45009, "errmsg": "api freq out of limit"}, Outcome.TRANSIENT, "rate_limited"),
        (wecom, {"errcode": 93000, "errmsg": "invalid webhook url"}, Outcome.PERMANENT, "bad_token"),
        (wecom, {"errcode": 40058, "errmsg": "content exceed max length"}, Outcome.PERMANENT, "too_long"),
        (feishu, {"code": 0, "msg": "success"}, Outcome.DELIVERED, "ok"),
        (feishu, {"StatusCode": 0, "StatusMessage": "success"}, Outcome.DELIVERED, "ok"),
        (feishu, {"code": 19021, "msg": "sign match fail"}, Outcome.PERMANENT, "signature"),
        (feishu, {"code": 11232, "msg": "frequency limited"}, Outcome.TRANSIENT, "rate_limited"),
    ],
)
def test_http_200_replies(module, body, outcome, reason):
    """The JSON body, not the HTTP status, decides whether a message was delivered."""
    result = module.interpret(200, reply(body))
    assert (result.outcome, result.reason) == (outcome, reason)


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (500, Outcome.TRANSIENT, "http_5xx"),
        (503, Outcome.TRANSIENT, "http_5xx"),
        (429, Outcome.TRANSIENT, "rate_limited"),
        (404, Outcome.PERMANENT, "http_4xx"),
    ],
)
def test_http_status_errors(status, outcome, reason):
    """5xx and 429 are retried; other 4xx are permanent."""
    result = wecom.interpret(status, b"oops")
    assert (result.outcome, result.reason) == (outcome, reason)


def test_non_json_200_is_transient():
    """An HTML page with a 200 (proxy, captive portal) is not a delivery."""
    result = dingtalk.interpret(200, b"<html>gateway</html>")
    assert result.outcome is Outcome.TRANSIENT


def test_unknown_errcode_is_permanent_with_detail():
    """An unknown error code goes to a human (dead letter) with the code in the detail."""
    result = dingtalk.interpret(200, reply({"errcode": 400013, "errmsg": "weird"}))
    assert result.outcome is Outcome.PERMANENT and "400013" in result.detail
