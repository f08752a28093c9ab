"""The SQLite outbox: durable enqueue, dedup window, retries, dead letters, replay, stats."""

from __future__ import annotations

import sqlite3

import pytest
from webhook_relay.outbox import Outbox, StorageError


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()


def test_enqueue_survives_reopen_and_uses_wal(tmp_path):
    """A committed notification is there after the database is reopened; the journal is WAL."""
    box = Outbox(tmp_path / "o.db")
    nid = box.enqueue("critical", ["a", "b"], '{"x":1}', "k1", 60, now=100.0)
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert [d.notification_id for d in again.due("a", 100.0)] == [nid]
    assert [d.payload for d in again.due("b", 100.0)] == ['{"x":1}']
    with sqlite3.connect(tmp_path / "o.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_duplicate_within_window_is_dropped(outbox):
    """The same key inside the window is a duplicate; after the window it is stored again."""
    assert outbox.enqueue("critical", ["a"], "{}", "k", 60, now=100.0) is not None
    assert outbox.enqueue("critical", ["a"], "{}", "k", 60, now=150.0) is None
    assert outbox.enqueue("critical", ["a"], "{}", "k", 60, now=161.0) is not None
    assert len(outbox.due("a", 200.0)) == 2


def test_retry_schedules_and_hides_until_due(outbox):
    """A delivery scheduled for later is not due before its time."""
    outbox.enqueue("critical", ["a"], "{}", None, 0, now=1.0)
    [item] = outbox.due("a", 1.0)
    outbox.schedule_retry(item.id, 1, next_attempt_at=10.0, error="HTTP 503", now=1.0)
    assert outbox.due("a", 9.9) == []
    [again] = outbox.due("a", 10.0)
    assert again.attempts == 1


def test_parts_progress_then_delivered(outbox):
    """Parts already sent are remembered; a fully sent delivery is no longer pending."""
    outbox.enqueue("critical", ["a"], "{}", None, 0, now=1.0)
    [item] = outbox.due("a", 1.0)
    outbox.record_part(item.id, 1, done=False, now=2.0)
    assert outbox.due("a", 2.0)[0].parts_sent == 1
    outbox.record_part(item.id, 2, done=True, now=3.0)
    assert outbox.due("a", 3.0) == []


def test_dead_letter_listing_replay_and_stats(outbox):
    """Dead letters are listed with their reason, counted, and replay puts them back in the queue."""
    outbox.enqueue("critical", ["a", "b"], "{}", None, 0, now=10.0)
    item = outbox.due("a", 10.0)[0]
    outbox.mark_dead(item.id, "bad_token", "errcode 300001", now=11.0)
    [dead] = outbox.dead_letters()
    assert (dead.id, dead.reason, dead.last_error, dead.target) == (
        item.id,
        "bad_token",
        "errcode 300001",
        "a",
    )
    assert outbox.stats(now=30.0) == {"a": (0, 0.0, 1), "b": (1, 20.0, 0)}
    assert outbox.replay(item.id, now=40.0) is True
    assert outbox.replay(item.id, now=40.0) is False
    assert outbox.dead_letters() == []
    assert [d.id for d in outbox.due("a", 40.0)] == [item.id]


def test_prune_keeps_pending_and_dead(outbox):
    """Pruning drops old delivered rows and dedup keys, never pending or dead ones."""
    outbox.enqueue("r", ["a"], "{}", "k1", 60, now=0.0)
    outbox.enqueue("r", ["a"], "{}", "k2", 60, now=0.0)
    outbox.enqueue("r", ["a"], "{}", "k3", 60, now=0.0)
    first, second, _third = outbox.due("a", 0.0)
    outbox.record_part(first.id, 1, done=True, now=1.0)
    outbox.mark_dead(second.id, "bad_token", "", now=1.0)
    outbox.prune(now=10_000.0, dedup_window=60, keep_delivered=100)
    assert outbox.stats(10_000.0)["a"][0:3:2] == (1, 1)
    assert outbox.enqueue("r", ["a"], "{}", "k1", 60, now=10_000.0) is not None


def test_write_failure_raises_storage_error(tmp_path):
    """A read-only database surfaces as StorageError (the API turns it into a 503)."""
    box = Outbox(tmp_path / "o.db")
    box._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StorageError):
        box.enqueue("r", ["a"], "{}", None, 0, now=1.0)
    with pytest.raises(StorageError):
        box.check_writable(1.0)
    box.close()


def test_concurrent_submits_share_commits_and_dedup_within_a_batch(outbox):
    """Many notifications queued at once are all stored, and a duplicate inside one batch is caught."""
    futures = [outbox.submit("r", ["a"], "{}", f"k{i}", 60, now=1.0) for i in range(200)]
    futures.append(outbox.submit("r", ["a"], "{}", "k0", 60, now=1.0))
    results = [f.result(timeout=10) for f in futures]
    assert len({r for r in results[:200]}) == 200 and None not in results[:200]
    assert results[200] is None
    assert len(outbox.due("a", 1.0, limit=1000)) == 200


def test_send_times_are_kept_for_the_window_then_pruned(tmp_path):
    """recent_sends returns one target's sends after `since`; prune drops those older than keep_sends."""
    box = Outbox(tmp_path / "o.db")
    for at in (10.0, 50.0, 90.0):
        box.record_send("a", at)
    box.record_send("b", 95.0)
    assert box.recent_sends("a", since=40.0) == [50.0, 90.0]
    box.prune(now=100.0, dedup_window=60, keep_delivered=100, keep_sends=30)
    assert box.recent_sends("a", since=0.0) == [90.0]
    assert box.recent_sends("b", since=0.0) == [95.0]
    box.close()
