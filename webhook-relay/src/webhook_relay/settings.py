"""Process settings from the environment (the rest of the configuration is the YAML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class RelaySettings(BaseSettings):
    """`WEBHOOK_RELAY_CONFIG`, `_ENV_FILE`, `_LOG_FORMAT`, `_LOG_LEVEL` (all prefixed `WEBHOOK_RELAY`)."""

    model_config = SettingsConfigDict(env_prefix="WEBHOOK_RELAY_", extra="ignore")

    config: Path = Path("/etc/webhook-relay/config.yml")
    # `NAME=value` lines the config's `${NAME}` may refer to, on top of the environment: the stack passes
    # robot tokens and passwords this way, so they are not in `docker inspect`'s environment.
    env_file: Path | None = None
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
