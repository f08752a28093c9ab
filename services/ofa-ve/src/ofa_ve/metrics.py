"""Every Prometheus metric of the service, created on an injected registry."""

from __future__ import annotations

import platform
import threading

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from ofa_ve import __version__
from ofa_ve.context import RequestContext
from ofa_ve.errors import ERROR_CODES
from ofa_ve.exemplars import ExemplarSampler
from ofa_ve.loading import MODEL_STATES

ENDPOINTS = ("entailment", "batch", "ui")
STAGES = ("decode", "queue", "preprocess", "inference", "postprocess")
REJECT_REASONS = ("overloaded", "queue_full", "deadline_exceeded", "not_ready")
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
IMAGE_BYTES_BUCKETS = tuple(float(2**k) for k in range(10, 26, 1))  # 1 KiB .. 32 MiB
IMAGE_PIXELS_BUCKETS = (1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2e6, 4e6, 8e6, 1.6e7, 2.5e7, 5e7)
WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Distinct exception class names the `cause` label takes before the rest are counted as "other".
MAX_CAUSES = 20
OTHER_CAUSE = "other"


def result_for(status_code: int) -> str:
    """The `result` label: client errors are kept apart so they never count against the error budget."""
    if status_code < 400:
        return "success"
    if status_code < 500:
        return "client_error"
    return "server_error"


class CauseLabels:
    """The `cause` label: an exception class name, the first MAX_CAUSES distinct ones, then "other"."""

    def __init__(self, limit: int = MAX_CAUSES) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, cause: str | None) -> str:
        if not cause:
            return ""
        with self._lock:
            if cause in self._seen:
                return cause
            if len(self._seen) < self._limit:
                self._seen.add(cause)
                return cause
        return OTHER_CAUSE


class ServiceMetrics:
    """The ofa_ve_* metrics plus process metrics, all registered on `registry`."""

    def __init__(
        self, registry: CollectorRegistry, *, process_collectors: bool = True,
        exemplar_interval_s: float = 10.0,
    ) -> None:
        self.registry = registry
        self.exemplars = ExemplarSampler(exemplar_interval_s)
        self.causes = CauseLabels()
        self.requests = Counter(
            "ofa_ve_requests", "Finished requests by endpoint, HTTP status and result class.",
            ["endpoint", "status_code", "result"], registry=registry,
        )
        self.request_duration = Histogram(
            "ofa_ve_request_duration_seconds",
            "Request latency from the moment the server had read the request to its response.",
            ["endpoint"], buckets=REQUEST_BUCKETS, registry=registry,
        )
        self.stage_duration = Histogram(
            "ofa_ve_stage_duration_seconds",
            "Time per processing stage (decode, queue, preprocess, inference, postprocess).",
            ["stage"], buckets=STAGE_BUCKETS, registry=registry,
        )
        self.request_wait = Histogram(
            "ofa_ve_request_wait_seconds",
            "Time between the server reading a request and its handler starting (event loop backlog).",
            ["endpoint"], buckets=WAIT_BUCKETS, registry=registry,
        )
        self.loop_lag = Histogram(
            "ofa_ve_event_loop_lag_seconds",
            "How late the event loop ran a timer, sampled every 100 ms; a probe late by L also stands "
            "for L-0.1, L-0.2, ... s, so quantiles are over time, as a request arriving would see them.",
            buckets=LAG_BUCKETS, registry=registry,
        )
        self.admitted_items = Gauge(
            "ofa_ve_admitted_items", "Items admitted and not finished (decoding, queued, running).",
            registry=registry,
        )
        self.admission_limit_items = Gauge(
            "ofa_ve_admission_limit_items", "Items a replica admits at once (OFA_VE_MAX_IN_FLIGHT).",
            registry=registry,
        )
        self.admitted_body_bytes = Gauge(
            "ofa_ve_admitted_body_bytes", "Request body bytes reserved by admitted requests.",
            registry=registry,
        )
        self.admission_limit_body_bytes = Gauge(
            "ofa_ve_admission_limit_body_bytes",
            "Request body bytes a replica holds at once (OFA_VE_MAX_BODY_BYTES_IN_FLIGHT).",
            registry=registry,
        )
        self.gpu_oom = Counter(
            "ofa_ve_gpu_oom", "Forward passes that ran out of GPU memory (each is retried split in halves).",
            registry=registry,
        )
        self.batch_splits = Counter(
            "ofa_ve_batch_splits", "Batches split in halves after running out of GPU memory.",
            registry=registry,
        )
        self.device_faults = Counter(
            "ofa_ve_device_faults",
            "Unrecoverable accelerator faults (illegal access, Xid); each makes the replica exit.",
            registry=registry,
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
            "ofa_ve_errors",
            "Errors by type (client and server), including per-item batch errors; `cause` is the exception "
            "class of an unexpected failure.",
            ["type", "cause"], registry=registry,
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
            "Model lifecycle, one-hot: downloading (a hub model's weights are fetched), loading (the "
            "pipeline is built and warmed up), ready, failed (last attempt failed, a retry is scheduled).",
            ["state"], registry=registry,
        )
        self.model_download_bytes = Gauge(
            "ofa_ve_model_download_bytes",
            "Bytes of the hub model on disk during its download (partial files included); stays at the "
            "last figure afterwards. 0 for a local model directory.",
            registry=registry,
        )
        self.model_download_expected_bytes = Gauge(
            "ofa_ve_model_download_expected_bytes",
            "Size of the hub model according to the hub's file list (0: unknown, or a local model).",
            registry=registry,
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
            self.errors.labels(code, "")
        for stage in STAGES:
            self.stage_duration.labels(stage)
        for endpoint in ENDPOINTS:
            self.request_duration.labels(endpoint)
            self.request_wait.labels(endpoint)
        self.set_model_state("loading")
        if process_collectors:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)

    def record_request(
        self, endpoint: str, status_code: int, duration_s: float, ctx: RequestContext | None = None,
        *, keep: bool = False,
    ) -> None:
        """Counts one finished request and observes its latency, with the request id as exemplar when
        the request is kept (`keep`) or sampled."""
        self.requests.labels(endpoint, str(status_code), result_for(status_code)).inc()
        exemplar = self.exemplars.pick(("request", endpoint), REQUEST_BUCKETS, duration_s, ctx, force=keep)
        self.request_duration.labels(endpoint).observe(duration_s, exemplar)

    def record_error(self, code: str, cause: str | None = None) -> None:
        """Counts an error by its code (and bounded cause); load-shedding codes also count as rejections."""
        self.errors.labels(code, self.causes(cause)).inc()
        if code in REJECT_REASONS:
            self.rejected.labels(code).inc()

    def set_model_state(self, state: str) -> None:
        """Sets the one-hot ofa_ve_model_state and ofa_ve_model_ready (1 only when ready)."""
        if state not in MODEL_STATES:
            raise ValueError(f"unknown model state {state!r}; expected one of {MODEL_STATES}")
        for known in MODEL_STATES:
            self.model_state.labels(known).set(1 if known == state else 0)
        self.model_ready.set(1 if state == "ready" else 0)

    def observe_stage(self, stage: str, seconds: float, ctx: RequestContext | None = None) -> None:
        """Observes one stage time; the request id of `ctx` becomes the exemplar when sampled."""
        exemplar = self.exemplars.pick(("stage", stage), STAGE_BUCKETS, seconds, ctx)
        self.stage_duration.labels(stage).observe(seconds, exemplar)
