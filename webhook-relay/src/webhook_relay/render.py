"""Turn one Alertmanager notification into the exact messages a target will receive.

Rendering is kept apart from sending (and is deterministic: "now" is the time the notification was
received), so `/api/v1/preview` shows what would be sent and a retry re-renders the same parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2

from webhook_relay.alertmanager import ZERO_TIME, Alert, Notification
from webhook_relay.config import Mention, Target
from webhook_relay.split import ALERT_BOUNDARY, split_text

_SEVERITY_ORDER = ("critical", "warning", "info")
_HIDDEN_LABELS = frozenset({"alertname", "severity"})
_WECOM_COLORS = {"critical": "warning", "warning": "warning", "info": "info", "comment": "comment"}
_DINGTALK_COLORS = {"critical": "#D93025", "warning": "#E37400", "info": "#188038"}


class RenderError(ValueError):
    """A template failed to render."""


@dataclass(frozen=True)
class Message:
    """One message to post: a title (DingTalk/Feishu), markdown text, and who to @mention."""

    title: str
    text: str
    mention: Mention = field(default_factory=Mention)


def _environment(template_path: Path | None) -> jinja2.Environment:
    loader: jinja2.BaseLoader
    if template_path is None:
        loader = jinja2.PackageLoader("webhook_relay", "templates")
    else:
        loader = jinja2.FileSystemLoader(str(template_path.parent))
    # Markdown for chat robots, not HTML: HTML escaping would garble label values.
    return jinja2.Environment(
        loader=loader,
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


class Renderer:
    """Renders notifications for one target; templates are compiled once."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.zone = ZoneInfo(target.timezone)
        name = target.template.name if target.template else f"default.{target.language}.md.j2"
        try:
            self.template = _environment(target.template).get_template(name)
        except jinja2.TemplateError as exc:
            raise RenderError(f"template {target.template or name}: {exc}") from exc

    def _time(self, when: datetime) -> str:
        return when.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    def _duration(self, delta: timedelta) -> str:
        seconds = max(0, int(delta.total_seconds()))
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        zh = self.target.language == "zh"
        units = ("天", "小时", "分", "秒") if zh else ("d", "h", "m", "s")
        shown = [f"{v}{u}" for v, u in zip((days, hours, minutes, secs), units, strict=True) if v]
        return ("" if zh else " ").join(shown[:2]) or f"0{units[3]}"

    def _silence_url(self, external_url: str, alert: Alert) -> str | None:
        if not external_url:
            return None
        matchers = ",".join(f'{k}="{v}"' for k, v in sorted(alert.labels.items()))
        return f"{external_url.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}"

    def _alert(self, alert: Alert, note: Notification, now: datetime) -> dict[str, object]:
        ann = alert.annotations
        ended = alert.status == "resolved" and alert.endsAt > ZERO_TIME
        links = [
            ("source", alert.generatorURL),
            ("runbook", ann.get("runbook_url", "")),
            ("dashboard", ann.get("dashboard_url", "") or (self.target.dashboard_url or "")),
            ("silence", self._silence_url(note.externalURL, alert) or ""),
        ]
        return {
            "status": alert.status,
            "alertname": alert.labels.get("alertname", "alert"),
            "severity": alert.labels.get("severity", "none"),
            "summary": ann.get("summary", ""),
            "description": ann.get("description", ""),
            "labels": {k: v for k, v in alert.labels.items() if k not in _HIDDEN_LABELS},
            "annotations": dict(ann),
            "starts_at": self._time(alert.startsAt),
            "ends_at": self._time(alert.endsAt) if ended else "",
            "duration": self._duration((alert.endsAt if ended else now) - alert.startsAt),
            "links": [(name, url) for name, url in links if url],
            "fingerprint": alert.fingerprint,
        }

    def _color(self, text: str, kind: str) -> str:
        if self.target.kind == "wecom":
            return f'<font color="{_WECOM_COLORS.get(kind, "comment")}">{text}</font>'
        if self.target.kind == "dingtalk" and kind in _DINGTALK_COLORS:
            return f'<font color="{_DINGTALK_COLORS[kind]}">{text}</font>'
        return text

    def mention(self, note: Notification) -> Mention:
        """Who to notify: the mentions configured for the worst firing severity (none for resolved)."""
        firing = {a.labels.get("severity", "") for a in note.alerts if a.status == "firing"}
        if not firing:
            return Mention()
        for severity in _SEVERITY_ORDER:
            if severity in firing:
                return self.target.mention_for(severity)
        return self.target.mention_for("default")

    def mention_line(self, mention: Mention) -> str:
        """Mention markup for the text: DingTalk only notifies mobiles that also appear in the text."""
        kind = self.target.kind
        items: list[str] = []
        if kind == "dingtalk":
            items = [f"@{m}" for m in mention.mobiles] + [f"@{u}" for u in mention.user_ids]
            if mention.all:
                items.append("@all")
        elif kind == "wecom":
            items = [f"<@{u}>" for u in mention.user_ids] + (["<@all>"] if mention.all else [])
        else:
            items = [f"<at id={u}></at>" for u in mention.user_ids] + (
                ["<at id=all></at>"] if mention.all else []
            )
        return ("\n\n" + " ".join(items)) if items else ""

    def title(self, note: Notification) -> str:
        firing = sum(a.status == "firing" for a in note.alerts)
        name = note.commonLabels.get("alertname") or note.groupLabels.get("alertname") or "alerts"
        if firing:
            return f"[FIRING:{firing}] {name}"
        return f"[RESOLVED:{len(note.alerts)}] {name}"

    def render_text(self, note: Notification, received_at: datetime | None = None) -> str:
        """The whole message body with ALERT_BOUNDARY between alerts (before splitting)."""
        now = received_at or datetime.now(UTC)
        alerts = [self._alert(a, note, now) for a in note.alerts]
        group = " ".join(f"{k}={v}" for k, v in sorted(note.groupLabels.items()) if k != "alertname")
        try:
            return self.template.render(
                firing=[a for a in alerts if a["status"] == "firing"],
                resolved=[a for a in alerts if a["status"] == "resolved"],
                status=note.status,
                receiver=note.receiver,
                group_title=group,
                group_labels=note.groupLabels,
                common_labels=note.commonLabels,
                common_annotations=note.commonAnnotations,
                external_url=note.externalURL,
                truncated=note.truncatedAlerts,
                channel=self.target.kind,
                sep=ALERT_BOUNDARY,
                color=self._color,
            )
        except jinja2.TemplateError as exc:
            raise RenderError(f"template rendering failed: {exc}") from exc

    def render(self, note: Notification, received_at: datetime | None = None) -> list[Message]:
        """The messages to post, split to the target's byte limit."""
        mention = self.mention(note)
        text = self.render_text(note, received_at).strip("\n")
        parts = split_text(text, self.target.message_bytes, self.mention_line(mention))
        title = self.title(note)
        if len(parts) == 1:
            return [Message(title=title, text=parts[0], mention=mention)]
        return [
            Message(title=f"{title} ({i}/{len(parts)})", text=part, mention=mention if i == 1 else Mention())
            for i, part in enumerate(parts, start=1)
        ]
