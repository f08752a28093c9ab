"""The delivery loop with a mocked chat API and a hand-driven clock."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from prometheus_client import CollectorRegistry
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Outbox
from webhook_relay.sender import Sender, backoff_delay

from tests.support.relay import alert, notification, relay_config


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Chat:
    """Answers from a script of replies (default: success) and records what was posted."""

    def __init__(self, *replies) -> None:
        self.replies = list(replies)
        self.posts: list[tuple[str, dict]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posts.append((str(request.url), json.loads(request.content)))
        reply = self.replies.pop(0) if self.replies else {"errcode": 0, "errmsg": "ok"}
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, int):
            return httpx.Response(reply, text="error")
        return httpx.Response(200, json=reply)


@pytest.fixture
def harness(tmp_path):
    opened: list[Outbox] = []

    def make(chat: Chat, **delivery):
        clock = Clock()
        config = relay_config(db=str(tmp_path / "o.db"), **delivery)
        outbox = Outbox(tmp_path / "o.db")
        registry = CollectorRegistry()
        client = httpx.AsyncClient(transport=httpx.MockTransport(chat))
        sender = Sender(config, outbox, RelayMetrics(registry), client, clock=clock, rand=lambda: 0.5)
        opened.append(outbox)
        return sender, outbox, registry, clock

    yield make
    for outbox in opened:
        outbox.close()


def enqueue(outbox, clock, payload=None, targets=("dingtalk-ops",)):
    return outbox.enqueue("critical", list(targets), json.dumps(payload or notification()), None, 0, clock())


def step(sender, target="dingtalk-ops"):
    return asyncio.run(sender.step(target))


def test_delivers_and_counts(harness):
    """A pending notification is posted once, marked delivered and counted with its latency."""
    chat = Chat()
    sender, outbox, registry, clock = harness(chat)
    enqueue(outbox, clock)
    clock.now += 2.5
    assert step(sender) is True
    assert len(chat.posts) == 1
    url, body = chat.posts[0]
    assert "access_token=dt-token" in url and "sign=" in url
    assert body["at"]["atMobiles"] == ["13800000000"]
    assert outbox.due("dingtalk-ops", clock()) == []
    labels = {"target": "dingtalk-ops", "channel": "dingtalk"}
    assert registry.get_sample_value("webhook_relay_messages_delivered_total", labels) == 1
    assert (
        registry.get_sample_value("webhook_relay_delivery_duration_seconds_sum", {"channel": "dingtalk"})
        == 2.5
    )


def test_errcode_on_http_200_is_retried_with_backoff(harness):
    """A 130101 reply (HTTP 200) is a failure: retried after the backoff, then delivered."""
    chat = Chat({"errcode": -1, "errmsg": "busy"})
    sender, outbox, registry, clock = harness(chat)
    enqueue(outbox, clock)
    step(sender)
    [pending] = outbox.due("dingtalk-ops", clock() + 10)
    assert pending.attempts == 1 and "errcode -1" in pending.last_error
    assert (
        registry.get_sample_value(
            "webhook_relay_messages_failed_total",
            {"target": "dingtalk-ops", "channel": "dingtalk", "reason": "busy"},
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "webhook_relay_delivery_retries_total", {"target": "dingtalk-ops", "channel": "dingtalk"}
        )
        == 1
    )
    assert step(sender) is False  # still backing off (0.05 s)
    clock.now += 0.06
    step(sender)
    assert len(chat.posts) == 2 and outbox.due("dingtalk-ops", clock() + 10) == []


def test_rate_limited_reply_pauses_the_target_for_a_window(harness):
    """After "sent too fast" the target stays quiet for a whole rate-limit period."""
    chat = Chat({"errcode": 130101, "errmsg": "send too fast"})
    sender, outbox, _registry, clock = harness(chat)
    enqueue(outbox, clock)
    step(sender)
    clock.now += 59
    assert step(sender) is False
    clock.now += 1.5
    step(sender)
    assert len(chat.posts) == 2


def test_permanent_error_goes_to_dead_letters_once(harness):
    """A bad token is dead-lettered with its reason and not retried."""
    chat = Chat({"errcode": 300001, "errmsg": "token is not exist"})
    sender, outbox, registry, clock = harness(chat)
    enqueue(outbox, clock)
    step(sender)
    clock.now += 100
    step(sender)
    assert len(chat.posts) == 1
    [dead] = outbox.dead_letters()
    assert dead.reason == "bad_token"
    assert (
        registry.get_sample_value(
            "webhook_relay_dead_letters_total", {"target": "dingtalk-ops", "reason": "bad_token"}
        )
        == 1
    )


def test_network_errors_retry_then_give_up_into_dead_letters(harness):
    """Connection errors are retried until give_up_after_seconds, then dead-lettered, never dropped."""
    chat = Chat(*[httpx.ConnectError("refused")] * 5)
    sender, outbox, _registry, clock = harness(chat, give_up_after_seconds=1)
    enqueue(outbox, clock)
    step(sender)
    clock.now += 5
    step(sender)
    [dead] = outbox.dead_letters()
    assert dead.reason == "retries_exhausted" and "ConnectError" in dead.last_error
    assert "dt-token" not in dead.last_error


def test_split_message_resumes_after_the_last_accepted_part(harness):
    """When part 2 of 3 fails, the retry sends parts 2 and 3 only."""
    alerts = [alert(instance=f"host-{i}", description="x" * 1500) for i in range(6)]
    chat = Chat({"errcode": 0}, 503)
    sender, outbox, _registry, clock = harness(chat)
    enqueue(outbox, clock, notification(*alerts), targets=("wecom-ops",))
    step(sender, "wecom-ops")
    assert outbox.due("wecom-ops", clock() + 10)[0].parts_sent == 1
    clock.now += 1
    step(sender, "wecom-ops")
    texts = [body["markdown"]["content"] for _, body in chat.posts]
    total = int(texts[0].split("/", 1)[1].split(")", 1)[0])
    assert total >= 3
    sent = [t.split(")", 1)[0] + ")" for t in texts]
    # Part 2 appears twice (failed, then retried); part 1 only once.
    assert sent == [f"(1/{total})", f"(2/{total})"] + [f"({i}/{total})" for i in range(2, total + 1)]
    assert outbox.due("wecom-ops", clock() + 10) == []


def test_backoff_grows_exponentially_with_bounded_jitter():
    """Delays double per attempt, stop at the maximum, and jitter stays within the ratio."""
    cfg = relay_config(backoff_initial_seconds=1, backoff_max_seconds=30, jitter_ratio=0.2).delivery
    assert [backoff_delay(cfg, n, 0.5) for n in (1, 2, 3, 6, 10)] == [1, 2, 4, 30, 30]
    assert backoff_delay(cfg, 3, 0.0) == pytest.approx(3.2)
    assert backoff_delay(cfg, 3, 0.999999) == pytest.approx(4.8, rel=1e-3)


def test_loop_survives_an_unexpected_error(harness, monkeypatch):
    """An exception inside one delivery attempt is logged and the loop keeps delivering."""
    chat = Chat()
    sender, outbox, _registry, clock = harness(chat)
    clock.now = time.time()
    enqueue(outbox, clock)
    real_deliver = sender.deliver
    calls = []

    async def flaky(name, item):
        calls.append(item.id)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return await real_deliver(name, item)

    monkeypatch.setattr(sender, "deliver", flaky)

    async def run_briefly():
        task = asyncio.create_task(sender._loop("dingtalk-ops"))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if chat.posts:
                break
        task.cancel()

    asyncio.run(run_briefly())
    assert len(calls) >= 2 and len(chat.posts) == 1


def test_sends_of_a_previous_process_still_count_against_the_rate_limit(harness):
    """After a restart the robot's window still holds the sends stored by the previous process."""
    sender, outbox, _registry, clock = harness(Chat())
    for i in range(20):  # dingtalk default: 20 messages per 60 s
        outbox.record_send("dingtalk-ops", clock.now - 30 + i * 0.1)
    outbox.record_send("wecom-ops", clock.now - 61)  # outside its window
    step(sender, "dingtalk-ops")
    step(sender, "wecom-ops")
    assert sender.limiters["dingtalk-ops"].delay(clock.now) == pytest.approx(30.0)
    assert sender.limiters["wecom-ops"].delay(clock.now) == 0.0


