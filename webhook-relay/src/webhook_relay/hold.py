"""Which deliveries of a new notification wait for evidence, and until when.

Part of the delivery core and deliberately small: a rule over the configuration and the alert labels,
no call to the enrichment package. The wait is a time stored with the deliveries (the message deadline,
`enrichment.deadline_seconds` after arrival), so the sender never waits on anything: it finds them due
at that time, or earlier when the enricher stored their evidence and released them.
"""

from __future__ import annotations

from webhook_relay.alertmanager import Notification
from webhook_relay.config import RelayConfig
from webhook_relay.outbox import Hold


def evidence_hold(config: RelayConfig, route: str, note: Notification, now: float) -> Hold | None:
    """The hold for a notification just received on `route`; None when no target gets evidence."""
    enrichment = config.enrichment
    if not enrichment.available() or route not in config.routes:
        return None
    wanted = [
        a for a in note.alerts
        if a.status == "firing" and all(a.labels.get(k) == v for k, v in enrichment.match.items())
    ]
    if not wanted:
        return None
    parts = {t: config.evidence_parts(route, t) for t in config.routes[route].targets}
    targets = tuple(t for t, p in parts.items() if p)
    if not targets:
        return None
    analysis = any("analysis" in p for p in parts.values())
    return Hold(now + enrichment.deadline_seconds, targets, analysis)
