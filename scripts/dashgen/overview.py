"""OFA-VE overview: traffic, latency and where it goes, load, GPU, model."""

from __future__ import annotations

from dashgen.common import (
    ERROR_RATIO_ALERT,
    GPU_MEMORY_ALERT_RATIO,
    GPU_TEMPERATURE_ALERT_CELSIUS,
    LOOP_LAG_ALERT_SECONDS,
    P95_LATENCY_ALERT_SECONDS,
    links,
)
from dashgen.links import OVERVIEW_UID
from dashgen.panels import Grid, dashboard, heatmap, instance_variable, stat, timeseries

SEL = 'instance=~"$instance"'
JOB_SEL = f'job="ofa-ve", {SEL}'


def _traffic(g: Grid) -> None:
    g.row("Traffic")
    g.add(
        timeseries(
            "Requests per second by result",
            [(f"sum by (result) (instance_result:ofa_ve_requests:rate5m{{{SEL}}})", "{{result}}")],
            "reqps",
            description="Recorded 5-minute rates; server_error includes 503 (rejected) and 504 (deadline).",
            stack=True,
        )
    )
    g.add(
        timeseries(
            "Requests per second by endpoint and status",
            [
                (
                    "sum by (endpoint, status_code) "
                    f"(rate(ofa_ve_requests_total{{{SEL}}}[$__rate_interval]))",
                    "{{endpoint}} {{status_code}}",
                )
            ],
            "reqps",
        )
    )
    g.add(
        timeseries(
            "Server error ratio",
            [(f"instance:ofa_ve_request_errors:ratio_rate5m{{{SEL}}}", "{{instance}}")],
            "percentunit",
            description="5xx over all requests, per replica. Dashed line: OfaVeHighErrorRate threshold.",
            thresholds=[(None, "green"), (ERROR_RATIO_ALERT, "red")],
        )
    )


def _latency(g: Grid) -> None:
    g.row("Latency")
    # The raw buckets, not the recorded 5-minute rate: exemplars live on the scraped series only.
    buckets = f"sum by (le) (rate(ofa_ve_request_duration_seconds_bucket{{{SEL}}}[$__rate_interval]))"
    g.add(
        timeseries(
            "Request latency P50 / P90 / P95 / P99",
            [(f"histogram_quantile({q}, {buckets})", f"p{q[2:]}") for q in ("0.5", "0.9", "0.95", "0.99")],
            "s",
            description="Over the selected replicas, from the moment the server read each request. Dashed "
            "line: OfaVeHighLatency threshold on P95. Points are exemplars (slow, failed and sampled "
            "requests): open one to see that request at /v1/requests/{id}.",
            thresholds=[(None, "green"), (P95_LATENCY_ALERT_SECONDS, "red")],
            exemplars=True,
        )
    )
    g.add(
        heatmap(
            "Request latency heatmap",
            f"sum by (le) (increase(ofa_ve_request_duration_seconds_bucket{{{SEL}}}[$__rate_interval]))",
            "s",
            description="Requests per latency bucket per interval.",
        )
    )
    g.add(
        timeseries(
            "P95 latency by endpoint",
            [
                (
                    "histogram_quantile(0.95, sum by (endpoint, le) "
                    f"(rate(ofa_ve_request_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                    "{{endpoint}}",
                )
            ],
            "s",
            description="Points are exemplars: one request each, linked to its detail.",
            exemplars=True,
        )
    )
    g.add(
        timeseries(
            "Where the time goes: mean seconds per stage",
            [(f"avg by (stage) (instance_stage:ofa_ve_stage_duration_seconds:mean5m{{{SEL}}})", "{{stage}}")],
            "s",
            description="Stacked mean time of decode, queue, preprocess, inference and postprocess.",
            stack=True,
        ),
        width=12,
    )
    g.add(
        timeseries(
            "Stage latency P95",
            [
                (
                    "histogram_quantile(0.95, sum by (stage, le) "
                    f"(rate(ofa_ve_stage_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                    "{{stage}}",
                )
            ],
            "s",
            description="Points are exemplars: a request whose stage landed in that bucket, linked to its "
            "detail (for inference and postprocess, the first request of the batch).",
            exemplars=True,
        ),
        width=12,
    )
    g.add(
        timeseries(
            "Wait before the handler P95 / P99",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(ofa_ve_request_wait_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                    f"p{q[2:]}",
                )
                for q in ("0.95", "0.99")
            ],
            "s",
            description="From the server reading a request to its handler starting: the event loop's "
            "backlog, part of the latency above and of Server-Timing's total, invisible to every stage.",
        ),
        width=12,
    )
    g.add(
        timeseries(
            "Event loop lag P50 / P99",
            [
                (
                    "max by (quantile) (instance_quantile:ofa_ve_event_loop_lag_seconds:histogram_quantile"
                    f"{{{SEL}}})",
                    "p{{quantile}}",
                )
            ],
            "s",
            description="How late the event loop ran, over time (a stall weighs by its length). Every "
            "request, 503 and scrape waits this long first. Dashed line: OfaVeEventLoopLagging threshold "
            "on P99.",
            thresholds=[(None, "green"), (LOOP_LAG_ALERT_SECONDS, "red")],
        ),
        width=12,
    )


