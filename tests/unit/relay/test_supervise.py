"""The supervisor of the relay's background tasks: restarts, counts, and reports health."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry
from webhook_relay.metrics import RelayMetrics
from webhook_relay.supervise import Supervisor


def test_crashed_task_is_restarted_counted_and_reported():
    """A task that raises is restarted after the pause, counted, and shown down while it is down."""
    registry = CollectorRegistry()
    supervisor = Supervisor(RelayMetrics(registry), restart_delay=0.05)
    runs: list[int] = []
    seen_down: list[dict[str, bool]] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("bug")
        await asyncio.sleep(3600)

    async def main() -> None:
        supervisor.add("flaky", "sender", flaky)
        task = asyncio.create_task(supervisor.run())
        for _ in range(100):
            await asyncio.sleep(0.01)
            seen_down.append(supervisor.components())
            if len(runs) == 3:
                break
        await asyncio.sleep(0.01)
        assert supervisor.components() == {"sender": True}
        task.cancel()

    asyncio.run(main())
    assert len(runs) == 3
    assert {"sender": False} in seen_down
    assert registry.get_sample_value("webhook_relay_task_restarts_total", {"task": "flaky"}) == 2


def test_a_task_that_returns_is_restarted_too():
    """A loop that ends without an error is a bug as well: it is restarted and counted."""
    registry = CollectorRegistry()
    supervisor = Supervisor(RelayMetrics(registry), restart_delay=0.0)
    runs: list[int] = []

    async def short() -> None:
        runs.append(1)
        if len(runs) >= 2:
            await asyncio.sleep(3600)

    async def main() -> None:
        supervisor.add("short", "heartbeat_watch", short)
        task = asyncio.create_task(supervisor.run())
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(main())
    assert len(runs) == 2
    assert registry.get_sample_value("webhook_relay_task_restarts_total", {"task": "short"}) == 1


def test_checks_report_parts_that_are_not_tasks():
    """A probed component (the writer thread) is reported before and after the tasks start."""
    supervisor = Supervisor(RelayMetrics(CollectorRegistry()))
    alive = [True]
    supervisor.check("outbox_writer", lambda: alive[0])
    assert supervisor.problems() == []
    alive[0] = False
    assert supervisor.problems() == ["outbox_writer"]


def test_an_optional_task_down_is_shown_but_does_not_make_the_relay_unready():
    """The enricher crashing shows in components() yet is no readiness problem; a sender would be."""
    supervisor = Supervisor(RelayMetrics(CollectorRegistry()), restart_delay=10)

    async def crash() -> None:
        raise RuntimeError("bug")

    async def main() -> tuple[dict[str, bool], list[str]]:
        supervisor.add("enricher", "enrichment", crash, essential=False)
        supervisor.add("sender-x", "sender", crash)
        task = asyncio.create_task(supervisor.run())
        await asyncio.sleep(0.05)
        seen = supervisor.components(), supervisor.problems()
        task.cancel()
        return seen

    components, problems = asyncio.run(main())
    assert components == {"enrichment": False, "sender": False}
    assert problems == ["sender"]
