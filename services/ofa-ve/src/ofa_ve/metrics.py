"""Every Prometheus metric of the service, created on an injected registry."""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from ofa_ve import __version__
from ofa_ve.errors import ERROR_CODES
from ofa_ve.loading import MODEL_STATES

ENDPOINTS = ("entailment", "batch", "ui")
STAGES = ("decode", "queue", "preprocess", "inference", "postprocess")
REJECT_REASONS = ("queue_full", "deadline_exceeded", "not_ready")
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
IMAGE_BYTES_BUCKETS = tuple(float(2**k) for k in range(10, 26, 1))  # 1 KiB .. 32 MiB
IMAGE_PIXELS_BUCKETS = (1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2e6, 4e6, 8e6, 1.6e7, 2.5e7, 5e7)


def result_for(status_code: int) -> str:
    """The `result` label: client errors are kept apart so they never count against the error budget."""
    if status_code < 400:
        return "success"
    if status_code < 500:
        return "client_error"
    return "server_error"


class ServiceMetrics:
    """The ofa_ve_* metrics plus process metrics, all registered on `registry`."""

    def __init__(self, registry: CollectorRegistry, *, process_collectors: bool = True) -> None:
        self.registry = registry
        self.requests = Counter(
            "ofa_ve_requests", "Finished requests by endpoint, HTTP status and result class.",
            ["endpoint", "status_code", "result"], registry=registry,
        )
        self.request_duration = Histogram(
            "ofa_ve_request_duration_seconds", "End-to-end request latency inside the service.",
            ["endpoint"], buckets=REQUEST_BUCKETS, registry=registry,
        )
        self.stage_duration = Histogram(
            "ofa_ve_stage_duration_seconds",
            "Time per processing stage (decode, queue, preprocess, inference, postprocess).",
            ["stage"], buckets=STAGE_BUCKETS, registry=registry,
        )
        self.in_flight = Gauge(
            "ofa_ve_in_flight_requests", "Requests being handled right now.", registry=registry
        )
        self.queue_depth = Gauge(
            "ofa_ve_queue_depth", "Items waiting in the inference queue.", registry=registry
        )
        self.queue_capacity = Gauge(
            "ofa_ve_queue_capacity", "Size of the bounded inference queue.", registry=registry
        )
        self.batch_size = Histogram(
            "ofa_ve_batch_size", "Items per forward pass.", buckets=BATCH_BUCKETS, registry=registry
        )
        self.rejected = Counter(
            "ofa_ve_rejected", "Items shed by load control, by reason.", ["reason"], registry=registry
        )
        self.errors = Counter(
            "ofa_ve_errors", "Errors by type (client and server), including per-item batch errors.",
            ["type"], registry=registry,
        )
        self.image_size = Histogram(
            "ofa_ve_image_size_bytes", "Size of accepted encoded images.",
            buckets=IMAGE_BYTES_BUCKETS, registry=registry,
        )
        self.image_pixels = Histogram(
            "ofa_ve_image_pixels", "Width times height of decoded images.",
            buckets=IMAGE_PIXELS_BUCKETS, registry=registry,
        )
        self.model_load_duration = Gauge(
            "ofa_ve_model_load_duration_seconds", "Time the last model load took, warm-up included.",
            registry=registry,
        )
        self.model_load_failures = Counter(
            "ofa_ve_model_load_failures", "Failed model loads.", registry=registry
        )
        self.model_ready = Gauge(
            "ofa_ve_model_ready", "1 when the model is loaded and warmed up, else 0.", registry=registry
        )
        self.model_state = Gauge(
            "ofa_ve_model_state",
            "Model lifecycle, one-hot: loading (an attempt runs), ready, failed (last attempt failed, "
            "a retry is scheduled).",
            ["state"], registry=registry,
        )
        self.expected_replicas = Gauge(
            "ofa_ve_expected_replicas",
            "Replicas the deployment is configured to run (OFA_VE_EXPECTED_REPLICAS); 0 when not set.",
            registry=registry,
        )
        self.model_info = Gauge(
            "ofa_ve_model_info", "The loaded model (value 1).",
            ["model", "revision", "device", "dtype"], registry=registry,
        )
        self.build_info = Gauge(
            "ofa_ve_build_info", "Service version and Python version (value 1).",
            ["version", "python"], registry=registry,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        # Known label values start at zero so rate() and absent() behave from the first scrape.
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        for code in ERROR_CODES:
            self.errors.labels(code)
        for stage in STAGES:
            self.stage_duration.labels(stage)
        for endpoint in ENDPOINTS:
            self.request_duration.labels(endpoint)
        self.set_model_state("loading")
        if process_collectors:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)

    def record_request(self, endpoint: str, status_code: int, duration_s: float) -> None:
        """Counts one finished request and observes its latency."""
        self.requests.labels(endpoint, str(status_code), result_for(status_code)).inc()
        self.request_duration.labels(endpoint).observe(duration_s)

    def record_error(self, code: str) -> None:
        """Counts an error by its code; load-shedding codes also count as rejections."""
        self.errors.labels(code).inc()
        if code in REJECT_REASONS:
            self.rejected.labels(code).inc()

    def set_model_state(self, state: str) -> None:
        """Sets the one-hot ofa_ve_model_state and ofa_ve_model_ready (1 only when ready)."""
        if state not in MODEL_STATES:
            raise ValueError(f"unknown model state {state!r}; expected one of {MODEL_STATES}")
        for known in MODEL_STATES:
            self.model_state.labels(known).set(1 if known == state else 0)
        self.model_ready.set(1 if state == "ready" else 0)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_duration.labels(stage).observe(seconds)
