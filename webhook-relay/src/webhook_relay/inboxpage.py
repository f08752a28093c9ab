"""The HTML of GET /inbox: heartbeat first, then the kept messages, newest first, one target or all."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from webhook_relay.heartbeat import BeatStatus
from webhook_relay.inbox import InboxEntry
from webhook_relay.markup import markdown_html
from webhook_relay.render import localized

_STYLE = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "PingFang SC", "Microsoft YaHei", sans-serif;
       margin: 0 auto; max-width: 60rem; padding: 1rem; color: #202124; background: #f8f9fa; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.2rem 0 .5rem; }
.muted { color: #5f6368; font-size: .85rem; }
nav a { display: inline-block; margin: 0 .4rem .4rem 0; padding: .15rem .6rem; border-radius: 1rem;
        background: #e8eaed; color: #202124; text-decoration: none; font-size: .9rem; }
nav a.on { background: #1a73e8; color: #fff; }
article, .beat { background: #fff; border-radius: 6px; margin: 0 0 .8rem; padding: .5rem 1rem;
                 border-left: 6px solid #80868b; box-shadow: 0 1px 2px rgba(0,0,0,.12); }
article.firing { border-left-color: #d93025; } article.resolved { border-left-color: #188038; }
article.notice, .beat { border-left-color: #1a73e8; } article.refused { background: #fce8e6; }
.beat.missing { border-left-color: #d93025; background: #fce8e6; }
.meta span { margin-right: .8rem; } .badge { font-weight: 600; }
.status-firing { color: #d93025; } .status-resolved { color: #188038; } .status-notice { color: #1a73e8; }
pre { background: #f1f3f4; padding: .5rem; overflow-x: auto; white-space: pre-wrap; font-size: .8rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #dadce0; padding: .2rem .5rem; }
article img { max-width: 100%; height: auto; border: 1px solid #dadce0; border-radius: 4px; }
"""


def _time(ts: float | None, zone: ZoneInfo) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return ""
    seconds = max(0, int(now - ts))
    return f" ({seconds // 60} min {seconds % 60} s ago)" if seconds >= 60 else f" ({seconds} s ago)"


def _beat(beat: BeatStatus, zone: ZoneInfo, language: str, now: float) -> str:
    e = html.escape
    missing = beat.alarm_since is not None
    state = '<span class="status-firing">HeartbeatMissing firing</span>' if missing else "alive"
    lines = [f'<div class="beat{" missing" if missing else ""}" data-route="{e(beat.route)}">',
             f"<strong>Heartbeat route <code>{e(beat.route)}</code></strong>: {state}",
             f"<div>Last received: {_time(beat.last_seen, zone)}{_ago(beat.last_seen, now)}; "
             f"{beat.received} since the relay started.</div>"]
    if beat.last is not None:
        for alert in beat.last.alerts:
            name = alert.labels.get("alertname", "?")
            summary = localized(alert.annotations, "summary", language)
            lines.append(f'<div class="alert">🫀 <strong>{e(name)}</strong> {e(summary)}</div>')
    if beat.forward_configured:
        lines.append(f"<div>Forwarded to the push monitor: {e(beat.forward_result or 'not yet')} at "
                     f"{_time(beat.forwarded_at, zone)}{_ago(beat.forwarded_at, now)}.</div>")
    else:
        lines.append('<div class="muted">No external push monitor (HEARTBEAT_URL is empty): only the '
                     "relay's own HeartbeatMissing alarm watches this.</div>")
    lines.append("</div>")
    return "\n".join(lines)


def _entry(entry: InboxEntry, zone: ZoneInfo) -> str:
    e = html.escape
    classes = f"{e(entry.status)}{' refused' if entry.outcome != 'sent' else ''}"
    refused = (f'<div class="status-firing">Refused: {e(entry.detail)}</div>' if entry.outcome != "sent"
               else "")
    return (
        f'<article class="{classes}" data-target="{e(entry.target)}" data-status="{e(entry.status)}">\n'
        f'<div class="meta muted"><span>{_time(entry.at, zone)}</span>'
        f'<span class="badge">{e(entry.target)}</span><span>{e(entry.channel)}</span>'
        f'<span class="status-{e(entry.status)}">{e(entry.status)}</span>'
        f'<span>{e(entry.severity)}</span></div>\n'
        f"<h3>{e(entry.title)}</h3>\n{refused}{markdown_html(entry.text)}\n"
        f"<details><summary class=\"muted\">as sent</summary><pre>{e(entry.text)}</pre></details>\n"
        "</article>"
    )


def render_inbox(
    *,
    entries: Sequence[InboxEntry],
    counts: Mapping[str, int],
    beats: Sequence[BeatStatus],
    targets: Mapping[str, str],
    disabled: Sequence[str],
    selected: str | None,
    zone: ZoneInfo,
    language: str,
    now: float,
    refresh_seconds: int = 15,
) -> str:
    """The whole page. `targets`: configured target -> kind; `disabled`: optional ones left out."""
    e = html.escape
    live = ", ".join(f"{e(n)} ({e(k)})" for n, k in targets.items()) or "none"
    off = (f'<div class="muted">Not configured (no credentials in .env): {e(", ".join(disabled))}</div>'
           if disabled else "")
    on = ' class="on"'
    nav = [f'<a href="inbox"{on if selected is None else ""}>all ({sum(counts.values())})</a>']
    for name in sorted(set(targets) | set(counts)):
        link = "inbox?" + urlencode({"target": name})
        nav.append(f'<a href="{link}"{on if name == selected else ""}>{e(name)} ({counts.get(name, 0)})</a>')
    body = [_entry(entry, zone) for entry in entries] or [
        '<p class="muted">Nothing yet: messages appear here as the relay sends them.</p>'
    ]
    heading = f"Messages to {e(selected)}" if selected else "Messages, newest first"
    beat_html = "".join(_beat(b, zone, language, now) for b in beats) or (
        '<p class="muted">No heartbeat route.</p>'
    )
    return f"""<!doctype html>
<html lang="{e(language)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{refresh_seconds}">
<title>webhook-relay inbox</title><style>{_STYLE}</style></head>
<body>
<h1>webhook-relay inbox</h1>
<div class="muted">Targets: {live}. Page refreshes every {refresh_seconds} s; times in {e(str(zone))}.</div>
{off}
<h2>Heartbeat</h2>
{beat_html}
<h2>{heading}</h2>
<nav>{"".join(nav)}</nav>
{"".join(body)}
</body></html>
"""
