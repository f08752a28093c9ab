"""The enrichment's metrics (`webhook_relay_enrichment_*`, `webhook_relay_analysis_*`), created only when
enrichment is on, on the registry the app was given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PARTS = ("context", "chart", "errors")
PART_RESULTS = ("ok", "failed")
EVIDENCE_RESULTS = ("stored", "late")
ANALYSIS_RESULTS = ("ok", "cached", "timeout", "http_error", "invalid", "circuit_open")
ANALYSIS_OUTCOMES = ("included", "follow_up", "failed", "expired")


class EnrichmentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.parts = Counter(
            "webhook_relay_enrichment_parts",
            "Evidence parts gathered for a notification, by part (context, chart, errors) and result.",
            ["part", "result"], registry=registry,
        )
        self.part_duration = Histogram(
            "webhook_relay_enrichment_duration_seconds",
            "Time to gather one evidence part.",
            ["part"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10), registry=registry,
        )
        self.evidence = Counter(
            "webhook_relay_enrichment_evidence",
            "Evidence stored in time for the message (stored), or too late to be shown (late).",
            ["result"], registry=registry,
        )
        self.analysis_requests = Counter(
            "webhook_relay_analysis_requests",
            "Analyses asked for, by result: ok, cached, timeout, http_error, invalid (garbage or a "
            "schema violation), circuit_open (not asked: the breaker is open).",
            ["result"], registry=registry,
        )
        self.analysis_duration = Histogram(
            "webhook_relay_analysis_duration_seconds",
            "Time of one call to the language model (failures included).",
            buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60), registry=registry,
        )
        self.analysis_in_flight = Gauge(
            "webhook_relay_analysis_in_flight", "Calls to the language model in progress.", registry=registry,
        )
        self.analysis_circuit_open = Gauge(
            "webhook_relay_analysis_circuit_open",
            "1 while the circuit breaker keeps calls to the language model off.", registry=registry,
        )
        self.analysis_outcomes = Counter(
            "webhook_relay_analysis_outcomes",
            "How each analysis ended: included in the alert's message, sent as a follow-up, failed, or "
            "expired (its deadline passed during a restart).",
            ["outcome"], registry=registry,
        )
        for part in PARTS:
            self.part_duration.labels(part=part)
            for result in PART_RESULTS:
                self.parts.labels(part=part, result=result)
        for result in EVIDENCE_RESULTS:
            self.evidence.labels(result=result)
        for result in ANALYSIS_RESULTS:
            self.analysis_requests.labels(result=result)
        for outcome in ANALYSIS_OUTCOMES:
            self.analysis_outcomes.labels(outcome=outcome)