def _load(g: Grid) -> None:
    g.row("Load and queue")
    g.add(
        timeseries(
            "Admitted items / budget",
            [
                (f"sum by (instance) (ofa_ve_admitted_items{{{SEL}}})", "{{instance}} admitted"),
                (f"sum by (instance) (ofa_ve_admission_limit_items{{{SEL}}})", "{{instance}} budget"),
            ],
            "short",
            description="Items decoding, queued or running, against OFA_VE_MAX_IN_FLIGHT. At the budget, new "
            "requests get 503 overloaded at once, before their body is read.",
        ),
        width=12,
    )
    g.add(
        timeseries(
            "Admitted body bytes / budget",
            [
                (f"sum by (instance) (ofa_ve_admitted_body_bytes{{{SEL}}})", "{{instance}} held"),
                (f"sum by (instance) (ofa_ve_admission_limit_body_bytes{{{SEL}}})", "{{instance}} budget"),
            ],
            "bytes",
            description="Request bodies held in memory against OFA_VE_MAX_BODY_BYTES_IN_FLIGHT.",
        ),
        width=12,
    )
    g.add(
        timeseries(
            "In-flight requests",
            [(f"sum by (instance) (ofa_ve_in_flight_requests{{{SEL}}})", "{{instance}}")],
            "short",
        ),
        width=6,
    )
    g.add(
        timeseries(
            "Queue depth and capacity",
            [
                (f"sum by (instance) (ofa_ve_queue_depth{{{SEL}}})", "{{instance}} depth"),
                (f"sum by (instance) (ofa_ve_queue_capacity{{{SEL}}})", "{{instance}} capacity"),
            ],
            "short",
        ),
        width=6,
    )
    g.add(
        timeseries(
            "Rejected requests by reason",
            [(f"sum by (reason) (rate(ofa_ve_rejected_total{{{SEL}}}[$__rate_interval]))", "{{reason}}")],
            "reqps",
        ),
        width=6,
    )
    g.add(
        timeseries(
            "Errors by type and cause",
            [
                (
                    f"sum by (type, cause) (rate(ofa_ve_errors_total{{{SEL}}}[$__rate_interval])) > 0",
                    "{{type}} {{cause}}",
                )
            ],
            "reqps",
            description="Error codes; for unexpected failures (inference_failed, internal_error, "
            "device_fault) also the exception class.",
        ),
        width=6,
    )
    g.add(
        timeseries(
            "Batch size",
            [
                (
                    f"sum(rate(ofa_ve_batch_size_sum{{{SEL}}}[$__rate_interval]))"
                    f" / sum(rate(ofa_ve_batch_size_count{{{SEL}}}[$__rate_interval]))",
                    "mean",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(ofa_ve_batch_size_bucket{{{SEL}}}[$__rate_interval])))",
                    "p95",
                ),
            ],
            "short",
        )
    )
    g.add(
        timeseries(
            "Input image size P50 / P95",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(ofa_ve_image_size_bytes_bucket{{{SEL}}}[$__rate_interval])))",
                    f"p{q[2:]}",
                )
                for q in ("0.5", "0.95")
            ],
            "bytes",
        )
    )
    g.add(
        timeseries(
            "Input image pixels P50 / P95",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(ofa_ve_image_pixels_bucket{{{SEL}}}[$__rate_interval])))",
                    f"p{q[2:]}",
                )
                for q in ("0.5", "0.95")
            ],
            "short",
        )
    )