def test_each_request_to_a_robot_is_stored(harness):
    """Every post, delivered or not, is stored with its time for the limit after a restart."""
    chat = Chat({"errcode": 130101, "errmsg": "send too fast"})
    sender, outbox, _registry, clock = harness(chat)
    enqueue(outbox, clock)
    step(sender)
    clock.now += 61
    step(sender)
    assert outbox.recent_sends("dingtalk-ops", since=0) == [1000.0, 1061.0]


def _refuse_writes(monkeypatch, outbox, *names):
    """Make the named outbox writes fail as on a full disk; returns a function that heals them."""
    from webhook_relay.outbox import StorageError

    real = {name: getattr(outbox, name) for name in names}

    def full(*_args, **_kwargs):
        raise StorageError("database or disk is full")

    for name in names:
        monkeypatch.setattr(outbox, name, full)
    return lambda: [monkeypatch.setattr(outbox, n, f) for n, f in real.items()]


def test_posted_message_is_not_posted_again_while_its_record_fails(harness, monkeypatch):
    """A post the chat accepted but the full disk could not record is never re-posted (no storm)."""
    chat = Chat()
    sender, outbox, _registry, clock = harness(chat)
    enqueue(outbox, clock)
    heal = _refuse_writes(monkeypatch, outbox, "record_part", "record_send")
    for _ in range(5):
        step(sender)
        clock.now += 1
    assert len(chat.posts) == 1
    heal()
    assert step(sender) is False  # the remembered state is written; nothing is posted
    assert len(chat.posts) == 1 and outbox.due("dingtalk-ops", clock()) == []


