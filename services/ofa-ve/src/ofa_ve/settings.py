"""Service configuration, read from environment variables prefixed with OFA_VE_."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ofa_ve.loading import LOAD_RETRY_INITIAL_S, LOAD_RETRY_MAX_S, LOAD_RETRY_MULTIPLIER

DEFAULT_MODEL = "damo/ofa_visual-entailment_snli-ve_large_en"
MIB = 1024 * 1024
# Multipart/JSON overhead allowed on top of the (base64-inflated) image itself.
ENVELOPE_BYTES = 64 * 1024


class Settings(BaseSettings):
    """Everything an operator can tune; defaults suit one GPU serving the large model."""

    model_config = SettingsConfigDict(env_prefix="OFA_VE_", extra="ignore", frozen=True)

    model: str = Field(DEFAULT_MODEL, description="ModelScope hub id or absolute local model directory")
    model_revision: str | None = Field(None, description="hub revision; ignored for a local directory")
    device: Literal["auto", "cuda", "cpu"] = "auto"
    fp16: bool = Field(False, description="run the model in float16 (CUDA only)")
    matmul_precision: Literal["highest", "high", "medium"] = Field(
        "high", description="float32 matmul precision on CUDA: high/medium allow TF32 tensor cores"
    )
    warmup: bool = Field(True, description="run one inference before reporting ready")
    torch_threads: int = Field(0, ge=0, description="torch intra-op threads on CPU; 0 keeps torch's default")
    load_retry_initial_s: float = Field(
        LOAD_RETRY_INITIAL_S, gt=0, description="wait after the first failed model load before retrying"
    )
    load_retry_max_s: float = Field(
        LOAD_RETRY_MAX_S, gt=0, description="cap of the doubling wait between failed model loads"
    )
    load_retry_multiplier: float = Field(
        LOAD_RETRY_MULTIPLIER, ge=1, description="factor the wait grows by after each failed load"
    )
    expected_replicas: int = Field(
        0, ge=0, description="replicas the deployment runs (exported for the replica-count alert); 0 = unset"
    )

    host: str = "0.0.0.0"  # noqa: S104 - the service runs in a container and must listen on all interfaces
    port: int = Field(8000, ge=1, le=65535)
    max_connections: int = Field(1024, ge=1, description="open connections before uvicorn answers 503")
    log_level: str = "INFO"
    log_json: bool = True

    max_batch_size: int = Field(8, ge=1, le=256, description="largest micro-batch one forward pass takes")
    max_wait_ms: float = Field(5.0, ge=0, le=1000, description="how long the worker waits to fill a batch")
    queue_capacity: int = Field(64, ge=1, le=100_000, description="queued items before 503")
    request_timeout_s: float = Field(30.0, gt=0, description="deadline of one request; past it: 504")
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with 503")
    decode_concurrency: int = Field(4, ge=1, description="images decoded at once; bounds decode memory")
    max_in_flight: int | None = Field(
        None, ge=1, description="items admitted and not finished before 503 overloaded (queue_capacity)"
    )
    max_body_bytes_in_flight: int = Field(
        128 * MIB, ge=1024, description="request body bytes held at once before 503 overloaded"
    )
    gc_freeze: bool = Field(
        True, description="once the model is loaded, exempt the objects alive then from garbage collection"
    )
    fault_exit_delay_s: float = Field(
        20.0, ge=0, description="after a device fault, seconds until the process exits (one scrape sees it)"
    )

    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(25_000_000, ge=64, description="width*height; larger = decompression bomb")
    max_text_chars: int = Field(512, ge=1)
    max_batch_items: int = Field(32, ge=1, description="pairs accepted by /v1/entailment/batch")
    max_batch_body_bytes: int = Field(
        32 * MIB, ge=1024, description="body of /v1/entailment/batch (413 past it)"
    )

    slow_request_s: float = Field(
        1.0, ge=0, description="requests at least this slow are kept in the request log (latency SLO: 1 s)"
    )
    request_log_size: int = Field(256, ge=1, description="requests kept per kind (failed, slow, sampled)")
    exemplar_interval_s: float = Field(
        10.0, ge=0, description="at most one sampled exemplar per histogram bucket per interval"
    )
    replica: str = Field(default_factory=socket.gethostname, description="this replica's name in the log")
    peer_dns: str | None = Field(
        None, description="DNS name resolving to every replica: /v1/requests/{id} asks them on a miss"
    )
    peer_timeout_s: float = Field(1.0, gt=0, description="deadline of one peer look-up")

    enable_ui: bool = True

    @field_validator("model")
    @classmethod
    def _absolute_local_dir(cls, value: str) -> str:
        # ModelScope takes a relative path with one slash for a hub id and spends ~20 s on failed
        # look-ups: an existing local directory is always passed on as an absolute path.
        if os.path.isdir(value):
            return os.path.abspath(value)
        return value

    @model_validator(mode="after")
    def _retry_cap_not_below_start(self) -> Settings:
        if self.load_retry_max_s < self.load_retry_initial_s:
            raise ValueError(
                f"load_retry_max_s ({self.load_retry_max_s}) is below load_retry_initial_s "
                f"({self.load_retry_initial_s})"
            )
        return self

    @model_validator(mode="after")
    def _body_budget_holds_the_largest_body(self) -> Settings:
        largest = max(self.single_body_limit, self.max_batch_body_bytes)
        if self.max_body_bytes_in_flight < largest:
            raise ValueError(
                f"max_body_bytes_in_flight ({self.max_body_bytes_in_flight}) is below the largest body "
                f"accepted ({largest}); such a request could never be admitted"
            )
        return self

    @property
    def model_is_local(self) -> bool:
        return os.path.isabs(self.model)

    @property
    def admission_items(self) -> int:
        """The item budget: max_in_flight, or the queue capacity when not set."""
        return self.max_in_flight if self.max_in_flight is not None else self.queue_capacity

    @property
    def single_body_limit(self) -> int:
        """Largest body of /v1/entailment: a base64 image at the byte limit plus the JSON around it."""
        return (self.max_image_bytes + 2) // 3 * 4 + ENVELOPE_BYTES

    @property
    def multipart_body_limit(self) -> int:
        """Largest multipart body: the raw image at the byte limit plus the form around it."""
        return self.max_image_bytes + ENVELOPE_BYTES
