"""Evidence for alerts: live numbers and a diagnosis from Prometheus, a chart, recent errors, an optional
analysis by a language model. Its own package with its own deadline, between the outbox and rendering;
the delivery core does not import it (a test checks), and everything here fails soft: a part that is
late or broken is a line in the message, never a late or lost alert."""

from webhook_relay.enrichment.metrics import EnrichmentMetrics
from webhook_relay.enrichment.worker import Enricher

__all__ = ["Enricher", "EnrichmentMetrics"]
