"""The durable outbox: SQLite in WAL mode, one row per (notification, target).

A webhook is acknowledged only after its transaction is committed with `synchronous=FULL`, so an
acknowledged notification survives a crash of the process or the machine. One such commit costs an
fsync (about 4 ms here), so concurrent webhooks are committed together by a writer thread (group
commit): each still waits for its own durable commit, but one fsync serves the whole batch.

The sender works from the `deliveries` table; `parts_sent` lets a restarted sender resume a split
message where it stopped instead of posting the first parts twice.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    route TEXT NOT NULL,
    received_at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL REFERENCES notifications(id),
    target TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    parts_sent INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    reason TEXT,
    last_error TEXT,
    -- Start of the current series of attempts: give-up is measured from here, and a replay restarts it.
    retry_since REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (target, status, next_attempt_at, id);
CREATE TABLE IF NOT EXISTS dedup (key TEXT PRIMARY KEY, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
-- When each message went to each robot: the rate limit must survive a restart (a crash loop must not
-- let a burst through and get the robot throttled for minutes).
CREATE TABLE IF NOT EXISTS sends (target TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sends_by_target ON sends (target, at);
-- The last messages rendered for each target, as sent (or refused): served at GET /inbox.
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    target TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_target ON inbox (target, id);
"""


class StorageError(RuntimeError):
    """The outbox could not store or read data."""


class TargetStats(NamedTuple):
    """What the outbox holds for one target, read at scrape time."""

    pending: int
    oldest_pending_age: float
    dead: int
    # Pending deliveries whose last attempt failed: the robot is failing right now, and stays so
    # during the backoff waits between attempts and across restarts.
    failing: int


@dataclass(frozen=True)
class Delivery:
    id: int
    notification_id: int
    target: str
    route: str
    received_at: float
    payload: str
    parts_sent: int
    attempts: int
    status: str = "pending"
    reason: str | None = None
    last_error: str | None = None
    updated_at: float = 0.0
    retry_since: float = 0.0


_DELIVERY_COLUMNS = (
    "d.id, d.notification_id, d.target, n.route, n.received_at, n.payload, d.parts_sent, d.attempts, "
    "d.status, d.reason, d.last_error, d.updated_at, COALESCE(d.retry_since, n.received_at)"
)


