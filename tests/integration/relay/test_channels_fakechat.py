"""Each channel's real HTTP request against the fake chat server, whose signature check is independent."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import pytest
from webhook_relay.channels import Outcome, open_channel
from webhook_relay.config import Target
from webhook_relay.render import Message

from tests.fakechat import FakeChat, FakeChatServer
from tests.support.env import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chat():
    """One fake chat server knowing a signed DingTalk robot, a WeCom key and a signed Feishu bot."""
    state = FakeChat()
    state.configure({"dingtalk": {"dt": "dt-secret"}, "wecom": ["wk"], "feishu": {"fs": "fs-secret"}})
    server = FakeChatServer(state).start()
    yield server
    server.stop()


def send(target: Target) -> tuple[Outcome, str]:
    async def go():
        async with httpx.AsyncClient(timeout=5) as client:
            channel = open_channel("t", target, client=client)
            return await channel.send(Message(title="t", text="hello 你好"), now=time.time())

    result = asyncio.run(go())
    return result.outcome, result.reason


def targets(url: str, secret_suffix: str = "") -> dict[str, Target]:
    return {
        "dingtalk": Target(
            kind="dingtalk", access_token="dt", secret="dt-secret" + secret_suffix, url=f"{url}/robot/send"
        ),
        "wecom": Target(kind="wecom", key="wk" + secret_suffix, url=f"{url}/cgi-bin/webhook/send"),
        "feishu": Target(
            kind="feishu", token="fs", secret="fs-secret" + secret_suffix, url=f"{url}/open-apis/bot/v2/hook"
        ),
    }


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu"])
def test_signed_requests_are_accepted(chat, kind):
    """The relay's requests pass the fake's signature and token checks for every channel."""
    assert send(targets(chat.url)[kind]) == (Outcome.DELIVERED, "ok")
    assert chat.state.texts(kind)[-1] == "hello 你好"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("dingtalk", "security_check"),
        ("wecom", "bad_token"),
        ("feishu", "signature"),
    ],
)
def test_wrong_secret_is_a_permanent_failure(chat, kind, reason):
    """A wrong secret or key is reported by errcode on HTTP 200 and classed as permanent."""
    assert send(targets(chat.url, "-wrong")[kind]) == (Outcome.PERMANENT, reason)


def test_send_test_cli_and_bad_config_exit_codes(chat, tmp_path):
    """`send-test` posts a message now; an invalid config exits 2 naming the key."""
    config = tmp_path / "relay.yml"
    config.write_text(
        f"""
server: {{require_auth: false}}
storage: {{path: {tmp_path / "o.db"}}}
targets:
  wecom-ops: {{kind: wecom, key: wk, url: "{chat.url}/cgi-bin/webhook/send"}}
routes:
  warning: {{targets: [wecom-ops]}}
""",
        encoding="utf-8",
    )
    run = [sys.executable, "-m", "webhook_relay", "--config", str(config)]
    ok = subprocess.run(
        [*run, "send-test", "wecom-ops"], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert "wecom-ops: delivered" in ok.stdout
    assert "RelayTest" in chat.state.texts("wecom")[-1]
    config.write_text(
        config.read_text(encoding="utf-8").replace("key: wk", 'key: "${NOT_SET_ANYWHERE}"'), encoding="utf-8"
    )
    bad = subprocess.run(
        [*run, "check-config"], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert bad.returncode == 2
    assert "targets.wecom-ops.key: environment variable NOT_SET_ANYWHERE is not set" in bad.stderr


def test_fake_chat_control_api_faults_and_messages():
    """The fake's HTTP control API queues faults in order and reports received messages."""
    server = FakeChatServer().start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            client.post("/_fake/config", json={"wecom": ["k"]}).raise_for_status()
            client.post(
                "/_fake/faults", json=[{"status": 503}, {"errcode": 45009, "count": 2}]
            ).raise_for_status()
            body = {"msgtype": "markdown", "markdown": {"content": "x"}}
            replies = [client.post("/cgi-bin/webhook/send?key=k", json=body) for _ in range(4)]
            assert [r.status_code for r in replies] == [503, 200, 200, 200]
            assert [r.json().get("errcode") for r in replies[1:]] == [45009, 45009, 0]
            seen = client.get("/_fake/messages").json()
            assert [m["body"] for m in seen["messages"]] == [body]
            assert [r["errcode"] for r in seen["rejected"]] == [45009, 45009]
            client.delete("/_fake/messages").raise_for_status()
            assert client.get("/_fake/messages").json() == {"messages": [], "rejected": []}
    finally:
        server.stop()


def test_slow_chat_api_is_a_transient_timeout(chat):
    """A reply slower than the client timeout is retried later (transient), not dead-lettered."""
    chat.state.faults.append({"delay": 1.0})
    target = targets(chat.url)["wecom"]

    async def go():
        async with httpx.AsyncClient(timeout=0.2) as client:
            channel = open_channel("t", target, client=client)
            return await channel.send(Message(title="t", text="slow"), time.time())

    result = asyncio.run(go())
    assert (result.outcome, result.reason) == (Outcome.TRANSIENT, "timeout")
