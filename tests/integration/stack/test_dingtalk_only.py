"""The stack with only DingTalk configured (through .env, as an operator would): WeCom, Feishu and email
do not exist, so nothing is sent to them and nothing is dead-lettered for them; .env's secrets win over
generated ones. A second compose project reusing the built images, without ofa-ve (not needed here)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.stack.conftest import COMPOSE_FILES, close_stack, open_stack
from tests.integration.stack.fakechat_client import FakeChatClient
from tests.integration.stack.robots import DINGTALK_SECRET, DINGTALK_TOKEN
from tests.integration.stack.stack import Stack, wait_for
from tests.support.env import require_docker

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.timeout(1200)]

CHOSEN_TOKEN = "dingtalk-only-relay-token-chosen-in-dot-env"
CHOSEN_PASSWORD = "grafana-password-chosen-in-dot-env"


@pytest.fixture(scope="module")
def dingtalk_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """init, relay, Alertmanager, Prometheus and the fake chat, with an env file holding DingTalk's robot
    and both secrets, nothing else."""
    require_docker()
    env = {"DINGTALK_ACCESS_TOKEN": DINGTALK_TOKEN, "DINGTALK_SECRET": DINGTALK_SECRET,
           "RELAY_AUTH_TOKEN": CHOSEN_TOKEN, "GRAFANA_ADMIN_PASSWORD": CHOSEN_PASSWORD}
    stack = open_stack(tmp_path_factory.mktemp("dingtalk-only"), "ofave-dt", COMPOSE_FILES, env,
                       services=["webhook-relay", "alertmanager", "prometheus", "fakechat"])
    try:
        yield stack
    finally:
        close_stack(stack)


def test_only_dingtalk_and_the_inbox_exist(dingtalk_only: Stack) -> None:
    """The start-up line and the inbox API name DingTalk and the inbox live, WeCom, Feishu and email left
    out; .env's token and password are the ones init wrote."""
    records = dingtalk_only.log_records("webhook-relay")
    [line] = [r for r in records if r.get("msg", "").startswith("channels:")]
    assert line["targets"] == {"dingtalk-ops": "dingtalk", "inbox": "inbox"}
    assert line["disabled"] == ["wecom-ops", "feishu-ops", "email-ops"]
    assert dingtalk_only.secret("relay_token") == CHOSEN_TOKEN
    assert dingtalk_only.secret("grafana_admin_password") == CHOSEN_PASSWORD
    init = dingtalk_only.run("logs", "--no-log-prefix", "init")
    assert "from .env (RELAY_AUTH_TOKEN)" in init and "from .env (GRAFANA_ADMIN_PASSWORD)" in init
    assert CHOSEN_TOKEN not in init
    assert DINGTALK_TOKEN not in dingtalk_only.run("exec", "-T", "webhook-relay", "env")


def test_alerts_reach_dingtalk_and_the_inbox_and_nothing_is_dead_lettered(dingtalk_only: Stack) -> None:
    """A test alert and the alerts of the missing ofa-ve reach DingTalk (signed) and the inbox; no request
    goes to another robot, and no dead letter exists anywhere."""
    chat = FakeChatClient(dingtalk_only.url("fakechat", 9000))
    dingtalk_only.run("exec", "-T", "alertmanager", "amtool", "--alertmanager.url=http://127.0.0.1:9093",
                      "alert", "add", "alertname=TestAlert", "severity=warning", "service=manual",
                      "--annotation=summary=manual-test", "--annotation=summary_zh=手动测试")

    def delivered() -> bool:
        titles = [m.title for m in chat.messages("dingtalk")]
        # OfaVeNoReplicas: there is no ofa-ve in this project, a critical alert Prometheus raises itself.
        return any("TestAlert" in t for t in titles) and any("OfaVeNoReplicas" in t for t in titles)

    wait_for(delivered, "TestAlert and OfaVeNoReplicas at DingTalk", timeout=240, interval=3)
    inbox = dingtalk_only.inbox()
    shown = {(m["target"], m["title"]) for m in inbox["messages"]}
    assert ("dingtalk-ops", "[FIRING:1] TestAlert") in shown and ("inbox", "[FIRING:1] TestAlert") in shown
    assert {m["target"] for m in inbox["messages"]} == {"dingtalk-ops", "inbox"}
    assert [m for m in inbox["messages"] if m["outcome"] != "sent"] == []
    assert {m.channel for m in chat.messages()} == {"dingtalk"} and chat.rejected() == []
    relay = dingtalk_only.url("webhook-relay", 8080)
    dead = httpx.get(f"{relay}/api/v1/dead-letters", headers={"Authorization": f"Bearer {CHOSEN_TOKEN}"},
                     timeout=10)
    assert dead.status_code == 200 and dead.json() == {"dead_letters": []}
    metrics = httpx.get(f"{relay}/metrics", timeout=10).text
    dead_gauges = [x for x in metrics.splitlines() if x.startswith("webhook_relay_dead_letters{")]
    assert sorted(x.split(" ")[0] for x in dead_gauges) == [
        'webhook_relay_dead_letters{target="dingtalk-ops"}', 'webhook_relay_dead_letters{target="inbox"}']
    assert all(x.endswith(" 0.0") for x in dead_gauges), dead_gauges
    for absent in ('target="wecom-ops"', 'target="feishu-ops"', 'target="email-ops"', 'channel="wecom"',
                   'channel="feishu"', 'channel="email"'):
        assert absent not in metrics, absent