def _gpu(g: Grid) -> None:
    g.row("GPU")
    g.add(
        timeseries(
            "GPU memory used / total",
            [
                (f"ofa_ve_gpu_memory_used_bytes{{{SEL}}}", "{{instance}} gpu {{gpu}} used"),
                (f"ofa_ve_gpu_memory_total_bytes{{{SEL}}}", "{{instance}} gpu {{gpu}} total"),
            ],
            "bytes",
        )
    )
    g.add(
        timeseries(
            "GPU memory used ratio",
            [(f"instance_gpu:ofa_ve_gpu_memory:ratio{{{SEL}}}", "{{instance}} gpu {{gpu}}")],
            "percentunit",
            description="Dashed line: OfaVeGpuMemoryHigh threshold.",
            maximum=1,
            thresholds=[(None, "green"), (GPU_MEMORY_ALERT_RATIO, "red")],
        )
    )
    g.add(
        timeseries(
            "GPU utilisation",
            [(f"ofa_ve_gpu_utilization_ratio{{{SEL}}}", "{{instance}} gpu {{gpu}}")],
            "percentunit",
            maximum=1,
        )
    )
    g.add(
        timeseries(
            "GPU temperature",
            [(f"ofa_ve_gpu_temperature_celsius{{{SEL}}}", "{{instance}} gpu {{gpu}}")],
            "celsius",
            description="Dashed line: OfaVeGpuTooHot threshold.",
            minimum=None,
            thresholds=[(None, "green"), (GPU_TEMPERATURE_ALERT_CELSIUS, "red")],
        )
    )
    g.add(
        timeseries(
            "GPU power",
            [
                (f"ofa_ve_gpu_power_watts{{{SEL}}}", "{{instance}} gpu {{gpu}}"),
                (
                    f"rate(ofa_ve_gpu_energy_joules_total{{{SEL}}}[$__rate_interval])",
                    "{{instance}} gpu {{gpu}} (from energy)",
                ),
            ],
            "watt",
        )
    )
    g.add(
        timeseries(
            "GPU out of memory and batch splits",
            [
                (
                    f"sum by (instance) (rate(ofa_ve_gpu_oom_total{{{SEL}}}[$__rate_interval]))",
                    "{{instance}} OOM",
                ),
                (
                    f"sum by (instance) (rate(ofa_ve_batch_splits_total{{{SEL}}}[$__rate_interval]))",
                    "{{instance}} batch splits",
                ),
                (
                    f'sum by (instance) (rate(ofa_ve_errors_total{{type="gpu_out_of_memory", {SEL}}}'
                    "[$__rate_interval]))",
                    "{{instance}} items failed",
                ),
            ],
            "ops",
            description="Forward passes out of GPU memory, the batch splits that retried them, and the items "
            "that did not fit even alone (OfaVeGpuOutOfMemory).",
        )
    )
    g.add(
        timeseries(
            "PyTorch memory allocated / reserved",
            [
                (f"ofa_ve_torch_memory_allocated_bytes{{{SEL}}}", "{{instance}} {{device}} allocated"),
                (f"ofa_ve_torch_memory_reserved_bytes{{{SEL}}}", "{{instance}} {{device}} reserved"),
            ],
            "bytes",
        )
    )


