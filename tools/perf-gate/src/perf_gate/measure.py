"""Runs the profile's rounds on one or two builds, interleaved, and hands back every step run.

Round r sends step i to the builds in the order (A, B) when r + i is even and (B, A) when it is odd:
each build goes first equally often, and a burst of noise from another tenant lands on both builds'
runs of the same step, a few seconds apart, instead of on one build's whole measurement.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx

from perf_gate.builds import Build
from perf_gate.errors import CouldNotMeasure
from perf_gate.load import StepRun, run_step
from perf_gate.profile import Profile
from perf_gate.stats import percentile
from perf_gate.workload import Call

log = logging.getLogger(__name__)

Rounds = list[dict[str, StepRun]]


@contextmanager
def running(builds: Sequence[Build], start_timeout_s: float) -> Iterator[None]:
    """Starts every build (they load side by side), waits until all are ready, stops them on the way out."""
    try:
        for build in builds:
            build.start()
        started = time.monotonic()
        for build in builds:
            build.wait_ready(max(1.0, start_timeout_s - (time.monotonic() - started)))
            log.info("%s ready after %.1f s", build.role, time.monotonic() - started)
        yield
    finally:
        for build in builds:
            build.stop()


def _line(run: StepRun) -> str:
    lat = run.latencies_s
    p50 = f"{percentile(lat, 50) * 1000:7.1f}" if lat else "      -"
    p95 = f"{percentile(lat, 95) * 1000:7.1f}" if lat else "      -"
    unit = "items/s" if run.batch else "calls/s"
    return (f"{run.calls:4d} calls {run.throughput:7.1f} {unit}  p50 {p50} ms  p95 {p95} ms"
            f"  unexpected {run.unexpected}")


async def measure(profile: Profile, plan: dict[str, list[Call]], builds: Sequence[Build],
                  rounds: int | None = None, first_round: int = 0) -> dict[str, Rounds]:
    """Warm-up (before round 0 only), then `rounds` interleaved rounds numbered from `first_round`;
    per build role, per round, step name -> StepRun."""
    rounds = profile.rounds if rounds is None else rounds
    biggest = max(s.concurrency for s in profile.steps)
    limits = httpx.Limits(max_connections=biggest + 2, max_keepalive_connections=biggest + 2)
    clients = {b.role: httpx.AsyncClient(timeout=profile.request_timeout_s, limits=limits) for b in builds}
    results: dict[str, Rounds] = {b.role: [] for b in builds}
    try:
        if profile.warmup_calls and first_round == 0:
            for step in profile.steps:
                for build in builds:
                    build.check_alive()
                    calls = plan[step.name][: profile.warmup_calls]
                    await run_step(clients[build.role], build.url, step.name, calls, step.concurrency,
                                   profile.rss_poll_s)
            log.info("warm-up done (%d calls of each step per build)", profile.warmup_calls)
        for index, r in enumerate(range(first_round, first_round + rounds)):
            for b in builds:
                results[b.role].append({})
            for i, step in enumerate(profile.steps):
                order = list(builds) if (r + i) % 2 == 0 else list(reversed(builds))
                for build in order:
                    build.check_alive()
                    run = await run_step(clients[build.role], build.url, step.name, plan[step.name],
                                         step.concurrency, profile.rss_poll_s)
                    if run.transport_errors == run.calls:
                        build.check_alive()
                        raise CouldNotMeasure(
                            f"{build.role} ({build.detail}) answered none of the {run.calls} calls of "
                            f"{step.name} in round {r + 1}: {run.example}", build.log_tail())
                    results[build.role][index][step.name] = run
                    log.info("round %d/%d %-12s %-9s %s", r + 1, first_round + rounds, step.name, build.role,
                             _line(run))
    finally:
        for client in clients.values():
            await client.aclose()
    return results


_MODEL_INFO = re.compile(r'^ofa_ve_model_info\{([^}]*)\}\s+1(?:\.0)?\s*$', re.MULTILINE)


def device_of(url: str) -> str | None:
    """The device label of the build's ofa_ve_model_info (from /metrics), e.g. "cpu" or "cuda"."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.TransportError:
        return None
    for labels in _MODEL_INFO.findall(text):
        found = re.search(r'device="([^"]*)"', labels)
        if found:
            return found.group(1)
    return None
