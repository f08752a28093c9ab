"""Local days, export times and the days owed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from metrics_snapshot.schedule import Schedule

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHEDULE = Schedule(SHANGHAI, time(3, 0), keep_days=30)


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_a_day_is_exported_the_next_morning_at_the_configured_local_time() -> None:
    """2025-06-01 runs at 2025-06-02 03:00 Shanghai time (19:00 UTC the day before)."""
    assert SCHEDULE.run_time(date(2025, 6, 1)) == datetime(2025, 6, 1, 19, 0, tzinfo=UTC)
    assert SCHEDULE.day_bounds(date(2025, 6, 1)) == (datetime(2025, 5, 31, 16, tzinfo=UTC),
                                                      datetime(2025, 6, 1, 16, tzinfo=UTC))


def test_the_last_due_day_changes_at_snapshot_at() -> None:
    """At 02:59 the day before yesterday is the last due; from 03:00, yesterday."""
    assert SCHEDULE.last_due_day(_local("2025-06-02T02:59")) == date(2025, 5, 31)
    assert SCHEDULE.last_due_day(_local("2025-06-02T03:00")) == date(2025, 6, 1)
    assert SCHEDULE.next_run_after(_local("2025-06-02T02:59")) == _local("2025-06-02T03:00")
    assert SCHEDULE.next_run_after(_local("2025-06-02T03:00")) == _local("2025-06-03T03:00")


def test_a_fresh_install_owes_nothing_until_its_first_day_is_due() -> None:
    """Installed at 10:00: nothing is owed that day or the next night before 03:00; then the install day."""
    installed = _local("2025-06-01T10:00")
    assert SCHEDULE.pending(_local("2025-06-01T23:00"), installed, None) == []
    assert SCHEDULE.pending(_local("2025-06-02T02:59"), installed, None) == []
    assert SCHEDULE.pending(_local("2025-06-02T03:00"), installed, None) == [date(2025, 6, 1)]


def test_days_missed_during_downtime_are_owed_after_the_newest_complete_one() -> None:
    """Down from the 3rd to the 6th: the 3rd, 4th and 5th are owed on the morning of the 6th, oldest first."""
    owed = SCHEDULE.pending(_local("2025-06-06T08:00"), _local("2025-05-01T00:00"), date(2025, 6, 2))
    assert owed == [date(2025, 6, 3), date(2025, 6, 4), date(2025, 6, 5)]


def test_a_gap_before_the_newest_complete_day_is_not_owed() -> None:
    """The 3rd and 4th failed, then the 5th succeeded: nothing is owed (redo them with run --day)."""
    assert SCHEDULE.pending(_local("2025-06-06T08:00"), _local("2025-05-01T00:00"), date(2025, 6, 5)) == []


def test_no_more_than_keep_days_are_owed() -> None:
    """After a long outage only the last SNAPSHOT_KEEP_DAYS days are done (older ones would be deleted)."""
    owed = SCHEDULE.pending(_local("2025-09-01T08:00"), _local("2025-01-01T00:00"), date(2025, 3, 1))
    assert len(owed) == 30
    assert owed[-1] == date(2025, 8, 31)
    assert SCHEDULE.oldest_kept(_local("2025-09-01T08:00")) == owed[0]


def test_days_across_a_dst_change_have_23_and_25_hours() -> None:
    """In Berlin the last Sunday of March is 23 hours long and the last Sunday of October 25."""
    berlin = Schedule(ZoneInfo("Europe/Berlin"), time(3, 0), keep_days=7)
    spring, autumn = berlin.day_bounds(date(2025, 3, 30)), berlin.day_bounds(date(2025, 10, 26))
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
