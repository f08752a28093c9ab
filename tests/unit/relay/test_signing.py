"""Signing against vectors computed outside Python with `openssl dgst -sha256 -hmac ... | base64`."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from webhook_relay.channels import dingtalk, feishu
from webhook_relay.config import Target
from webhook_relay.render import Message

# printf '1700000000000\nSEC000secret' | openssl dgst -sha256 -hmac 'SEC000secret' -binary | base64
DINGTALK_B64 = "tTfOwY6eBcGZXnIEbxsq+Nl6fWOBelRgIv5rn6hl3fg="
# printf '' | openssl dgst -sha256 -hmac "$(printf '1700000000\nfeishu-secret')" -binary | base64
FEISHU_B64 = "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="


def test_dingtalk_sign_matches_vector_and_is_url_encoded():
    """DingTalk's sign is HMAC-SHA256(secret, "ts\\nsecret"), base64, then URL-encoded."""
    assert dingtalk.sign(1700000000000, "SEC000secret") == "tTfOwY6eBcGZXnIEbxsq%2BNl6fWOBelRgIv5rn6hl3fg%3D"


def test_dingtalk_request_carries_timestamp_and_sign():
    """The request URL has access_token, the millisecond timestamp and a sign that decodes to the vector."""
    target = Target(kind="dingtalk", access_token="tok", secret="SEC000secret", url="http://chat/robot/send")
    request = dingtalk.build(target, Message(title="t", text="x"), now=1700000000.0)
    query = parse_qs(urlsplit(request.url).query)
    assert query == {"access_token": ["tok"], "timestamp": ["1700000000000"], "sign": [DINGTALK_B64]}


def test_feishu_sign_matches_vector():
    """Feishu signs an empty message with key "ts\\nsecret"."""
    assert feishu.sign(1700000000, "feishu-secret") == FEISHU_B64


def test_feishu_body_carries_timestamp_and_sign():
    """Feishu's timestamp (seconds) and sign go in the JSON body; the token is the last path segment."""
    target = Target(
        kind="feishu", token="hook-token", secret="feishu-secret", url="http://chat/open-apis/bot/v2/hook"
    )
    request = feishu.build(target, Message(title="t", text="x"), now=1700000000.9)
    assert request.url == "http://chat/open-apis/bot/v2/hook/hook-token"
    assert (request.body["timestamp"], request.body["sign"]) == ("1700000000", FEISHU_B64)


def test_unsigned_dingtalk_has_no_sign():
    """Without a secret no timestamp/sign is added."""
    target = Target(kind="dingtalk", access_token="tok")
    request = dingtalk.build(target, Message(title="t", text="x"), now=1.0)
    assert request.url == "https://oapi.dingtalk.com/robot/send?access_token=tok"
