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
    assert outbox.stats(now=30.0) == {"a": (0, 0.0, 1, 0), "b": (1, 20.0, 0, 0)}
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


def test_writer_survives_a_caller_that_gave_up(outbox):
    """A webhook whose handler was cancelled before its commit does not kill the group-commit writer."""
    with outbox._lock:  # hold the writer inside its first batch
        first = outbox.submit("r", ["a"], "{}", None, 0, now=1.0)
        abandoned = outbox.submit("r", ["a"], "{}", None, 0, now=1.0)
        assert abandoned.cancel()  # what asyncio.wrap_future does when the handler is cancelled
    assert first.result(timeout=10) is not None
    later = outbox.submit("r", ["a"], "{}", None, 0, now=2.0)
    assert later.result(timeout=10) is not None
    assert outbox.writer_alive
    assert len(outbox.due("a", 2.0)) == 2


def test_writer_survives_an_unexpected_error(outbox, monkeypatch):
    """A non-SQLite error in one batch fails that batch's callers and leaves the writer running."""
    real = outbox._insert
    monkeypatch.setattr(outbox, "_insert", lambda *a: (_ for _ in ()).throw(TypeError("bug")))
    with pytest.raises(StorageError, match="TypeError"):
        outbox.enqueue("r", ["a"], "{}", None, 0, now=1.0)
    monkeypatch.setattr(outbox, "_insert", real)
    assert outbox.enqueue("r", ["a"], "{}", None, 0, now=2.0) is not None
    assert outbox.writer_alive


def test_failing_counts_pending_items_whose_last_attempt_failed(outbox):
    """`failing` holds from the first failed attempt through the backoff until the item is delivered."""
    outbox.enqueue("critical", ["a"], "{}", None, 0, now=1.0)
    [item] = outbox.due("a", 1.0)
    assert outbox.stats(2.0)["a"].failing == 0
    outbox.schedule_retry(item.id, 1, next_attempt_at=600.0, error="HTTP 503", now=2.0)
    assert outbox.stats(300.0)["a"].failing == 1  # waiting for the next attempt: still failing
    outbox.record_part(item.id, 1, done=True, now=600.0)
    assert outbox.stats(601.0).get("a") is None


def test_replay_restarts_the_give_up_clock(outbox):
    """A replayed dead letter's attempts are measured from the replay, not from when it arrived."""
    outbox.enqueue("critical", ["a"], "{}", None, 0, now=100.0)
    [item] = outbox.due("a", 100.0)
    assert item.retry_since == 100.0
    outbox.mark_dead(item.id, "retries_exhausted", "timeout", now=90_000.0)
    outbox.replay(item.id, now=95_000.0)
    [again] = outbox.due("a", 95_000.0)
    assert (again.retry_since, again.attempts) == (95_000.0, 0)


def test_discard_deletes_only_dead_letters(outbox):
    """Discarding removes a dead letter (and its payload once unused) but never a pending delivery."""
    outbox.enqueue("critical", ["a"], '{"big": 1}', None, 0, now=1.0)
    [item] = outbox.due("a", 1.0)
    assert outbox.discard(item.id) is False
    outbox.mark_dead(item.id, "bad_token", "errcode 300001", now=2.0)
    assert outbox.discard(item.id) is True
    assert outbox.dead_letters() == [] and outbox.get(item.id) is None
    assert outbox._read("SELECT COUNT(*) FROM notifications") == [(0,)]


def test_databases_from_before_retry_since_are_migrated(tmp_path):
    """An outbox written by the previous version opens, and its deliveries count from received_at."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE notifications (id INTEGER PRIMARY KEY, route TEXT NOT NULL, "
            "received_at REAL NOT NULL, payload TEXT NOT NULL);"
            "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, notification_id INTEGER NOT NULL, "
            "target TEXT NOT NULL, status TEXT NOT NULL, parts_sent INTEGER NOT NULL DEFAULT 0, "
            "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, updated_at REAL NOT NULL, "
            "reason TEXT, last_error TEXT);"
            "INSERT INTO notifications VALUES (1, 'critical', 50.0, '{}');"
            "INSERT INTO deliveries (notification_id, target, status, next_attempt_at, updated_at) "
            "VALUES (1, 'a', 'pending', 50.0, 50.0);"
        )
    box = Outbox(path)
    [item] = box.due("a", 60.0)
    assert item.retry_since == 50.0
    box.close()
