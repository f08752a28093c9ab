"""Masking: URLs and free text never show robot tokens."""

from __future__ import annotations

from webhook_relay.masking import mask_url, scrub


def test_query_secrets_masked():
    """access_token, key, sign and timestamp values are replaced."""
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc123&timestamp=1&sign=xyz%2B"
    masked = mask_url(url)
    assert "abc123" not in masked and "xyz" not in masked
    assert masked.startswith("https://oapi.dingtalk.com/robot/send?access_token=<secret>")


def test_feishu_path_token_and_userinfo_masked():
    """A token in the hook path and user:password in the netloc are removed."""
    masked = mask_url("https://user:pw@open.feishu.cn/open-apis/bot/v2/hook/tok-999")
    assert masked == "https://open.feishu.cn/open-apis/bot/v2/hook/<secret>"


def test_scrub_replaces_each_secret():
    """Known secret values are replaced inside arbitrary text."""
    assert scrub("url ?key=K1 and S2", ["K1", "S2", ""]) == "url ?key=<secret> and <secret>"


def test_scrub_masks_urls_in_text():
    """A URL inside an error message loses its query secrets."""
    text = scrub("ConnectError: cannot connect to http://h/robot/send?access_token=T&sign=S%3D (x)", [])
    assert (
        text == "ConnectError: cannot connect to http://h/robot/send?access_token=<secret>&sign=<secret> (x)"
    )
