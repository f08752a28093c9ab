"""Settings of the snapshot service and commands, from SNAPSHOT_* variables (and TZ)."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MATCHER = r'\s*[a-zA-Z_]\w*\s*(?:=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"^{_MATCHER}(?:,{_MATCHER})*$")


class Settings(BaseSettings):
    """Everything an operator can set; defaults suit the compose stack."""

    model_config = SettingsConfigDict(env_prefix="SNAPSHOT_", extra="ignore", frozen=True)

    url: str = Field("http://victoriametrics:8428", description="the Prometheus query API to read")
    selector: str = Field(
        "", description='label matchers added to every query, e.g. environment="prod" (stacks sharing a VM)'
    )
    dir: Path = Field(Path("/snapshots"), description="where snapshots/YYYY-MM-DD/ are written")
    at: str = Field("03:00", description="local time (HH:MM) the previous day is exported at")
    timezone: str = Field("UTC", validation_alias=AliasChoices("SNAPSHOT_TZ", "TZ"))
    keep_days: int = Field(90, ge=1, description="days of snapshots kept; older day folders are deleted")
    retry_interval_s: float = Field(1800.0, gt=0, description="wait before retrying a failed day")
    rule_interval_s: float = Field(
        15.0, gt=0, description="Prometheus' evaluation_interval: the step of the recorded series"
    )
    query_timeout_s: float = Field(120.0, gt=0)
    listen: str = Field("0.0.0.0:9109", description="address of /metrics and /-/healthy")
    backup: bool = Field(True, description="take an incremental vmbackup after each day's export")
    backup_dst: str = Field("", description="vmbackup -dst; empty: fs://<dir>/vmbackup")
    vm_data_path: Path = Field(Path("/victoria-metrics-data"), description="VictoriaMetrics' data directory")
    vmbackup: str = "vmbackup"
    vmrestore: str = "vmrestore"
    backup_timeout_s: float = Field(6 * 3600.0, gt=0)
    log_format: str = Field("text", pattern="^(text|json)$")

    @field_validator("at")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"SNAPSHOT_AT must be HH:MM (24 h), got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from exc
        return value

    @field_validator("selector")
    @classmethod
    def _matchers(cls, value: str) -> str:
        if value and not _SELECTOR.match(value):
            raise ValueError(f'SNAPSHOT_SELECTOR must be label matchers such as env="prod", got {value!r}')
        return value.strip()

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"SNAPSHOT_LISTEN must be HOST:PORT, got {value!r}")
        return value

    @property
    def at_time(self) -> time:
        """SNAPSHOT_AT as a time of day."""
        hours, minutes = self.at.split(":")
        return time(int(hours), int(minutes))

    @property
    def zone(self) -> ZoneInfo:
        """The time zone days and SNAPSHOT_AT are in."""
        return ZoneInfo(self.timezone)

    @property
    def backup_destination(self) -> str:
        """vmbackup's -dst."""
        return self.backup_dst or f"fs://{self.dir.resolve()}/vmbackup"
