"""Fixtures for the relay integration tests: fake chat server, relay process, Alertmanager process."""

from __future__ import annotations

import pytest

from tests.fakechat import FakeChat, FakeChatServer
from tests.integration.relay.harness import AlertmanagerProcess, RelayProcess
from tests.support.env import free_port


@pytest.fixture
def chat():
    """A fake chat server (not started: tests decide when it is up) knowing the test robots."""
    state = FakeChat()
    state.configure({"dingtalk": {"dt-token": "dt-secret"}, "wecom": ["wecom-key"]})
    server = FakeChatServer(state, port=free_port())
    yield server
    server.stop()


@pytest.fixture
def processes(tmp_path):
    """Start relay / Alertmanager processes; everything started is stopped at teardown."""
    started: list[RelayProcess | AlertmanagerProcess] = []

    def relay(config_text: str) -> RelayProcess:
        proc = RelayProcess(tmp_path, config_text)
        started.append(proc)
        return proc

    def alertmanager(relay_url: str) -> AlertmanagerProcess:
        proc = AlertmanagerProcess(tmp_path, relay_url).start()
        started.append(proc)
        return proc

    yield relay, alertmanager
    for proc in reversed(started):
        proc.stop()
