"""Service configuration, read from environment variables prefixed with OFA_VE_."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ofa_ve.loading import LOAD_RETRY_INITIAL_S, LOAD_RETRY_MAX_S, LOAD_RETRY_MULTIPLIER

DEFAULT_MODEL = "damo/ofa_visual-entailment_snli-ve_large_en"


class Settings(BaseSettings):
    """Everything an operator can tune; defaults suit one GPU serving the large model."""

    model_config = SettingsConfigDict(env_prefix="OFA_VE_", extra="ignore", frozen=True)

    model: str = Field(DEFAULT_MODEL, description="ModelScope hub id or absolute local model directory")
    model_revision: str | None = Field(None, description="hub revision; ignored for a local directory")
    device: Literal["auto", "cuda", "cpu"] = "auto"
    fp16: bool = Field(False, description="run the model in float16 (CUDA only)")
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

    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(25_000_000, ge=64, description="width*height; larger = decompression bomb")
    max_text_chars: int = Field(512, ge=1)
    max_batch_items: int = Field(32, ge=1, description="pairs accepted by /v1/entailment/batch")

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

    @property
    def model_is_local(self) -> bool:
        return os.path.isabs(self.model)
