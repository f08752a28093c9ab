"""Local days, when each is exported, and which days are due.

A day is the local calendar day in the configured zone (23 or 25 hours across a DST change). Day D is
due at D+1 at SNAPSHOT_AT local time. The days to do are those due and not done, counted from the day
after the newest complete snapshot (a gap left by a day that failed before a later one succeeded is
not retried on its own: `metrics-snapshot run --day D` redoes it), never before the install day (a
fresh install owes nothing for days it was not running) and never more than SNAPSHOT_KEEP_DAYS back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Schedule:
    """When days start, end and are exported, in one zone."""

    zone: ZoneInfo
    at: time
    keep_days: int

    def day_start(self, day: date) -> datetime:
        """Local midnight that starts `day`, as an aware UTC datetime."""
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """[start, end) of the local day, in UTC."""
        return self.day_start(day), self.day_start(day + timedelta(days=1))

    def run_time(self, day: date) -> datetime:
        """When `day` is exported: the next day at SNAPSHOT_AT local time, in UTC."""
        return datetime.combine(day + timedelta(days=1), self.at, tzinfo=self.zone).astimezone(UTC)

    def local_day(self, moment: datetime) -> date:
        """The local day `moment` falls on."""
        return moment.astimezone(self.zone).date()

    def last_due_day(self, now: datetime) -> date:
        """The latest day whose export time has passed."""
        day = self.local_day(now) - timedelta(days=1)
        return day if self.run_time(day) <= now else day - timedelta(days=1)

    def next_run_after(self, now: datetime) -> datetime:
        """The first export time after `now`."""
        return self.run_time(self.last_due_day(now) + timedelta(days=1))

    def pending(self, now: datetime, installed_at: datetime, newest_complete: date | None) -> list[date]:
        """Days due and owed, oldest first (see the module docstring)."""
        due = self.last_due_day(now)
        first = max(self.local_day(installed_at), due - timedelta(days=self.keep_days - 1))
        if newest_complete is not None:
            first = max(first, newest_complete + timedelta(days=1))
        return [first + timedelta(days=i) for i in range((due - first).days + 1)]

    def oldest_kept(self, now: datetime) -> date:
        """The oldest day whose folder is kept (SNAPSHOT_KEEP_DAYS days up to the last due one)."""
        return self.last_due_day(now) - timedelta(days=self.keep_days - 1)
