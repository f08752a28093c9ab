"""Fixtures of the incident drills: the fake chat and one healthy replica for the session, a fresh
pipeline (Prometheus, Alertmanager, relay) per drill, and a table of simulated vs real durations."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.drills.compression import Compression
from tests.drills.world import World
from tests.fakechat import FakeChat, FakeChatServer
from tests.support.env import free_port
from tests.support.service import Server, start_server, stop_server

_DURATIONS: list[tuple[str, float, float]] = []


@pytest.fixture(scope="session")
def compression() -> Compression:
    return Compression()


@pytest.fixture(scope="session")
def chat() -> Iterator[FakeChatServer]:
    """The fake DingTalk / WeCom robots and push monitor, shared by every drill (reset before each)."""
    server = FakeChatServer(FakeChat(), port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One healthy ofa-ve replica on the tiny model: without any, OfaVeNoReplicas would fire."""
    server = start_server(tmp_path_factory.mktemp("drill-replica"), "replica",
                          OFA_VE_EXPECTED_REPLICAS="1", OFA_VE_TORCH_THREADS="1")
    yield server
    stop_server(server)


@pytest.fixture
def world(
    request: pytest.FixtureRequest, tmp_path, chat: FakeChatServer, replica: Server, compression: Compression
) -> Iterator[World]:
    """A fresh pipeline for one drill (its transcript and logs go into the report of a failure)."""
    chat.state.reset()
    started = time.monotonic()
    drill = World(tmp_path, chat, [replica], compression)
    try:
        yield drill
    finally:
        real = time.monotonic() - started
        _DURATIONS.append((request.node.name, compression.sim(real), real))
        drill.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A drill's report carries the chat transcript, the heartbeat pings and the logs' tails: shown for a
    failure, and for passing drills with `-rP`."""
    report = yield
    drill = getattr(item, "funcargs", {}).get("world")
    if report.when == "call" and isinstance(drill, World):
        report.sections.append(("drill transcript", drill.report()))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _DURATIONS:
        return
    factor = Compression().factor
    terminalreporter.section(f"incident drills (compression {factor:g}x)")
    terminalreporter.write_line(f"{'drill':<60} {'simulated':>10} {'real':>8}")
    for name, sim, real in _DURATIONS:
        terminalreporter.write_line(f"{name:<60} {sim / 3600:>9.2f}h {real:>7.1f}s")
    terminalreporter.write_line(f"{'total':<60} {sum(s for _, s, _ in _DURATIONS) / 3600:>9.2f}h "
                                f"{sum(r for *_, r in _DURATIONS):>7.1f}s")
