"""What the chats received during a drill, in simulated time, readable when an assertion fails."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.fakechat.server import message_text

_TITLE = re.compile(r"^\[(FIRING|RESOLVED|\?):(\d+)\] (.+?)(?: \((\d+)/(\d+)\))?$")
# WeCom markdown has no title: status from the first heading, names from the alert lines.
_PART = re.compile(r"^\((\d+)/(\d+)\)\n")
_HEADING = re.compile(r"^### .*?(🔥|✅|💚)[^(（\n]*?[（(](\d+)", re.MULTILINE)
_NAME = re.compile(r"^#### .*?\](?:</font>)? (\w+)$|^- .*?\](?:</font>)? \*\*(\w+)\*\*", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """One chat message: when (simulated seconds since the drill started), where, what."""

    sim_t: float
    channel: str
    status: str  # FIRING | RESOLVED | NOTICE, or ? for a later part of a WeCom message
    alertname: str
    alerts: int
    part: int
    parts: int
    text: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.status, self.alertname)

    def line(self) -> str:
        h, rest = divmod(int(self.sim_t), 3600)
        m, s = divmod(rest, 60)
        part = f" part {self.part}/{self.parts}" if self.parts > 1 else ""
        when = f"+{h:02d}:{m:02d}:{s:02d}"
        return f"{when}  {self.channel:<8} {self.status:<8} {self.alertname} ({self.alerts}){part}"


def _title(body: dict[str, Any]) -> str:
    """The relay's title: DingTalk and Feishu carry it; for WeCom it is rebuilt from the text."""
    if "title" in body.get("markdown", {}):
        return str(body["markdown"]["title"])
    if "header" in body.get("card", {}):
        return str(body["card"]["header"]["title"]["content"])
    text = message_text(body)
    part = _PART.match(text)
    suffix = f" ({part.group(1)}/{part.group(2)})" if part else ""
    heading = _HEADING.search(text)
    names = [a or b for a, b in _NAME.findall(text)]
    if heading is None and part:
        return f"[?:0] ?{suffix}"  # a later part: its heading went with part 1
    if heading is None or heading.group(1) == "💚":
        return text.split("\n", 1)[0].lstrip("# ")
    status = "FIRING" if heading.group(1) == "🔥" else "RESOLVED"
    name = names[0] if len(set(names)) == 1 else (names[0] if names else "?")
    return f"[{status}:{heading.group(2)}] {name}{suffix}"


def parse(messages: Iterable[dict[str, Any]], t0: float, factor: float) -> list[Entry]:
    """Fake-chat messages (DingTalk titles; WeCom headings) as transcript entries."""
    entries = []
    for m in messages:
        body = m["body"]
        text = message_text(body)
        title = _title(body)
        status, name, alerts, part, parts = "NOTICE", title, 0, 1, 1
        if match := _TITLE.match(title):
            status, alerts, name = match.group(1), int(match.group(2)), match.group(3)
            if match.group(4):
                part, parts = int(match.group(4)), int(match.group(5))
        entries.append(Entry((m["at"] - t0) * factor, m["channel"], status, name, alerts, part, parts, text))
    return entries


def render(entries: list[Entry], title: str = "chat transcript") -> str:
    lines = [f"--- {title} ({len(entries)} messages, simulated time) ---"]
    lines += [e.line() for e in entries] or ["(nothing)"]
    return "\n".join(lines)


def keys(entries: list[Entry], channel: str, ignore: set[str] | None = None) -> list[tuple[str, str]]:
    """(status, alertname) of the first part of every message to `channel`, in order."""
    skip = ignore or set()
    return [e.key for e in entries if e.channel == channel and e.part == 1 and e.alertname not in skip]
