"""perf_gate.load: outcomes are judged against the plan's expectations; RSS is read from /metrics."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from perf_gate.load import StepRun, check, run_step
from perf_gate.workload import Call

GOOD = Call("/v1/entailment", b"{}", "application/json", good=True)
BAD = Call("/v1/entailment", b"{}", "application/json", good=False)
BATCH = Call("/v1/entailment/batch", b"{}", "application/json", good=True, items=(True, False, True))


def _run(batch: bool = False) -> StepRun:
    return StepRun(step="s", batch=batch)


def test_valid_pair_answered_counts_its_latency() -> None:
    """200 to a valid pair is the expected outcome and its latency is kept."""
    run = _run()
    check(GOOD, 200, b'{"label": "YES"}', run, 0.04)
    assert (run.outcomes, run.unexpected, run.latencies_s) == (1, 0, [0.04])


@pytest.mark.parametrize("status", [422, 500, 503, 504])
def test_valid_pair_refused_or_failed_is_unexpected(status: int) -> None:
    """Anything but 200 for a valid pair is an unexpected outcome, with an example kept for the report."""
    run = _run()
    check(GOOD, status, b'{"error": {}}', run, 0.01)
    assert run.unexpected == 1 and not run.latencies_s
    assert str(status) in run.example


def test_valid_pair_answered_without_a_label_is_unexpected() -> None:
    """A 200 whose body carries no label is not an answer."""
    run = _run()
    check(GOOD, 200, b'{"status": "ok"}', run, 0.04)
    assert (run.unexpected, run.latencies_s) == (1, [])


def test_invalid_request_must_get_a_4xx() -> None:
    """A 4xx for a bad input is right (no latency kept); 200 or 500 is not."""
    run = _run()
    check(BAD, 415, b"", run, 0.01)
    check(BAD, 422, b"", run, 0.01)
    assert run.unexpected == 0 and not run.latencies_s
    check(BAD, 200, b"{}", run, 0.01)
    check(BAD, 500, b"{}", run, 0.01)
    assert (run.outcomes, run.unexpected) == (4, 2)


def test_batch_items_are_judged_one_by_one() -> None:
    """Per item: a valid item needs a label, a bad one an error; each mismatch is one unexpected outcome."""
    run = _run(batch=True)
    good = {"results": [{"label": "YES"}, {"error": {"code": "corrupt_image"}}, {"label": "NO"}]}
    check(BATCH, 200, json.dumps(good).encode(), run, 0.2)
    assert (run.outcomes, run.unexpected, run.latencies_s) == (3, 0, [0.2])
    wrong = {"results": [{"label": "YES"}, {"label": "NO"}, {"error": {"code": "inference_failed"}}]}
    check(BATCH, 200, json.dumps(wrong).encode(), run, 0.2)
    assert (run.outcomes, run.unexpected) == (6, 2)
    check(BATCH, 503, b"{}", run, 0.2)
    assert (run.outcomes, run.unexpected) == (9, 5)


def test_run_step_counts_calls_errors_and_rss() -> None:
    """Every call is sent once; a connection failure counts as unexpected; RSS comes from /metrics."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/metrics":
            return httpx.Response(200, text="# HELP x\nprocess_resident_memory_bytes 1.5e+08\n")
        seen.append(request.headers["content-type"])
        if len(seen) == 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"label": "YES"})

    calls = [GOOD] * 10

    async def go() -> StepRun:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await run_step(client, "http://svc", "s", calls, 4, rss_poll_s=0.01)

    run = asyncio.run(go())
    assert run.calls == 10 and len(seen) == 10
    assert (run.outcomes, run.unexpected, run.transport_errors) == (10, 1, 1)
    assert len(run.latencies_s) == 9
    assert run.rss_bytes and set(run.rss_bytes) == {1.5e8}
    assert run.throughput > 0
    assert "ConnectError" in run.example


def test_batch_throughput_counts_items() -> None:
    """A batch step's throughput is items per second, a single step's calls per second."""
    run = StepRun(step="b", batch=True, wall_s=2.0, calls=4, outcomes=32)
    assert run.throughput == 16.0
    single = StepRun(step="s", batch=False, wall_s=2.0, calls=4, outcomes=4)
    assert single.throughput == 2.0
