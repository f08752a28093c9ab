"""Process settings from the environment (the rest of the configuration is the YAML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class RelaySettings(BaseSettings):
    """`WEBHOOK_RELAY_CONFIG`, `WEBHOOK_RELAY_LOG_FORMAT`, `WEBHOOK_RELAY_LOG_LEVEL`."""

    model_config = SettingsConfigDict(env_prefix="WEBHOOK_RELAY_", extra="ignore")

    config: Path = Path("/etc/webhook-relay/config.yml")
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
