"""Keeps the relay's background tasks running and says which of them are up.

A webhook is acknowledged once it is stored; delivering it depends on tasks nobody awaits. A task
that dies silently (a bug, an unexpected exception) would leave the API accepting webhooks that are
never sent while readiness still says 200. Each task here is restarted after a short pause, every
restart is logged and counted, and `components()` feeds both readiness and a metric.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from webhook_relay.metrics import RelayMetrics

log = logging.getLogger(__name__)


@dataclass
class _Task:
    name: str
    component: str
    factory: Callable[[], Coroutine[Any, Any, None]]
    running: bool = False
    # Readiness depends on it (delivery); optional parts (enrichment) only show in the metric.
    essential: bool = True


class Supervisor:
    def __init__(self, metrics: RelayMetrics, restart_delay: float = 1.0) -> None:
        self.metrics = metrics
        self.restart_delay = restart_delay
        self._tasks: list[_Task] = []
        self._checks: dict[str, Callable[[], bool]] = {}
        self.started = False

    def add(
        self, name: str, component: str, factory: Callable[[], Coroutine[Any, Any, None]],
        *, essential: bool = True,
    ) -> None:
        """Run `factory()` for as long as the supervisor runs; `component` groups tasks for health.

        A task that is not `essential` is restarted and shown like the others, but its being down does
        not make the relay unready: alerts go out without what it adds.
        """
        self._tasks.append(_Task(name, component, factory, essential=essential))

    def check(self, component: str, probe: Callable[[], bool]) -> None:
        """A component that is not a task here (the outbox writer thread), probed when asked."""
        self._checks[component] = probe

    def components(self) -> dict[str, bool]:
        """component -> up. Tasks count only once the supervisor has started them."""
        status = {name: probe() for name, probe in self._checks.items()}
        if self.started:
            for task in self._tasks:
                status[task.component] = status.get(task.component, True) and task.running
        return status

    def problems(self) -> list[str]:
        optional = {t.component for t in self._tasks if not t.essential}
        return sorted(name for name, up in self.components().items() if not up and name not in optional)

    async def run(self) -> None:
        self.metrics.init_tasks(t.name for t in self._tasks)
        self.started = True
        async with asyncio.TaskGroup() as group:
            for task in self._tasks:
                group.create_task(self._keep(task), name=task.name)

    async def _keep(self, task: _Task) -> None:
        while True:
            task.running = True
            try:
                await task.factory()
                log.error("background task ended; restarting it", extra={"task": task.name})
            except asyncio.CancelledError:
                task.running = False
                raise
            except Exception:
                log.exception("background task crashed; restarting it", extra={"task": task.name})
            task.running = False
            self.metrics.task_restarts.labels(task=task.name).inc()
            await asyncio.sleep(self.restart_delay)
