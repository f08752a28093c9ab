"""Turn one Alertmanager notification into the exact messages a target will receive.

Rendering is kept apart from sending (and is deterministic: "now" is the time the notification was
received), so `/api/v1/preview` shows what would be sent and a retry re-renders the same parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2

from webhook_relay.alertmanager import ZERO_TIME, Alert, Notification
from webhook_relay.charts import ChartLinks
from webhook_relay.config import Mention, Target
from webhook_relay.evidence import Evidence, FollowUp, localize
from webhook_relay.notices import NOTICE_RECEIVER
from webhook_relay.split import ALERT_BOUNDARY, SplitError, split_text

_SEVERITY_ORDER = ("critical", "warning", "info")
_HIDDEN_LABELS = frozenset({"alertname", "severity"})
_WECOM_COLORS = {"critical": "warning", "warning": "warning", "info": "info", "comment": "comment"}
_DINGTALK_COLORS = {"critical": "#D93025", "warning": "#E37400", "info": "#188038"}
# WeCom's robot takes a JPG/PNG of at most 2 MB as an image message (base64 + md5).
MAX_IMAGE_BYTES = 2 * 1024 * 1024
# How evidence is tried, best first: every part with the chart, the short form with the chart, the
# short form alone. The alert's own text is never shortened to make room for evidence.
_EVIDENCE_LEVELS = (("full", True), ("short", True), ("short", False))


class RenderError(ValueError):
    """A template failed to render."""


@dataclass(frozen=True)
class Message:
    """One message to post: a title (DingTalk/Feishu, the email subject), markdown text, who to @mention.

    `status` (firing | resolved | notice) colours it in the inbox; `severity` (the worst of its alerts)
    picks an email target's recipients.
    """

    title: str
    text: str
    mention: Mention = field(default_factory=Mention)
    status: str = "firing"
    severity: str = ""
    # A PNG to post as an image message (WeCom); `text` then says what it shows (inbox, previews).
    image: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Rendered:
    """The messages of one notification and how it was made to fit the message budget.

    `mode`: `full` (the template as written), `compact` (one line per alert) or `truncated`
    (compact, and the alerts that did not fit are counted in the last line).
    """

    messages: list[Message]
    mode: str


# In compact mode a summary or description longer than this many UTF-8 bytes is cut, with a link to
# the full text: bytes, not characters, because the robots' limits are in bytes (a CJK character is 3).
COMPACT_TEXT_BYTES = 180
# Labels that identify an alert well enough for a link to it in Alertmanager's UI.
_KEY_LABELS = ("alertname", "instance", "target", "gpu")


def localized(annotations: Mapping[str, str], name: str, language: str) -> str:
    """Annotation `name` in `language`: `name_zh` for Chinese, `name` for English; the other one only
    when the wanted one is missing or empty, so a message never mixes languages it need not."""
    chinese, english = annotations.get(f"{name}_zh", ""), annotations.get(name, "")
    first, second = (chinese, english) if language == "zh" else (english, chinese)
    return first or second


def _cut(text: str, limit: int) -> tuple[str, bool]:
    text = " ".join(text.split())
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[: limit - 3].decode("utf-8", errors="ignore").rstrip() + "…", True


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
    """Renders notifications for one target; templates are compiled once.

    `links` maps an annotation name (runbook_url, dashboard_url) to the base URL its relative value
    (`/runbook#x`, `/d/uid`) is resolved against, so rules need not know where the stack is served.
    """

    def __init__(
        self, target: Target, links: Mapping[str, str] | None = None, max_messages: int | None = None,
        charts: ChartLinks | None = None,
    ) -> None:
        self.target = target
        self.links = dict(links or {})
        self.max_messages = max_messages or target.max_messages
        self.charts = charts
        self.zone = ZoneInfo(target.timezone)
        name = target.template.name if target.template else f"default.{target.language}.md.j2"
        try:
            self.template = _environment(target.template).get_template(name)
            # Compact mode is built in whatever the main template: a custom template cannot know
            # how to shorten itself, and the budget must hold for it too.
            self.compact = _environment(None).get_template(f"compact.{target.language}.md.j2")
            self.notice = _environment(None).get_template(f"notice.{target.language}.md.j2")
            self.evidence = _environment(None).get_template(f"evidence.{target.language}.md.j2")
            self.follow_up = _environment(None).get_template(f"followup.{target.language}.md.j2")
        except jinja2.TemplateError as exc:
            raise RenderError(f"template {target.template or name}: {exc}") from exc

    def resolve(self, name: str, url: str) -> str:
        """`url` made absolute against the base configured for the link `name`, when it is a path."""
        base = self.links.get(name)
        if base and url.startswith("/") and not url.startswith("//"):
            return base.rstrip("/") + url
        return url

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

    @staticmethod
    def _am_url(external_url: str, page: str, labels: Mapping[str, str]) -> str | None:
        if not external_url:
            return None
        if not labels:
            return f"{external_url.rstrip('/')}/#/{page}"
        matchers = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{external_url.rstrip('/')}/#/{page}?filter={quote('{' + matchers + '}', safe='')}"

    def _silence_url(self, external_url: str, alert: Alert) -> str | None:
        return self._am_url(external_url, "silences/new", alert.labels)

    def _alert(self, alert: Alert, note: Notification, now: datetime) -> dict[str, object]:
        ann = alert.annotations
        ended = alert.status == "resolved" and alert.endsAt > ZERO_TIME
        dashboard = ann.get("dashboard_url") or self.target.dashboard_url or ""
        links = [
            ("source", alert.generatorURL),
            ("runbook", self.resolve("runbook_url", ann.get("runbook_url", ""))),
            ("dashboard", self.resolve("dashboard_url", dashboard)),
            ("silence", self._silence_url(note.externalURL, alert) or ""),
        ]
        language = self.target.language
        summary_text = localized(ann, "summary", language)
        description_text = localized(ann, "description", language)
        summary, _ = _cut(summary_text, COMPACT_TEXT_BYTES)
        short, cut = _cut(description_text, COMPACT_TEXT_BYTES)
        key = {k: v for k, v in alert.labels.items() if k in _KEY_LABELS}
        return {
            "status": alert.status,
            "alertname": alert.labels.get("alertname", "alert"),
            "severity": alert.labels.get("severity", "none"),
            # In the target's language (the other one only when an alert lacks it).
            "summary": summary_text,
            "description": description_text,
            "labels": {k: v for k, v in alert.labels.items() if k not in _HIDDEN_LABELS},
            "annotations": dict(ann),
            "starts_at": self._time(alert.startsAt),
            "ends_at": self._time(alert.endsAt) if ended else "",
            "duration": self._duration((alert.endsAt if ended else now) - alert.startsAt),
            "links": [(name, url) for name, url in links if url],
            "fingerprint": alert.fingerprint,
            # For compact mode: cut texts, and where the whole alert can be read (Alertmanager).
            "short_summary": summary,
            "short_description": short,
            "description_cut": cut,
            "full_url": self._am_url(note.externalURL, "alerts", key or alert.labels) or "",
        }

    def _color(self, text: str, kind: str) -> str:
        if self.target.kind == "wecom":
            return f'<font color="{_WECOM_COLORS.get(kind, "comment")}">{text}</font>'
        # The inbox page turns these into coloured spans; email's plain-text part stays plain.
        if self.target.kind in ("dingtalk", "inbox") and kind in _DINGTALK_COLORS:
            return f'<font color="{_DINGTALK_COLORS[kind]}">{text}</font>'
        return text

    def mention(self, note: Notification) -> Mention:
        """Who to notify: the mentions configured for the worst firing severity (none for resolved)."""
        firing = {a.labels.get("severity", "") for a in note.alerts if a.status == "firing"}
        if not firing or note.receiver == NOTICE_RECEIVER:
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
        elif kind == "feishu":
            items = [f"<at id={u}></at>" for u in mention.user_ids] + (
                ["<at id=all></at>"] if mention.all else []
            )
        return ("\n\n" + " ".join(items)) if items else ""

    @staticmethod
    def status(note: Notification) -> str:
        """firing | resolved | notice: how the inbox colours the messages of `note`."""
        return "notice" if note.receiver == NOTICE_RECEIVER else note.status

    @staticmethod
    def severity(note: Notification) -> str:
        """The worst severity of the firing alerts (of all alerts once every one has resolved)."""
        alerts = [a for a in note.alerts if a.status == "firing"] or note.alerts
        found = {a.labels.get("severity", "") for a in alerts}
        return next((s for s in _SEVERITY_ORDER if s in found), "default")

    def title(self, note: Notification) -> str:
        if note.receiver == NOTICE_RECEIVER:
            return localized(note.alerts[0].annotations, "summary", self.target.language) or "webhook-relay"
        firing = sum(a.status == "firing" for a in note.alerts)
        name = note.commonLabels.get("alertname") or note.groupLabels.get("alertname") or "alerts"
        if firing:
            return f"[FIRING:{firing}] {name}"
        return f"[RESOLVED:{len(note.alerts)}] {name}"

    def render_text(
        self, note: Notification, received_at: datetime | None = None, *, shown: int | None = None
    ) -> str:
        """The whole message body with ALERT_BOUNDARY between alerts (before splitting).

        With `shown`, the built-in compact form of the first `shown` alerts (firing first) and a
        count of the others.
        """
        now = received_at or datetime.now(UTC)
        alerts = [self._alert(a, note, now) for a in note.alerts]
        firing = [a for a in alerts if a["status"] == "firing"]
        resolved = [a for a in alerts if a["status"] == "resolved"]
        group = " ".join(f"{k}={v}" for k, v in sorted(note.groupLabels.items()) if k != "alertname")
        template, extra = self.template, {}
        if note.receiver == NOTICE_RECEIVER:
            template = self.notice
        elif shown is not None:
            template = self.compact
            kept_firing = firing[:shown]
            kept_resolved = resolved[: max(0, shown - len(firing))]
            extra = {
                "omitted": len(alerts) - len(kept_firing) - len(kept_resolved),
                "total_firing": len(firing),
                "total_resolved": len(resolved),
                "group_url": self._am_url(note.externalURL, "alerts", note.groupLabels) or "",
            }
            firing, resolved = kept_firing, kept_resolved
        try:
            return template.render(
                firing=firing,
                resolved=resolved,
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
                **extra,
            )
        except jinja2.TemplateError as exc:
            raise RenderError(f"template rendering failed: {exc}") from exc

    def render(self, note: Notification, received_at: datetime | None = None) -> list[Message]:
        """The messages to post: split to the byte limit, and within the message budget."""
        return self.render_budgeted(note, received_at).messages

    def render_budgeted(
        self,
        note: Notification,
        received_at: datetime | None = None,
        evidence: Evidence | None = None,
        parts: frozenset[str] = frozenset(),
        chart_png: bytes | None = None,
    ) -> Rendered:
        """Full form if it fits in `max_messages` messages, else compact, else compact and counted.

        With `evidence`, the `parts` of it this target shows are added after the alert as far as the
        budget allows (full, then short, then short without the chart image); the alert's own form
        is the one it would have without evidence.
        """
        text, messages, mode = self._plain(note, received_at)
        if evidence is None or not parts or note.receiver == NOTICE_RECEIVER:
            return Rendered(messages, mode)
        image = self._image(note, evidence, chart_png) if "chart" in parts else None
        for level, with_image in _EVIDENCE_LEVELS:
            extra = [image] if with_image and image is not None else []
            if with_image and image is None and level == "short":
                continue  # already tried without an image
            block = self.render_evidence(evidence, parts, level, image_sent=bool(extra))
            if not block:
                break
            try:
                parts_out = self._split(note, text + block)
            except SplitError:
                continue
            if len(parts_out) + len(extra) <= self.max_messages:
                return Rendered(parts_out + extra, mode)
        return Rendered(messages, mode)

    def _plain(self, note: Notification, received_at: datetime | None) -> tuple[str, list[Message], str]:
        """The alert's text, its messages and mode, within the budget (see render_budgeted)."""
        try:
            text = self.render_text(note, received_at)
            full = self._split(note, text)
        except SplitError:
            full = None  # more parts than any chat should get: compact below
        if full is not None and len(full) <= self.max_messages:
            return text, full, "full"
        total = len(note.alerts)
        text = self.render_text(note, received_at, shown=total)
        compact = self._split(note, text)
        if len(compact) <= self.max_messages:
            return text, compact, "compact"
        # The most alerts whose compact lines still fit; the rest are counted, with a link to them.
        best, low, high = None, 0, total - 1
        while low <= high:
            mid = (low + high) // 2
            candidate = self.render_text(note, received_at, shown=mid)
            messages = self._split(note, candidate)
            if len(messages) <= self.max_messages:
                best, low = (candidate, messages), mid + 1
            else:
                high = mid - 1
        if best is None:
            raise SplitError(f"not even a summary fits in {self.max_messages} message(s)")
        return best[0], best[1], "truncated"

    def _chart_markup(self, evidence: Evidence, image_sent: bool) -> str:
        """How the chart shows in this channel's text (empty when it cannot, or goes as an image)."""
        chart = evidence.chart
        if chart is None or image_sent or self.charts is None:
            return ""
        zh = self.target.language == "zh"
        alt = "近 1 小时图表" if zh else "last hour"
        kind = self.target.kind
        if kind == "inbox":
            # The inbox page is served by the relay: a relative link works without a public URL.
            return f"![{alt}]({self.charts.path(chart.id, chart.expires_at)})"
        url = self.charts.url(chart.id, chart.expires_at)
        if url is None or kind == "wecom":
            return ""  # no public URL: no link that could not open
        if kind == "dingtalk":
            return f"![{alt}]({url})"
        # Feishu cards show only images uploaded to Feishu (an image_key); email gets a link too.
        return f"[📈 {'图表（近 1 小时）' if zh else 'Chart of the last hour'}]({url})"

    def render_evidence(
        self, evidence: Evidence, parts: frozenset[str], level: str = "full", *, image_sent: bool = False
    ) -> str:
        """The evidence block (starting with ALERT_BOUNDARY), or "" when there is nothing to show."""
        zh = self.target.language == "zh"

        def pick(en: str, cn: str) -> str:
            return localize(cn if zh else en, self.zone)

        instances = []
        for inst in evidence.instances:
            lines = [pick(x.en, x.zh) for x in inst.lines] if "context" in parts else []
            findings = [pick(f.en, f.zh) for f in inst.findings] if "context" in parts else []
            errors = [
                {
                    "at": datetime.fromtimestamp(e.at, self.zone).strftime("%H:%M:%S") if e.at else "?",
                    "status": e.status_code or "", "code": e.code or "", "cause": e.cause or "",
                    "request_id": e.request_id, "message": e.message or "",
                }
                for e in inst.errors
            ] if "errors" in parts else []
            if lines or findings or errors:
                instances.append({"instance": inst.instance, "lines": lines, "findings": findings,
                                  "errors": errors})
        chart = self._chart_markup(evidence, image_sent) if "chart" in parts else ""
        analysis = evidence.analysis if "analysis" in parts else None
        problems = evidence.problems
        if not (instances or chart or analysis or problems):
            return ""
        try:
            return self.evidence.render(
                instances=instances,
                more_instances=evidence.more_instances if instances else 0,
                chart=chart,
                analysis=analysis,
                problems=problems,
                level=level,
                at=datetime.fromtimestamp(evidence.at, self.zone).strftime("%H:%M:%S"),
                sep=ALERT_BOUNDARY,
                channel=self.target.kind,
                color=self._color,
            )
        except jinja2.TemplateError as exc:
            raise RenderError(f"evidence template failed: {exc}") from exc

    def _image(self, note: Notification, evidence: Evidence, png: bytes | None) -> Message | None:
        """The chart as an image message, for the channels that take one (WeCom)."""
        if self.target.kind != "wecom" or png is None or evidence.chart is None or len(png) > MAX_IMAGE_BYTES:
            return None
        zh = self.target.language == "zh"
        caption = f"📈 {'近 1 小时图表' if zh else 'Chart of the last hour'}: {self.title(note)}"
        return Message(title=self.title(note), text=caption, status=self.status(note),
                       severity=self.severity(note), image=png)

    def render_follow_up(self, note: Notification, follow: FollowUp) -> list[Message]:
        """The second message of an alert whose analysis came late: quotes the alert, within the budget."""
        zh = self.target.language == "zh"
        instances = ", ".join(sorted({a.labels.get("instance", "") for a in note.alerts} - {""}))
        title = self.title(note)
        try:
            text = self.follow_up.render(
                title=title,
                received=self._time(datetime.fromtimestamp(follow.received_at, UTC)),
                instances=instances,
                analysis=follow.analysis,
                channel=self.target.kind,
            )
        except jinja2.TemplateError as exc:
            raise RenderError(f"follow-up template failed: {exc}") from exc
        parts = split_text(text.strip("\n"), self.target.message_bytes)[: self.max_messages]
        prefix = "AI 分析 ↩ " if zh else "AI analysis ↩ "
        return [Message(title=prefix + title, text=part, status="notice", severity=self.severity(note))
                for part in parts]

    def _split(self, note: Notification, text: str) -> list[Message]:
        mention = self.mention(note)
        parts = split_text(text.strip("\n"), self.target.message_bytes, self.mention_line(mention))
        title = self.title(note)
        status, severity = self.status(note), self.severity(note)
        if len(parts) == 1:
            return [Message(title=title, text=parts[0], mention=mention, status=status, severity=severity)]
        return [
            Message(
                title=f"{title} ({i}/{len(parts)})", text=part, mention=mention if i == 1 else Mention(),
                status=status, severity=severity,
            )
            for i, part in enumerate(parts, start=1)
        ]
