"""The Alertmanager webhook payload (version 4); unknown fields are accepted and ignored."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime = ZERO_TIME
    endsAt: datetime = ZERO_TIME
    generatorURL: str = ""
    fingerprint: str = ""


class Notification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str = "4"
    receiver: str = ""
    status: str = Field(pattern="^(firing|resolved)$")
    alerts: list[Alert] = Field(min_length=1)
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0

    def dedup_key(self, route: str) -> str:
        """Identity of a re-sent notification: same group, status and alerts with the same times."""
        alerts = sorted(
            (
                a.fingerprint or json.dumps(a.labels, sort_keys=True),
                a.status,
                a.startsAt.isoformat(),
                a.endsAt.isoformat(),
            )
            for a in self.alerts
        )
        blob = json.dumps([route, self.groupKey, self.status, alerts], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()