class Outbox:
    """Thread-safe access to the outbox database (one connection, serialised by a lock)."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        self._migrate()
        self._pending: queue.Queue[tuple[tuple[Any, ...], Future[int | None]] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._group_commit_loop, name="outbox-writer", daemon=True)
        self._writer.start()

    def _migrate(self) -> None:
        # Databases written before `retry_since` existed: NULL there means "since received_at".
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(deliveries)")}
        if "retry_since" not in columns:
            self._conn.execute("ALTER TABLE deliveries ADD COLUMN retry_since REAL")

    @property
    def writer_alive(self) -> bool:
        """False once the group-commit thread has ended: webhooks could no longer be stored."""
        return self._writer.is_alive()

    def close(self) -> None:
        self._pending.put(None)
        self._writer.join(timeout=10)
        with self._lock:
            self._conn.close()

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(self._conn)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise StorageError(str(exc)) from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(str(exc)) from exc

    def submit(
        self,
        route: str,
        targets: list[str],
        payload: str,
        dedup_key: str | None,
        dedup_window: float,
        now: float,
    ) -> Future[int | None]:
        """Queue a notification for the next group commit; the future resolves once it is durable.

        Its result is the notification id, or None when it duplicates one seen within the window.
        """
        future: Future[int | None] = Future()
        self._pending.put(((route, targets, payload, dedup_key, dedup_window, now), future))
        return future

    def enqueue(
        self,
        route: str,
        targets: list[str],
        payload: str,
        dedup_key: str | None,
        dedup_window: float,
        now: float,
    ) -> int | None:
        """Store a notification for each target and wait for the commit (see `submit`)."""
        return self.submit(route, targets, payload, dedup_key, dedup_window, now).result(timeout=60)

    def _group_commit_loop(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 512:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._pending.put(None)
                    break
                batch.append(item)
            # A caller that gave up (its handler was cancelled or timed out) cancelled its future:
            # skip it, and mark the others running so a late cancel can no longer break set_result.
            live = [(args, future) for args, future in batch if future.set_running_or_notify_cancel()]
            try:
                self._commit_batch(live)
            except Exception as exc:
                # This thread is the only way in for webhooks: it must outlive any one bad batch.
                log.exception("group commit failed")
                for _, future in live:
                    if not future.done():
                        future.set_exception(StorageError(f"{type(exc).__name__}: {exc}"))

    def _commit_batch(self, batch: list[tuple[tuple[Any, ...], Future[int | None]]]) -> None:
        if not batch:
            return
        results: list[tuple[Future[int | None], int | None, BaseException | None]] = []
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for args, future in batch:
                    # A savepoint per notification: one bad row does not sink the others.
                    self._conn.execute("SAVEPOINT one")
                    try:
                        results.append((future, self._insert(*args), None))
                        self._conn.execute("RELEASE one")
                    except Exception as exc:
                        self._conn.execute("ROLLBACK TO one")
                        self._conn.execute("RELEASE one")
                        kind = "" if isinstance(exc, sqlite3.Error) else f"{type(exc).__name__}: "
                        results.append((future, None, StorageError(f"{kind}{exc}")))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                # Never leave a transaction open: the next batch's BEGIN would fail forever.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                failed = StorageError(str(exc))
                results = [(future, None, failed) for _, future in batch]
        for future, value, error in results:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

    def _insert(
        self,
        route: str,
        targets: list[str],
        payload: str,
        dedup_key: str | None,
        dedup_window: float,
        now: float,
    ) -> int | None:
        conn = self._conn
        if dedup_key is not None and dedup_window > 0:
            row = conn.execute("SELECT seen_at FROM dedup WHERE key = ?", (dedup_key,)).fetchone()
            if row is not None and row[0] >= now - dedup_window:
                return None
            conn.execute("INSERT OR REPLACE INTO dedup (key, seen_at) VALUES (?, ?)", (dedup_key, now))
        cur = conn.execute(
            "INSERT INTO notifications (route, received_at, payload) VALUES (?, ?, ?)", (route, now, payload)
        )
        nid = cur.lastrowid
        conn.executemany(
            "INSERT INTO deliveries (notification_id, target, status, next_attempt_at, updated_at, "
            "retry_since) VALUES (?, ?, 'pending', ?, ?, ?)",
            [(nid, t, now, now, now) for t in targets],
        )
        return nid

    def due(self, target: str, now: float, limit: int = 20) -> list[Delivery]:
        """Pending deliveries of a target whose next attempt is due, oldest first."""
        rows = self._read(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id "  # noqa: S608
            "WHERE d.target = ? AND d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.id LIMIT ?",
            (target, now, limit),
        )
        return [Delivery(*r) for r in rows]

    def next_due_at(self, target: str) -> float | None:
        rows = self._read(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE target = ? AND status = 'pending'", (target,)
        )
        return None if rows[0][0] is None else float(rows[0][0])

    def record_part(self, delivery_id: int, parts_sent: int, done: bool, now: float) -> None:
        """Remember that the first `parts_sent` parts were accepted (all of them when `done`)."""
        status = "delivered" if done else "pending"
        self._write(
            lambda c: c.execute(
                "UPDATE deliveries SET parts_sent = ?, status = ?, updated_at = ?, last_error = NULL "
                "WHERE id = ?",
                (parts_sent, status, now, delivery_id),
            )
        )

    def record_send(self, target: str, at: float) -> None:
        """Remember one request to a robot, for the rate limit after a restart."""
        self._write(lambda c: c.execute("INSERT INTO sends (target, at) VALUES (?, ?)", (target, at)))

    def recent_sends(self, target: str, since: float) -> list[float]:
        """Times of the requests to `target` since `since`, oldest first."""
        rows = self._read("SELECT at FROM sends WHERE target = ? AND at > ? ORDER BY at", (target, since))
        return [row[0] for row in rows]

    def schedule_retry(
        self, delivery_id: int, attempts: int, next_attempt_at: float, error: str, now: float
    ) -> None:
        self._write(
            lambda c: c.execute(
                "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? "
                "WHERE id = ?",
                (attempts, next_attempt_at, error, now, delivery_id),
            )
        )

    def mark_dead(self, delivery_id: int, reason: str, error: str, now: float) -> None:
        self._write(
            lambda c: c.execute(
                "UPDATE deliveries SET status = 'dead', reason = ?, last_error = ?, updated_at = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                (reason, error, now, delivery_id),
            )
        )

    def dead_letters(self, limit: int = 100) -> list[Delivery]:
        rows = self._read(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id "  # noqa: S608
            "WHERE d.status = 'dead' ORDER BY d.id LIMIT ?",
            (limit,),
        )
        return [Delivery(*r) for r in rows]

    def replay(self, delivery_id: int, now: float) -> bool:
        """Put a dead letter back in the queue (parts already accepted are not sent again)."""

        def txn(conn: sqlite3.Connection) -> bool:
            # A replay starts a new series of attempts: give-up is measured from now, not from when
            # Alertmanager first sent it (else a letter dead for a day dies again on its first retry).
            cur = conn.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                "updated_at = ?, retry_since = ?, reason = NULL WHERE id = ? AND status = 'dead'",
                (now, now, now, delivery_id),
            )
            return cur.rowcount == 1

        return self._write(txn)

    def discard(self, delivery_id: int) -> bool:
        """Delete a dead letter for good (the notification goes once no target needs it)."""

        def txn(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM deliveries WHERE id = ? AND status = 'dead'", (delivery_id,))
            conn.execute(
                "DELETE FROM notifications WHERE id NOT IN (SELECT notification_id FROM deliveries)"
            )
            return cur.rowcount == 1

        return self._write(txn)

    def get(self, delivery_id: int) -> Delivery | None:
        rows = self._read(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id "  # noqa: S608
            "WHERE d.id = ?",
            (delivery_id,),
        )
        return Delivery(*rows[0]) if rows else None

    def stats(self, now: float) -> dict[str, TargetStats]:
        """Per target: pending count, age of the oldest pending notification, dead letters, failing."""
        rows = self._read(
            "SELECT d.target, SUM(d.status = 'pending'), "
            "MIN(CASE WHEN d.status = 'pending' THEN n.received_at END), "
            "SUM(d.status = 'dead'), SUM(d.status = 'pending' AND d.attempts > 0) "
            "FROM deliveries d JOIN notifications n ON n.id = d.notification_id "
            "WHERE d.status != 'delivered' GROUP BY d.target"
        )
        return {
            t: TargetStats(
                int(p or 0), max(0.0, now - oldest) if oldest else 0.0, int(dead or 0), int(failing or 0)
            )
            for t, p, oldest, dead, failing in rows
        }

    def add_inbox(self, row: tuple[Any, ...], keep_per_target: int) -> int:
        """Store one inbox row (at, target, channel, status, severity, title, text, outcome, detail) and
        forget that target's rows past the newest `keep_per_target`; returns the row id."""

        def txn(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO inbox (at, target, channel, status, severity, title, text, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            conn.execute(
                "DELETE FROM inbox WHERE target = ? AND id <= "
                "(SELECT id FROM inbox WHERE target = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (row[1], row[1], keep_per_target),
            )
            return int(cursor.lastrowid or 0)

        return self._write(txn)

    def inbox_rows(self, target: str | None, limit: int) -> list[tuple[Any, ...]]:
        """Newest first: (id, at, target, channel, status, severity, title, text, outcome, detail)."""
        columns = "id, at, target, channel, status, severity, title, text, outcome, detail"
        if target is None:
            return self._read(f"SELECT {columns} FROM inbox ORDER BY id DESC LIMIT ?", (limit,))  # noqa: S608
        return self._read(
            f"SELECT {columns} FROM inbox WHERE target = ? ORDER BY id DESC LIMIT ?",  # noqa: S608
            (target, limit),
        )

    def inbox_counts(self) -> dict[str, int]:
        return dict(self._read("SELECT target, COUNT(*) FROM inbox GROUP BY target"))

    def check_writable(self, now: float) -> None:
        """Raise StorageError unless a write can be committed."""
        self._write(lambda c: c.execute("INSERT OR REPLACE INTO heartbeat (id, at) VALUES (1, ?)", (now,)))

    def prune(
        self, now: float, dedup_window: float, keep_delivered: float, keep_sends: float = 3600.0
    ) -> None:
        """Forget old dedup keys, sends and delivered notifications (dead letters stay until replayed)."""

        def txn(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM dedup WHERE seen_at < ?", (now - dedup_window,))
            conn.execute("DELETE FROM sends WHERE at < ?", (now - keep_sends,))
            conn.execute(
                "DELETE FROM deliveries WHERE status = 'delivered' AND updated_at < ?",
                (now - keep_delivered,),
            )
            conn.execute("DELETE FROM notifications WHERE id NOT IN (SELECT notification_id FROM deliveries)")

        self._write(txn)
