"""Sends one step's calls to one build over HTTP and records what came back, and the build's RSS meanwhile."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from perf_gate.workload import Call

_RSS = re.compile(rb"^process_resident_memory_bytes(?:\{[^}]*\})? ([0-9.eE+]+)", re.MULTILINE)


@dataclass
class StepRun:
    """One step of one round on one build."""

    step: str
    batch: bool
    wall_s: float = 0.0
    calls: int = 0
    outcomes: int = 0
    unexpected: int = 0
    transport_errors: int = 0
    latencies_s: list[float] = field(default_factory=list)  # answered calls that got what they should
    statuses: Counter[str] = field(default_factory=Counter)
    rss_bytes: list[float] = field(default_factory=list)
    example: str = ""  # the first unexpected outcome, for the report

    @property
    def throughput(self) -> float:
        """Calls per second (batch steps: items per second) over the step's wall time."""
        done = self.outcomes if self.batch else self.calls
        return done / self.wall_s if self.wall_s > 0 else 0.0

    def _unexpected(self, count: int, what: str) -> None:
        self.unexpected += count
        if not self.example:
            self.example = what[:300]


def check(call: Call, status: int, content: bytes, run: StepRun, latency: float) -> None:
    """Counts the call's outcomes against what a correct service answers (see workload.Call)."""
    run.statuses[str(status)] += 1
    if not call.items:
        run.outcomes += 1
        if call.good and status == 200 and b'"label"' in content:
            run.latencies_s.append(latency)
        elif call.good:
            run._unexpected(1, f"{status} for a valid pair: {content[:200]!r}")
        elif not 400 <= status < 500:
            run._unexpected(1, f"{status} for an invalid request (expected a 4xx): {content[:200]!r}")
        return
    run.outcomes += len(call.items)
    if status != 200:
        run._unexpected(len(call.items), f"{status} for a batch call: {content[:200]!r}")
        return
    try:
        results = json.loads(content)["results"]
    except (ValueError, KeyError, TypeError):
        run._unexpected(len(call.items), f"batch answer without results: {content[:200]!r}")
        return
    run.latencies_s.append(latency)
    if not isinstance(results, list) or len(results) != len(call.items):
        got = len(results) if isinstance(results, list) else "no list of"
        run._unexpected(len(call.items), f"batch answer with {got} results for {len(call.items)} items")
        return
    for index, (expect_answer, result) in enumerate(zip(call.items, results, strict=True)):
        answered = isinstance(result, dict) and "label" in result
        refused = isinstance(result, dict) and "error" in result
        if (expect_answer and not answered) or (not expect_answer and not refused):
            wanted = "an answer" if expect_answer else "an error"
            run._unexpected(1, f"batch item {index}: expected {wanted}, got {json.dumps(result)[:200]}")


async def run_step(client: httpx.AsyncClient, base_url: str, step: str, calls: list[Call], concurrency: int,
                   rss_poll_s: float) -> StepRun:
    """Sends `calls` in order with `concurrency` workers, timed from the first send to the last reply."""
    run = StepRun(step=step, batch=bool(calls and calls[0].items))
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(calls):
            call = calls[position]
            position += 1
            started = time.perf_counter()
            try:
                response = await client.post(
                    base_url + call.path, content=call.body, headers={"content-type": call.content_type}
                )
            except httpx.TransportError as exc:
                run.transport_errors += 1
                run.outcomes += call.outcomes
                run.statuses[type(exc).__name__] += 1
                run._unexpected(call.outcomes, f"{type(exc).__name__}: {exc}")
                continue
            check(call, response.status_code, response.content, run, time.perf_counter() - started)

    done = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(client, base_url, rss_poll_s, run, done))
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(calls)))))
    run.wall_s = time.perf_counter() - started
    run.calls = len(calls)
    done.set()
    await sampler
    return run


async def read_rss(client: httpx.AsyncClient, base_url: str) -> float | None:
    """process_resident_memory_bytes from the build's /metrics, or None when it has none."""
    try:
        response = await client.get(f"{base_url}/metrics")
    except httpx.TransportError:
        return None
    found = _RSS.search(response.content) if response.status_code == 200 else None
    return float(found.group(1)) if found else None


async def _sample_rss(client: httpx.AsyncClient, base_url: str, every_s: float, run: StepRun,
                      done: asyncio.Event) -> None:
    while True:
        value = await read_rss(client, base_url)
        if value is not None:
            run.rss_bytes.append(value)
        if done.is_set():
            return
        try:
            await asyncio.wait_for(done.wait(), every_s)
        except TimeoutError:
            pass
