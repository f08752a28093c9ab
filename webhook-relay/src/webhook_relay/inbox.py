"""The local inbox: the last messages rendered for every target, kept so that people can see them.

A first-time user without any robot sees the Watchdog and a test alert arrive at GET /inbox, and an
operator sees exactly what each robot, mailbox or the inbox itself was given (or what it refused).
Rows live in the outbox database, `keep_per_target` per target; older ones are deleted on insert.
"""

from __future__ import annotations

from dataclasses import dataclass

from webhook_relay.outbox import Outbox
from webhook_relay.render import Message


@dataclass(frozen=True)
class InboxEntry:
    """One message as a target got it. `outcome`: sent | refused (then `detail` says why)."""

    id: int
    at: float
    target: str
    channel: str
    status: str  # firing | resolved | notice
    severity: str
    title: str
    text: str
    outcome: str
    detail: str


class Inbox:
    """Blocking (SQLite) calls: run them in a thread from the event loop."""

    def __init__(self, outbox: Outbox, keep_per_target: int = 200) -> None:
        self.outbox = outbox
        self.keep_per_target = keep_per_target

    def record(
        self, target: str, channel: str, message: Message, at: float, outcome: str = "sent", detail: str = ""
    ) -> int:
        """Store `message` as given to `target`; raises StorageError when the database refuses."""
        row = (at, target, channel, message.status, message.severity, message.title, message.text,
               outcome, detail)
        return self.outbox.add_inbox(row, self.keep_per_target)

    def entries(self, target: str | None = None, limit: int = 100) -> list[InboxEntry]:
        """Newest first, of one target or of all."""
        return [InboxEntry(*row) for row in self.outbox.inbox_rows(target, limit)]

    def counts(self) -> dict[str, int]:
        """Messages kept per target."""
        return self.outbox.inbox_counts()
