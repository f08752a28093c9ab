"""The durable outbox: SQLite in WAL mode, one row per (notification, target).

A webhook is acknowledged only after its transaction is committed with `synchronous=FULL`, so an
acknowledged notification survives a crash of the process or the machine. One such commit costs an
fsync (about 4 ms here), so concurrent webhooks are committed together by a writer thread (group
commit): each still waits for its own durable commit, but one fsync serves the whole batch.

The sender works from the `deliveries` table; `parts_sent` lets a restarted sender resume a split
message where it stopped instead of posting the first parts twice.

Evidence (webhook_relay.enrichment) lives here too, so it survives a restart like the alert it belongs
to. An alert that is to get evidence is stored with a hold: its deliveries are due at `hold_until` (the
message deadline) and an `enrichments` row waits for the enricher. The enricher may store evidence only
before `hold_until`, in the transaction that makes the deliveries due at once; past it, the alert goes
as it is, and every retry renders it the same way. An analysis that comes later becomes a notification
of its own (`kind = 'analysis'`, `follow_up_of` = the alert), created in the transaction that settles
the analysis, so it exists once or not at all, whatever the process goes through.
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
    payload TEXT NOT NULL,
    -- alert: an Alertmanager webhook (or a notice of the relay); analysis: an analysis that follows one.
    kind TEXT NOT NULL DEFAULT 'alert',
    follow_up_of INTEGER
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
-- Evidence of a notification: waited for until hold_until (state pending), then ready or late.
-- analysis: none | pending | included (in the first message) | sent (as a follow-up) | failed | expired.
CREATE TABLE IF NOT EXISTS enrichments (
    notification_id INTEGER PRIMARY KEY REFERENCES notifications(id) ON DELETE CASCADE,
    hold_until REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'late')),
    analysis TEXT NOT NULL,
    evidence TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS charts (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    png BLOB NOT NULL
);
"""


class Hold(NamedTuple):
    """Deliveries to `targets` wait until `until` for the notification's evidence (see the module doc)."""

    until: float
    targets: tuple[str, ...]
    analysis: bool = False


class EnrichmentJob(NamedTuple):
    """A notification the enricher still has work for."""

    notification_id: int
    route: str
    received_at: float
    payload: str
    hold_until: float
    state: str
    analysis: str
    evidence: str | None = None


class StoredChart(NamedTuple):
    id: str
    created_at: float
    expires_at: float
    png: bytes


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
    # alert | analysis (a follow-up: `payload` is the alert's webhook with the analysis added).
    kind: str = "alert"
    # The evidence JSON, once stored in time (None: render the alert as it is).
    evidence: str | None = None


