"""Channels: reply interpretation (errcode on HTTP 200 is a failure; transient versus permanent), and
every kind behind the one `Channel` interface."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from webhook_relay.channels import Outcome, dingtalk, feishu, wecom

if TYPE_CHECKING:
    from webhook_relay.config import Target


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


def _targets() -> dict[str, Target]:
    from webhook_relay.config import Target

    return {
        "dingtalk": Target(kind="dingtalk", access_token="dt-secret-token", secret="SECsign"),
        "wecom": Target(kind="wecom", key="wecom-secret-key"),
        "feishu": Target(kind="feishu", token="feishu-secret-token"),
        "email": Target.model_validate({
            "kind": "email", "smtp": {"host": "smtp.test", "sender": "a@relay.test", "username": "u",
                                      "password": "smtp-secret-pass"},
            "recipients": {"critical": ["oncall@ops.test"]},
        }),
        "inbox": Target(kind="inbox"),
    }


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu", "email", "inbox"])
def test_every_kind_is_a_channel_whose_preview_shows_no_secret(tmp_path, kind):
    """open_channel gives each kind one `Channel` (reasons, preview, send); previews mask credentials."""
    import httpx
    from webhook_relay.channels import Channel, open_channel
    from webhook_relay.inbox import Inbox
    from webhook_relay.outbox import Outbox
    from webhook_relay.render import Message

    outbox = Outbox(tmp_path / "o.db")
    try:
        channel = open_channel("t", _targets()[kind], client=httpx.AsyncClient(), inbox=Inbox(outbox))
        assert isinstance(channel, Channel)
        assert channel.reasons and all(isinstance(r, str) for r in channel.reasons)
        preview = json.dumps(channel.preview(Message("[FIRING:1] X", "**x**", severity="critical"), 1.7e9))
        assert "**x**" in preview
        for secret in ("dt-secret-token", "wecom-secret-key", "feishu-secret-token", "smtp-secret-pass"):
            assert secret not in preview
    finally:
        outbox.close()


def test_email_preview_shows_recipients_subject_and_both_parts():
    """The email preview: server, From, the severity's recipients, subject, plain text and HTML."""
    import httpx
    from webhook_relay.channels import open_channel
    from webhook_relay.render import Message

    channel = open_channel("e", _targets()["email"], client=httpx.AsyncClient())
    text = '### <font color="#D93025">🔥 FIRING</font>\n- **Summary**: disk'
    shown = channel.preview(Message("[FIRING:1]\nX", text, status="firing", severity="critical"), 1.7e9)
    assert shown["to"] == ["oncall@ops.test"] and shown["smtp"] == "smtp.test:587 (starttls)"
    assert shown["subject"] == "[FIRING:1] X"  # a header is one line
    assert "<font" not in shown["text"] and "🔥 FIRING" in shown["text"]
    assert '<span style="color:#D93025">🔥 FIRING</span>' in shown["html"] and "#d93025" in shown["html"]
