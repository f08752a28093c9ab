"""What enrichment hands to rendering: plain data, stored as JSON in the outbox.

The enrichment package (`webhook_relay.enrichment`) gathers it; the renderer shows it. The delivery core
(webhooks, outbox, sender, channels) knows only these models, never the package that fills them: a
message is rendered from whatever evidence the outbox holds when it is sent, and from none at all when
enrichment is off, late or broken.

Texts that hold a time carry it as a `⟨t:UNIX⟩` marker; the renderer writes it in the target's time
zone, so one piece of evidence serves every target.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

# A time inside an evidence text (`since ⟨t:1764036120⟩`), written in each target's own time zone.
TIME_MARK = re.compile(r"⟨t:(\d{1,12})⟩")


def time_mark(unix: float) -> str:
    """The marker for `unix` seconds, for texts built before the target (and its time zone) is known."""
    return f"⟨t:{int(unix)}⟩"


def localize(text: str, zone: ZoneInfo) -> str:
    """`text` with every time marker written as HH:MM in `zone`."""
    return TIME_MARK.sub(lambda m: datetime.fromtimestamp(int(m.group(1)), zone).strftime("%H:%M"), text)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Line(_Model):
    """One line of live numbers, in both languages (markdown, no line breaks)."""

    en: str
    zh: str


class Finding(_Model):
    """One conclusion of the diagnosis table (`key` is the table row's name)."""

    key: str
    en: str
    zh: str


class ErrorRecord(_Model):
    """One recent failed request of the instance, as its recent-errors view gave it (redacted there,
    and scrubbed again here)."""

    at: float | None = None
    request_id: str
    status_code: int | None = None
    code: str | None = None
    cause: str | None = None
    message: str | None = None


class InstanceEvidence(_Model):
    """Everything found about one instance (or the whole service when the alert has no instance)."""

    instance: str
    lines: list[Line] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    errors: list[ErrorRecord] = Field(default_factory=list)


class ChartRef(_Model):
    """A chart PNG kept in the outbox database (served at a signed URL until `expires_at`)."""

    id: str
    created_at: float
    expires_at: float
    md5: str
    size: int


class AnalysisResult(_Model):
    """A language model's answer, validated against the schema it was asked to follow."""

    hypothesis: str
    confidence: str
    next_checks: list[str] = Field(default_factory=list)
    model: str = ""
    # Cut to the configured length, as shown.
    text: str = ""


class Evidence(_Model):
    """The evidence for one notification, as stored before its messages are rendered."""

    at: float
    instances: list[InstanceEvidence] = Field(default_factory=list)
    # Instances of the notification left without evidence (over `max_instances`).
    more_instances: int = 0
    chart: ChartRef | None = None
    analysis: AnalysisResult | None = None
    # What could not be had, one short line each ("prometheus: no answer within 2 s").
    problems: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.instances or self.chart or self.analysis or self.problems)


# The key of a follow-up's payload that holds what it follows up (the rest is the original webhook).
FOLLOW_UP_KEY = "webhookRelayFollowUp"


class FollowUp(_Model):
    """An analysis that came after its alert had been sent: posted as a second message, quoting it."""

    of: int  # the notification id of the alert
    received_at: float
    analysis: AnalysisResult
