"""The message budget per notification and the links resolved against this deployment's URLs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from webhook_relay.alertmanager import Notification
from webhook_relay.config import Target
from webhook_relay.render import Renderer

from tests.support.relay import alert, notification

RECEIVED = datetime(2026, 11, 25, 3, 30, 0, tzinfo=UTC)
LONG_ZH = "推理服务在高峰期间出现大量超时，队列持续积压，GPU 显存占用接近上限，需要立即扩容或降低批大小。" * 6


def _renderer(kind: str = "wecom", **target) -> Renderer:
    credentials = {"wecom": {"key": "k"}, "dingtalk": {"access_token": "t"}, "feishu": {"token": "f"}}[kind]
    return Renderer(Target(kind=kind, **credentials, **target))


def _group(n: int, description: str = LONG_ZH) -> Notification:
    alerts = [
        alert(name=f"Alert{i:02d}", instance=f"10.0.0.{i}:8000", description=description) for i in range(n)
    ]
    return Notification.model_validate(notification(*alerts, group_key='{}:{service="ofa-ve"}'))


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_a_twenty_alert_group_fits_in_three_messages_per_channel(kind):
    """A 20-alert group with long Chinese descriptions becomes at most 3 messages within byte limits."""
    renderer = _renderer(kind)
    rendered = renderer.render_budgeted(_group(20), RECEIVED)
    assert len(rendered.messages) <= 3
    assert all(len(m.text.encode()) <= renderer.target.message_bytes for m in rendered.messages)
    # WeCom's 4096 bytes cannot hold the full text in 3 messages; the others still can.
    assert (rendered.mode != "full") == (kind == "wecom")


def test_compact_mode_lists_every_alert_and_links_the_cut_text():
    """When compacting is enough, every alert keeps a line, and cut descriptions link the full text."""
    rendered = _renderer("dingtalk", max_messages=1).render_budgeted(_group(20), RECEIVED)
    assert rendered.mode == "compact" and len(rendered.messages) == 1
    text = rendered.messages[0].text
    assert all(f"Alert{i:02d}" in text for i in range(20))
    assert "…" in text and "#/alerts?filter=" in text
    assert LONG_ZH not in text


def test_truncated_mode_counts_what_it_leaves_out():
    """Alerts that fit nowhere are counted in the message with a link to the whole group."""
    renderer = _renderer("wecom", max_messages=1)
    note = _group(60)
    rendered = renderer.render_budgeted(note, RECEIVED)
    text = rendered.messages[0].text
    shown = sum(f"**Alert{i:02d}**" in text for i in range(60))
    assert rendered.mode == "truncated" and len(rendered.messages) == 1
    assert 0 < shown < 60
    assert f"另有 {60 - shown} 条告警未在此列出" in text
    assert "http://alertmanager:9093/#/alerts?filter=" in text


def test_alertmanager_truncation_is_reported_too():
    """Alerts Alertmanager itself left out (max_alerts) are counted in the compact form as well."""
    payload = notification(*[alert(name=f"A{i}", instance=f"h{i}", description=LONG_ZH) for i in range(20)])
    payload["truncatedAlerts"] = 7
    rendered = _renderer("wecom", language="en", max_messages=1).render_budgeted(
        Notification.model_validate(payload), RECEIVED
    )
    text = rendered.messages[0].text
    shown = sum(f"**A{i}**" in text for i in range(20))
    assert f"> {20 - shown + 7} more alert(s) not listed here" in text


def test_small_groups_keep_the_full_template():
    """A group that fits the budget is rendered in full, descriptions uncut."""
    rendered = _renderer("wecom").render_budgeted(_group(2), RECEIVED)
    assert rendered.mode == "full"
    assert LONG_ZH in "".join(m.text for m in rendered.messages)


def test_relative_links_are_resolved_against_the_configured_bases():
    """Path links in annotations become absolute with the base named by the annotation; others stay."""
    a = alert()
    a["annotations"].update(runbook_url="/runbook#servicedown", dashboard_url="/d/ofa-ve-overview?var-x=1")
    links = {"runbook_url": "https://relay.example.com/ops/", "dashboard_url": "https://grafana.example.com"}
    renderer = Renderer(Target(kind="dingtalk", access_token="t"), links)
    [msg] = renderer.render(Notification.model_validate(notification(a)), RECEIVED)
    assert "(https://relay.example.com/ops/runbook#servicedown)" in msg.text
    assert "(https://grafana.example.com/d/ofa-ve-overview?var-x=1)" in msg.text
    assert "(http://prometheus:9090/graph?g0.expr=up)" in msg.text


def test_absolute_links_and_unconfigured_bases_are_left_alone():
    """An absolute runbook URL is kept; a path without a configured base is not invented a host."""
    a = alert()
    a["annotations"]["dashboard_url"] = "/d/x"
    renderer = Renderer(Target(kind="dingtalk", access_token="t"), {"runbook_url": "https://relay.example"})
    [msg] = renderer.render(Notification.model_validate(notification(a)), RECEIVED)
    assert "(https://runbooks.example/#higherrorrate)" in msg.text
    assert "(/d/x)" in msg.text
