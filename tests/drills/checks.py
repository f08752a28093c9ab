"""What every drill checks in its transcript, and timings derived from the committed Alertmanager config."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from functools import cache
from typing import Any

import httpx

from tests.drills.compression import load_yaml, seconds
from tests.drills.transcript import Entry, render
from tests.drills.world import World
from tests.support.env import ROOT

_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


@cache
def _alertmanager() -> dict[str, Any]:
    return load_yaml(ROOT / "alertmanager" / "alertmanager.yml")


def route_timing(*, severity: str | None = None, receiver: str | None = None) -> dict[str, float]:
    """group_wait / group_interval / repeat_interval (simulated seconds) of the route an alert of
    `severity`, or the route sending to `receiver`, takes (first matching child of the root)."""
    root = _alertmanager()["route"]
    timing = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
    timing.update({k: root[k] for k in timing if k in root})
    for child in root.get("routes", []):
        if f'severity="{severity}"' in child.get("matchers", []) or child.get("receiver") == receiver:
            timing.update({k: child[k] for k in timing if k in child})
            break
    return {k: seconds(v) for k, v in timing.items()}


def effective_repeat(severity: str | None = None, *, receiver: str | None = None) -> tuple[float, float]:
    """The shortest and longest time between two notifications of a firing alert (a reminder).

    Alertmanager flushes a group every group_interval (its timer restarts after each flush, so flushes
    drift later by the time each takes) and re-sends once the last notification is strictly older than
    repeat_interval. Whether the flush that falls exactly one repeat_interval later is already past it
    depends on that drift against the first send's duration: a 1 h repeat with 5-minute flushes reminds
    after 60 or 65 minutes; a repeat equal to the group_interval every two flushes.
    """
    t = route_timing(severity=severity, receiver=receiver)
    gi, repeat = t["group_interval"], t["repeat_interval"]
    shortest = max(2, math.ceil(repeat / gi)) * gi
    longest = max(shortest, (math.floor(repeat / gi) + 1) * gi)
    return shortest, longest


def assert_reminders(entries: list[Entry], channel: str, name: str, severity: str, end: float) -> int:
    """Every reminder of `name` came on schedule (none swallowed, none extra) until it resolved at `end`.

    Consecutive notifications (firing, then the reminders, then the resolution at `end`) are each at
    most one effective repeat interval apart, reminders at least one, within a minute; returns how many
    firing messages there were.
    """
    shortest, longest = effective_repeat(severity)
    slack = 60.0
    times = [e.sim_t for e in entries if e.channel == channel and e.key == ("FIRING", name) and e.part == 1]
    assert times, f"no FIRING {name} on {channel}\n{render(entries)}"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    report = f"{name} on {channel}: firing at {times}, resolved at {end}\n{render(entries)}"
    assert all(shortest - slack <= g <= longest + slack for g in gaps), report
    # The resolution (or the end of the drill) comes before another reminder would have been due.
    assert end - times[-1] <= longest + slack, report
    return len(times)


def counts(entries: list[Entry], channel: str) -> Counter[tuple[str, str]]:
    return Counter(e.key for e in entries if e.channel == channel and e.part == 1)


def first(entries: list[Entry], channel: str, status: str, name: str) -> Entry:
    found = [e for e in entries if e.channel == channel and e.key == (status, name) and e.part == 1]
    assert found, f"no {status} {name} on {channel}\n{render(entries)}"
    return found[0]


def every_firing_resolved(entries: list[Entry], channel: str, names: set[str]) -> None:
    """Each of `names` that fired on `channel` was resolved later, and never resolved before firing."""
    for name in names:
        fired = [e.sim_t for e in entries if e.channel == channel and e.key == ("FIRING", name)]
        done = [e.sim_t for e in entries if e.channel == channel and e.key == ("RESOLVED", name)]
        if fired:
            assert done and min(done) > min(fired), f"{name} fired and was not resolved\n{render(entries)}"


@cache
def _dashboard_uids() -> frozenset[str]:
    boards = (ROOT / "grafana" / "dashboards").glob("*.json")
    return frozenset(json.loads(p.read_text(encoding="utf-8"))["uid"] for p in boards)


def links_resolve(world: World, entries: list[Entry]) -> None:
    """Every runbook link opens a section of the runbook the relay serves; every dashboard link names
    a provisioned dashboard under the configured Grafana root URL (no Grafana server runs here)."""
    page = httpx.get(f"{world.relay_url}/runbook", timeout=5)
    assert page.status_code == 200
    problems = []
    checked = 0
    for entry in entries:
        for url in _LINK.findall(entry.text):
            if url.startswith(f"{world.relay_url}/runbook"):
                anchor = url.partition("#")[2]
                checked += 1
                if not anchor or f'id="{anchor}"' not in page.text:
                    problems.append(f"{entry.line()}: runbook link {url} has no section")
            elif url.startswith(world.grafana_url):
                uid = url.removeprefix(world.grafana_url).split("?")[0].removeprefix("/d/")
                checked += 1
                if uid not in _dashboard_uids():
                    problems.append(f"{entry.line()}: dashboard link {url} names no dashboard")
            elif "runbook" in url or "/d/" in url:
                problems.append(f"{entry.line()}: link {url} is not this deployment's")
    assert not problems, "\n".join(problems)
    assert checked or not entries, "no runbook or dashboard link in any message"