def test_failed_post_keeps_its_backoff_while_the_retry_cannot_be_recorded(harness, monkeypatch):
    """A failing robot is retried at its backoff, not at every poll, when the retry is not stored."""
    chat = Chat(503, 503, 503)
    sender, outbox, _registry, clock = harness(chat, backoff_initial_seconds=10, backoff_max_seconds=60)
    enqueue(outbox, clock)
    _refuse_writes(monkeypatch, outbox, "schedule_retry", "record_send")
    step(sender)
    for _ in range(9):
        clock.now += 1
        step(sender)
    assert len(chat.posts) == 1
    clock.now += 1.5
    step(sender)
    assert len(chat.posts) == 2


def test_dead_letter_is_not_retried_while_it_cannot_be_recorded(harness, monkeypatch):
    """A permanent refusal that cannot be stored as a dead letter is not posted again and again."""
    chat = Chat({"errcode": 300001, "errmsg": "token is not exist"})
    sender, outbox, _registry, clock = harness(chat)
    enqueue(outbox, clock)
    heal = _refuse_writes(monkeypatch, outbox, "mark_dead", "record_send")
    for _ in range(4):
        step(sender)
        clock.now += 1
    assert len(chat.posts) == 1
    heal()
    step(sender)
    [dead] = outbox.dead_letters()
    assert dead.reason == "bad_token" and len(chat.posts) == 1


def test_replayed_letter_gets_a_full_give_up_period(harness):
    """After a replay, one transient failure schedules a retry instead of dead-lettering at once."""
    chat = Chat(503)
    sender, outbox, _registry, clock = harness(chat, give_up_after_seconds=3600)
    enqueue(outbox, clock)
    [item] = outbox.due("dingtalk-ops", clock())
    outbox.mark_dead(item.id, "retries_exhausted", "HTTP 503", clock())
    clock.now += 86_400
    outbox.replay(item.id, clock())
    step(sender)
    assert outbox.dead_letters() == []
    assert outbox.get(item.id).attempts == 1


def test_failure_reasons_start_at_zero_and_target_failing_holds_during_backoff(tmp_path):
    """Every reason is exposed at 0 before any failure; target_failing stays 1 between retries."""
    from fastapi.testclient import TestClient
    from webhook_relay.app import create_app

    chat = Chat(503)
    clock = Clock()
    config = relay_config(db=str(tmp_path / "o.db"), backoff_initial_seconds=600, backoff_max_seconds=600)
    outbox = Outbox(tmp_path / "o.db")
    registry = CollectorRegistry()
    client = httpx.AsyncClient(transport=httpx.MockTransport(chat))
    app = create_app(config, registry, outbox, client=client, run_sender=False, clock=clock)
    with TestClient(app) as web:
        web.get("/metrics")
        labels = {"target": "dingtalk-ops", "channel": "dingtalk", "reason": "http_5xx"}
        assert registry.get_sample_value("webhook_relay_messages_failed_total", labels) == 0
        assert registry.get_sample_value(
            "webhook_relay_messages_failed_total", {**labels, "reason": "rate_limited"}
        ) == 0
        enqueue(outbox, clock)
        asyncio.run(app.state.sender.step("dingtalk-ops"))
        for later in (1, 300, 599):
            clock.now += later - (clock.now - 1000)
            assert registry.get_sample_value(
                "webhook_relay_target_failing", {"target": "dingtalk-ops", "channel": "dingtalk"}
            ) == 1
        assert registry.get_sample_value("webhook_relay_messages_failed_total", labels) == 1
        clock.now = 1000 + 800  # past the longest jittered delay (600 s + 20 %)
        asyncio.run(app.state.sender.step("dingtalk-ops"))
        assert registry.get_sample_value(
            "webhook_relay_target_failing", {"target": "dingtalk-ops", "channel": "dingtalk"}
        ) == 0
    outbox.close()
