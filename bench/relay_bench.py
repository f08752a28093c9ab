"""webhook-relay benchmark: ingest throughput / time to acknowledge, and end-to-end delivery latency.

Runs the relay as a real process (`python -m webhook_relay`, SQLite WAL with synchronous=FULL, so each
2xx means the notification is on disk) and a local fake chat server. Prints a table and writes
bench/results/relay_bench.json.

    .venv/bin/python bench/relay_bench.py [--posts 3000] [--concurrency 16] [--e2e 100]

Goal (issue 3): at least 500 webhook posts per second acknowledged on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakechat import FakeChat, FakeChatServer  # noqa: E402
from tests.support.env import free_port  # noqa: E402

TOKEN = "bench-token"  # noqa: S105 - throwaway token of a local benchmark relay
GOAL_POSTS_PER_S = 500


def payload(i: int, tag: str) -> dict:
    name = f"{tag}{i}"
    return {
        "version": "4",
        "receiver": "chat-critical",
        "status": "firing",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "severity": "critical", "instance": "ofa-ve:8000"},
                "annotations": {
                    "summary": "benchmark alert",
                    "description": "p99 latency above the SLO for 5m",
                },
                "startsAt": "2026-11-25T02:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
                "fingerprint": f"{i:016x}",
            }
        ],
    }


def start_relay(workdir: Path, chat_url: str, rate: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = workdir / f"relay-{port}.yml"
    config.write_text(
        f"""
server: {{host: 127.0.0.1, port: {port}, auth_token: {TOKEN}}}
storage: {{path: {workdir / f"outbox-{port}.db"}}}
delivery: {{poll_interval_seconds: 0.5, backoff_initial_seconds: 0.2}}
targets:
  dingtalk-ops: {{kind: dingtalk, access_token: bench, secret: bench-secret, url: "{chat_url}/robot/send",
                  rate_limit: {rate}}}
routes:
  critical: {{targets: [dingtalk-ops]}}
""",
        encoding="utf-8",
    )
    env = {**os.environ, "WEBHOOK_RELAY_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "webhook_relay", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("relay did not start")
        time.sleep(0.1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _post_raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One HTTP/1.1 keep-alive POST; returns the status code (the body is read and dropped)."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def ingest(url: str, posts: int, concurrency: int) -> dict:
    """POST `posts` distinct webhooks over `concurrency` keep-alive connections.

    A minimal raw HTTP/1.1 client: on 2 cores an httpx client would spend more CPU per request than
    the relay itself and the benchmark would measure the client.
    """
    host, port = url.removeprefix("http://").split(":")
    requests = []
    for i in range(posts):
        body = json.dumps(payload(i, "Ingest")).encode()
        head = (
            f"POST /webhook/critical HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pending = list(reversed(requests))
    connections = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while pending:
            request = pending.pop()
            t0 = time.perf_counter()
            status = await _post_raw(reader, writer, request)
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    # Warm-up (first SQLite pages, code paths), not counted.
    warm = json.dumps(payload(0, "Warm")).encode()
    await _post_raw(
        *connections[0],
        (
            f"POST /webhook/critical HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(warm)}\r\n\r\n"
        ).encode()
        + warm,
    )
    start = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in connections))
    elapsed = time.perf_counter() - start
    for _, writer in connections:
        writer.close()
    return {
        "posts": posts,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "posts_per_s": round(posts / elapsed, 1),
        "statuses": statuses,
        "ack_p50_ms": round(pct(latencies, 50) * 1000, 2),
        "ack_p99_ms": round(pct(latencies, 99) * 1000, 2),
        "ack_max_ms": round(max(latencies) * 1000, 2),
    }


def e2e(url: str, chat: FakeChat, count: int, gap: float) -> dict:
    sent: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(count):
            sent[f"E2e{i}"] = time.time()
            reply = client.post("/webhook/critical", json=payload(i, "E2e"), headers=headers)
            reply.raise_for_status()
            time.sleep(gap)
    deadline = time.monotonic() + 60
    while len(chat.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    latencies = []
    for message in list(chat.messages):
        found = re.search(r"[\]>] (E2e\d+)\n", message["body"]["markdown"]["text"])
        if found and found.group(1) in sent:
            latencies.append(message["at"] - sent[found.group(1)])
    if not latencies:
        raise SystemExit("no message reached the fake chat server")
    return {
        "messages": count,
        "delivered": len(latencies),
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
        "p99_ms": round(pct(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--e2e", type=int, default=100, help="messages for the end-to-end latency run")
    args = parser.parse_args()

    chat = FakeChat()
    chat.configure({"dingtalk": {"bench": "bench-secret"}})
    server = FakeChatServer(chat).start()
    with tempfile.TemporaryDirectory() as tmp:
        # Ingest with the production rate limit (20/min): the sender is mostly idle, as in an alert storm.
        relay, url = start_relay(Path(tmp), server.url, "{messages: 20, period_seconds: 60}")
        try:
            ingest_result = asyncio.run(ingest(url, args.posts, args.concurrency))
        finally:
            relay.terminate()
            relay.wait(timeout=10)
        chat.reset()
        relay, url = start_relay(Path(tmp), server.url, "{messages: 100000, period_seconds: 1}")
        try:
            e2e_result = e2e(url, chat, args.e2e, gap=0.02)
        finally:
            relay.terminate()
            relay.wait(timeout=10)
    server.stop()

    result = {
        "benchmark": "relay_bench",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "sqlite": "WAL, synchronous=FULL",
        "ingest": ingest_result,
        "end_to_end": e2e_result,
        "goal_posts_per_s": GOAL_POSTS_PER_S,
        "goal_met": ingest_result["posts_per_s"] >= GOAL_POSTS_PER_S,
    }
    rows = [
        (
            "ingest throughput",
            f"{ingest_result['posts_per_s']} posts/s",
            f"goal >= {GOAL_POSTS_PER_S}: {'met' if result['goal_met'] else 'NOT met'}",
        ),
        (
            "ack latency p50 / p99 / max",
            f"{ingest_result['ack_p50_ms']} / {ingest_result['ack_p99_ms']} / "
            f"{ingest_result['ack_max_ms']} ms",
            f"{args.posts} posts, {args.concurrency} concurrent",
        ),
        (
            "end-to-end p50 / p99 / max",
            f"{e2e_result['p50_ms']} / {e2e_result['p99_ms']} / {e2e_result['max_ms']} ms",
            f"{e2e_result['delivered']}/{e2e_result['messages']} delivered to local fake chat",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'metric'.ljust(width)}  {'value':<28} notes")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:<28} {note}")
    print(f"statuses: {ingest_result['statuses']}")
    out = ROOT / "bench" / "results" / "relay_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