# The replica count is one number per service: these queries cannot take the instance filter.
SERVICE_LEVEL_PANELS = ("Replicas up / expected",)
# ofa_ve_model_state is one-hot; this folds it into one number per replica for a value mapping.
MODEL_STATE = (
    f'max by (instance) (3 * ofa_ve_model_state{{state="ready", {SEL}}}'
    f' + ignoring (state) 2 * ofa_ve_model_state{{state="loading", {SEL}}}'
    f' + ignoring (state) ofa_ve_model_state{{state="downloading", {SEL}}})'
)


def _model(g: Grid) -> None:
    g.row("Replicas and model")
    g.add(
        timeseries(
            SERVICE_LEVEL_PANELS[0],
            [
                ("sum(service:ofa_ve_replicas_up:count)", "up"),
                ("min(min_over_time(service:ofa_ve_replicas_up:count[5m]))", "up, low point of 5 min"),
                ("max(service:ofa_ve_replicas_expected:max)", "expected"),
            ],
            "short",
            description="Replicas scraped successfully against OFA_VE_REPLICAS (or the most up in the last "
            "hour when unset). A stopped or crash-looping replica vanishes from discovery: "
            "OfaVeReplicasMissing fires when the low point stays under expected for 10 minutes.",
        ),
        width=12,
    )
    g.add(
        stat(
            "Model state",
            [(MODEL_STATE, "{{instance}}")],
            "none",
            description="downloading: the first start fetches the weights (ofa_ve_model_download_bytes; "
            "/readyz says how far); loading: an attempt runs; failed: the last attempt failed and a retry "
            "waits (OfaVeModelLoadFailed); ready: serving.",
            thresholds=[(None, "red"), (1, "blue"), (2, "orange"), (3, "green")],
            names=[(0, "failed", "red"), (1, "downloading", "blue"), (2, "loading", "orange"),
                   (3, "ready", "green")],
        ),
        width=12,
    )
    g.add(
        stat(
            "GPU available",
            [(f"ofa_ve_gpu_available{{{SEL}}}", "{{instance}}")],
            "bool_yes_no",
            description="0 on CPU-only replicas: GPU panels stay empty there.",
            thresholds=[(None, "orange"), (1, "green")],
        ),
        width=6,
        height=5,
    )
    g.add(
        stat(
            "Model load time",
            [(f"ofa_ve_model_load_duration_seconds{{{SEL}}}", "{{instance}}")],
            "s",
            decimals=1,
        ),
        width=6,
        height=5,
    )
    g.add(
        stat(
            "Device faults in range",
            [(f"sum(increase(ofa_ve_device_faults_total{{{SEL}}}[$__range]))", "faults")],
            "short",
            description="Unrecoverable accelerator faults; each took its replica out for a restart "
            "(OfaVeDeviceFault).",
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
        ),
        width=6,
        height=5,
    )
    g.add(
        stat(
            "Model load failures in range",
            [(f"sum(increase(ofa_ve_model_load_failures_total{{{SEL}}}[$__range]))", "failures")],
            "short",
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
        ),
        width=6,
        height=5,
    )
    g.add(
        timeseries(
            "Process resident memory",
            [(f"process_resident_memory_bytes{{{JOB_SEL}}}", "{{instance}}")],
            "bytes",
        ),
        width=12,
    )
    g.add(
        timeseries(
            "Process CPU",
            [(f"rate(process_cpu_seconds_total{{{JOB_SEL}}}[$__rate_interval])", "{{instance}}")],
            "percentunit",
            description="CPU seconds per second: 100 % is one full core.",
        ),
        width=12,
    )


def build() -> dict:
    """The overview dashboard."""
    g = Grid()
    for section in (_traffic, _latency, _load, _gpu, _model):
        section(g)
    return dashboard(
        OVERVIEW_UID,
        "OFA-VE overview",
        "Traffic, latency and where it goes, queue, GPU and model state of the OFA-VE service.",
        g,
        [instance_variable("ofa-ve")],
        links(),
    )
