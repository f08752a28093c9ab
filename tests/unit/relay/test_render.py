"""Templates: firing, resolved, mixed, Chinese and English, mentions, local times and links."""

from __future__ import annotations

from datetime import UTC, datetime

from webhook_relay.alertmanager import Notification
from webhook_relay.config import Mention, Target
from webhook_relay.render import Renderer

from tests.support.relay import alert, notification

RECEIVED = datetime(2026, 11, 25, 3, 30, 0, tzinfo=UTC)


def render(payload, links=None, **target):
    defaults = {"kind": "dingtalk", "access_token": "tok"}
    renderer = Renderer(Target(**{**defaults, **target}), links)
    return renderer.render(Notification.model_validate(payload), RECEIVED)


def test_firing_chinese_has_local_time_duration_and_links():
    """A firing alert shows severity, summary, Asia/Shanghai start time, duration and all links."""
    [msg] = render(notification(alert(description="5xx above SLO")))
    assert msg.title == "[FIRING:1] HighErrorRate"
    assert "告警触发" in msg.text
    assert "[CRITICAL]" in msg.text and "HighErrorRate" in msg.text
    assert "Error ratio above 5%" in msg.text and "5xx above SLO" in msg.text
    assert "2026-11-25 10:00:00 CST" in msg.text  # 02:00Z in UTC+8
    assert "已持续 1小时30分" in msg.text
    assert "(https://runbooks.example/#higherrorrate)" in msg.text
    assert "(http://prometheus:9090/graph?g0.expr=up)" in msg.text
    assert "http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22HighErrorRate%22" in msg.text


def test_resolved_english_has_end_time_and_no_silence_link():
    """A resolved alert shows both times in the target's zone and how long it lasted."""
    payload = notification(alert(status="resolved", ends="2026-11-25T02:45:30Z"))
    [msg] = render(payload, language="en", timezone="Europe/Berlin")
    assert msg.title == "[RESOLVED:1] HighErrorRate"
    assert "RESOLVED" in msg.text and "FIRING" not in msg.text
    assert "Started**: 2026-11-25 03:00:00 CET" in msg.text
    assert "Resolved**: 2026-11-25 03:45:30 CET (lasted 45m 30s)" in msg.text
    assert "silences/new" not in msg.text


def test_mixed_notification_has_both_sections():
    """Firing and resolved alerts of one group are listed in their own sections."""
    payload = notification(
        alert(instance="a"), alert(instance="b", status="resolved", ends="2026-11-25T03:00:00Z")
    )
    [msg] = render(payload, language="en")
    firing, resolved = msg.text.index("FIRING"), msg.text.index("RESOLVED")
    assert firing < msg.text.index("instance=a") < resolved < msg.text.index("instance=b")


def test_dingtalk_mentions_in_at_and_text():
    """DingTalk mobiles are in `at` and in the text, or nobody is notified."""
    mentions = {"critical": Mention(mobiles=["13800000000"]), "warning": Mention(all=True)}
    [msg] = render(notification(alert()), mentions=mentions)
    assert msg.mention.mobiles == ["13800000000"]
    assert msg.text.rstrip().endswith("@13800000000")
    [warn] = render(notification(alert(severity="warning")), mentions=mentions)
    assert warn.mention.all and warn.text.rstrip().endswith("@all")


def test_wecom_mentions_userids_in_content_and_colors():
    """WeCom mentions are <@userid> in the markdown content; colours use WeCom's names."""
    mentions = {"default": Mention(user_ids=["zhangsan"])}
    [msg] = render(
        notification(alert(severity="info")), kind="wecom", key="k", access_token=None, mentions=mentions
    )
    assert "<@zhangsan>" in msg.text
    assert '<font color="info">' in msg.text or '<font color="warning">' in msg.text


def test_resolved_notification_mentions_nobody():
    """Resolved messages do not page people."""
    payload = notification(alert(status="resolved", ends="2026-11-25T03:00:00Z"))
    [msg] = render(payload, mentions={"critical": Mention(mobiles=["13800000000"])})
    assert msg.mention.is_empty() and "@13800000000" not in msg.text


def test_long_group_is_split_for_wecom_with_titles_numbered():
    """A group too big for WeCom's 4096 bytes becomes several numbered messages within the limit."""
    alerts = [alert(instance=f"host-{i}", description="磁盘空间不足 " * 20) for i in range(30)]
    messages = render(notification(*alerts), kind="wecom", key="k", access_token=None, max_messages=50)
    assert len(messages) > 1
    assert all(len(m.text.encode()) <= 4096 for m in messages)
    assert messages[0].text.startswith(f"(1/{len(messages)})")
    joined = "".join(m.text for m in messages)
    assert all(f"instance=host-{i}`" in joined for i in range(30))


def test_custom_template_file(tmp_path):
    """A target's template file replaces the built-in one and gets the same variables."""
    path = tmp_path / "mine.md.j2"
    path.write_text("{% for a in firing %}{{ a.alertname }}@{{ a.starts_at }};{% endfor %}", encoding="utf-8")
    [msg] = render(notification(alert()), template=path, timezone="UTC")
    assert msg.text == "HighErrorRate@2026-11-25 02:00:00 UTC;"
