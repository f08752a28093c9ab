"""The PromQL of every panel target in the Grafana dashboards, made runnable against Prometheus directly."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Grafana's built-in interval variables, at values that fit the test stack's 2 s scrapes.
_BUILTINS = {"__rate_interval": "1m", "__interval": "10s", "__range": "5m", "__range_s": "300"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
# Series that only exist where NVML finds a GPU (ofa_ve_gpu_available itself is always exported).
_GPU_ONLY = re.compile(r"ofa_ve_gpu_(?!available\b)|ofa_ve_torch_memory_")


@dataclass(frozen=True)
class DashboardQuery:
    dashboard: str
    panel: str
    expr: str

    @property
    def promql(self) -> str:
        """The expression with built-ins at fixed values and dashboard variables matching everything."""

        def value(match: re.Match[str]) -> str:
            name = next(g for g in match.groups() if g)
            return _BUILTINS.get(name, ".*")

        return _VARIABLE.sub(value, self.expr)


def needs_gpu(expr: str) -> bool:
    """True for queries over GPU series, which a CPU-only stack cannot produce."""
    return _GPU_ONLY.search(expr) is not None


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows nest their panels


def dashboard_queries(folder: Path) -> list[DashboardQuery]:
    """Every non-hidden PromQL target of every dashboard JSON in `folder`."""
    found = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(doc.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr") and not target.get("hide"):
                    title = doc.get("title", path.stem)
                    found.append(DashboardQuery(title, panel.get("title", "?"), target["expr"]))
    return found


class DashboardCoverage:
    """Which dashboard queries have returned data at some check so far.

    Some panels only have data in a given situation (delivery failures, a firing alert), which the
    tests create one after another; each calls `check` while its situation holds.
    """

    def __init__(self, queries: list[DashboardQuery]) -> None:
        self._pending = {q.promql: q for q in queries}

    def check(self, query: Callable[[str], list[Any]]) -> None:
        """Run every query still without data through `query` and remember those that return some."""
        for promql in list(self._pending):
            if query(promql):
                del self._pending[promql]

    def missing(self) -> list[str]:
        """The queries that never returned data, for a failure message."""
        return [f"{q.dashboard} / {q.panel}: {q.expr}" for q in self._pending.values()]