_DELIVERY_COLUMNS = (
    "d.id, d.notification_id, d.target, n.route, n.received_at, n.payload, d.parts_sent, d.attempts, "
    "d.status, d.reason, d.last_error, d.updated_at, COALESCE(d.retry_since, n.received_at), n.kind, "
    "CASE WHEN e.state = 'ready' THEN e.evidence END"
)
_DELIVERY_FROM = (
    "FROM deliveries d JOIN notifications n ON n.id = d.notification_id "
    "LEFT JOIN enrichments e ON e.notification_id = n.id"
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
        # Databases written before evidence and follow-ups existed: every notification is an alert.
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(notifications)")}
        if "kind" not in columns:
            self._conn.execute("ALTER TABLE notifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'alert'")
        if "follow_up_of" not in columns:
            self._conn.execute("ALTER TABLE notifications ADD COLUMN follow_up_of INTEGER")
        # One follow-up per notification, whatever happens around its creation.
        self._conn.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS one_follow_up ON notifications (follow_up_of) "
            "WHERE follow_up_of IS NOT NULL"
        )

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
        hold: Hold | None = None,
    ) -> Future[int | None]:
        """Queue a notification for the next group commit; the future resolves once it is durable.

        Its result is the notification id, or None when it duplicates one seen within the window. With
        `hold`, the deliveries to its targets wait for evidence (see the module doc).
        """
        future: Future[int | None] = Future()
        self._pending.put(((route, targets, payload, dedup_key, dedup_window, now, hold), future))
        return future

    def enqueue(
        self,
        route: str,
        targets: list[str],
        payload: str,
        dedup_key: str | None,
        dedup_window: float,
        now: float,
        hold: Hold | None = None,
    ) -> int | None:
        """Store a notification for each target and wait for the commit (see `submit`)."""
        return self.submit(route, targets, payload, dedup_key, dedup_window, now, hold).result(timeout=60)

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
        hold: Hold | None = None,
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
        held = set(hold.targets) if hold is not None else set()
        conn.executemany(
            "INSERT INTO deliveries (notification_id, target, status, next_attempt_at, updated_at, "
            "retry_since) VALUES (?, ?, 'pending', ?, ?, ?)",
            [(nid, t, hold.until if hold is not None and t in held else now, now, now) for t in targets],
        )
        if hold is not None and held & set(targets):
            conn.execute(
                "INSERT INTO enrichments (notification_id, hold_until, state, analysis, updated_at) "
                "VALUES (?, ?, 'pending', ?, ?)",
                (nid, hold.until, "pending" if hold.analysis else "none", now),
            )
        return nid

    def due(self, target: str, now: float, limit: int = 20) -> list[Delivery]:
        """Pending deliveries of a target whose next attempt is due, oldest first."""
        rows = self._read(
            f"SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM} "
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
            f"SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM} "
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
            f"SELECT {_DELIVERY_COLUMNS} {_DELIVERY_FROM} "
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
            conn.execute("DELETE FROM charts WHERE expires_at < ?", (now,))

        self._write(txn)

    # --- evidence (webhook_relay.enrichment writes, the sender reads through `due`) -----------------

    def enrichment_jobs(self, limit: int = 50) -> list[EnrichmentJob]:
        """Notifications whose evidence or analysis is still awaited, oldest first."""
        rows = self._read(
            "SELECT e.notification_id, n.route, n.received_at, n.payload, e.hold_until, e.state, e.analysis, "
            "e.evidence FROM enrichments e JOIN notifications n ON n.id = e.notification_id "
            "WHERE e.state = 'pending' OR e.analysis = 'pending' ORDER BY e.notification_id LIMIT ?",
            (limit,),
        )
        return [EnrichmentJob(*r) for r in rows]

    def store_evidence(
        self, notification_id: int, evidence: str, chart: StoredChart | None, analysis: str | None,
        now: float, keep_charts: int = 500,
    ) -> bool:
        """Store the evidence and release the held deliveries, if `now` is before the hold ends.

        `analysis` (included, failed, ...) settles a pending analysis in the same commit. Past the hold
        nothing is stored, the row is marked late and False is returned: the alert has gone (or is
        going) without evidence, and its retries must render it the same way.
        """

        def txn(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE enrichments SET state = 'ready', evidence = ?, updated_at = ? "
                "WHERE notification_id = ? AND state = 'pending' AND hold_until > ?",
                (evidence, now, notification_id, now),
            )
            if cur.rowcount != 1:
                conn.execute(
                    "UPDATE enrichments SET state = 'late', updated_at = ? "
                    "WHERE notification_id = ? AND state = 'pending'",
                    (now, notification_id),
                )
                return False
            if analysis is not None:
                conn.execute(
                    "UPDATE enrichments SET analysis = ? WHERE notification_id = ? AND analysis = 'pending'",
                    (analysis, notification_id),
                )
            if chart is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO charts (id, created_at, expires_at, png) VALUES (?, ?, ?, ?)",
                    (chart.id, chart.created_at, chart.expires_at, chart.png),
                )
                conn.execute(
                    "DELETE FROM charts WHERE id IN "
                    "(SELECT id FROM charts ORDER BY created_at DESC, id LIMIT -1 OFFSET ?)",
                    (keep_charts,),
                )
            conn.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE notification_id = ? AND status = 'pending' "
                "AND attempts = 0 AND parts_sent = 0 AND next_attempt_at > ?",
                (now, notification_id, now),
            )
            return True

        return self._write(txn)

    def expire_evidence(self, notification_id: int, now: float) -> None:
        """The evidence will not come (its hold is over): the alert goes as it is."""
        self._write(
            lambda c: c.execute(
                "UPDATE enrichments SET state = 'late', updated_at = ? "
                "WHERE notification_id = ? AND state = 'pending'",
                (now, notification_id),
            )
        )

    def settle_analysis(self, notification_id: int, outcome: str, now: float) -> bool:
        """A pending analysis ends without a follow-up (`failed`, `expired`); False if already settled."""

        def txn(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE enrichments SET analysis = ?, updated_at = ? "
                "WHERE notification_id = ? AND analysis = 'pending'",
                (outcome, now, notification_id),
            )
            return cur.rowcount == 1

        return self._write(txn)

    def add_follow_up(
        self, notification_id: int, route: str, targets: list[str], payload: str, now: float
    ) -> int | None:
        """Store the follow-up of a notification and settle its analysis as `sent`, in one commit.

        None (and nothing stored) when the analysis is no longer pending: it was included, settled, or
        followed up already. A follow-up is therefore created once at most, across any crash.
        """

        def txn(conn: sqlite3.Connection) -> int | None:
            cur = conn.execute(
                "UPDATE enrichments SET analysis = 'sent', updated_at = ? "
                "WHERE notification_id = ? AND analysis = 'pending'",
                (now, notification_id),
            )
            if cur.rowcount != 1 or not targets:
                return None
            nid = conn.execute(
                "INSERT INTO notifications (route, received_at, payload, kind, follow_up_of) "
                "VALUES (?, ?, ?, 'analysis', ?)",
                (route, now, payload, notification_id),
            ).lastrowid
            conn.executemany(
                "INSERT INTO deliveries (notification_id, target, status, next_attempt_at, updated_at, "
                "retry_since) VALUES (?, ?, 'pending', ?, ?, ?)",
                [(nid, t, now, now, now) for t in targets],
            )
            return nid

        return self._write(txn)

    def delivery_targets(self, notification_id: int) -> list[str]:
        """The targets a notification was stored for (those not dead-lettered), in insertion order."""
        rows = self._read(
            "SELECT target FROM deliveries WHERE notification_id = ? AND status != 'dead' ORDER BY id",
            (notification_id,),
        )
        return [r[0] for r in rows]

    def chart(self, chart_id: str) -> StoredChart | None:
        rows = self._read("SELECT id, created_at, expires_at, png FROM charts WHERE id = ?", (chart_id,))
        return StoredChart(rows[0][0], rows[0][1], rows[0][2], bytes(rows[0][3])) if rows else None
