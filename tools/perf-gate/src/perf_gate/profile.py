"""The committed profile: the fixed workload, the decision thresholds and the SLO per hardware class.

One file holds every number the gate decides with (profiles/default.yml); unknown keys are refused,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PROFILE = "default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSpec(_Strict):
    """One kind of image in the mix; pixels are a seeded pattern, so encoded sizes are realistic."""

    width: int = Field(ge=8, le=8192)
    height: int = Field(ge=8, le=8192)
    format: Literal["JPEG", "PNG", "WEBP"]
    weight: float = Field(gt=0)


class TextSpec(_Strict):
    """One sentence length in the mix, in words."""

    words: int = Field(ge=1, le=100)
    weight: float = Field(gt=0)


class Workload(_Strict):
    images: list[ImageSpec] = Field(min_length=1)
    texts: list[TextSpec] = Field(min_length=1)
    premise_share: float = Field(ge=0, le=1, description="pairs that also carry a premise")
    multipart_share: float = Field(ge=0, le=1, description="single calls sent as multipart, else JSON")
    bad_share: float = Field(ge=0, lt=1, description="requests and batch items that must be refused (4xx)")


class Step(_Strict):
    """One concurrency step of a round: a fixed list of calls sent by `concurrency` workers."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: Literal["single", "batch"]
    concurrency: int = Field(ge=1, le=256)
    requests: int = Field(ge=1, le=100_000, description="calls per round (batch: calls, not items)")
    batch_items: int = Field(0, ge=0, le=256)
    slo: bool = Field(False, description="the SLO latency checks pool these steps' single-call latencies")

    @model_validator(mode="after")
    def _batch_items_only_for_batch(self) -> Step:
        if self.kind == "batch" and self.batch_items < 1:
            raise ValueError(f"step {self.name}: a batch step needs batch_items >= 1")
        if self.kind == "single" and self.batch_items:
            raise ValueError(f"step {self.name}: batch_items only applies to batch steps")
        if self.slo and self.kind != "single":
            raise ValueError(f"step {self.name}: only single-call steps can carry the SLO")
        return self


class Thresholds(_Strict):
    """How much worse a metric must get, and how sure the gate must be, to call it a regression."""

    alpha: float = Field(gt=0, lt=0.5, description="one-sided Mann-Whitney U significance level")
    latency_p50: float = Field(gt=0, description="relative increase of the median latency")
    latency_p95: float = Field(gt=0)
    latency_p99: float = Field(gt=0)
    throughput: float = Field(gt=0, lt=1, description="relative decrease of calls (batch: items) per second")
    error_ratio: float = Field(gt=0, lt=1, description="absolute increase of the unexpected-outcome ratio")
    peak_rss: float = Field(gt=0, description="relative increase of the peak resident memory")


class SloClass(_Strict):
    """Absolute limits for one hardware class (model + device); A/B checks the candidate, live the rules."""

    description: str
    p95_s: float | None = Field(None, gt=0)
    p99_s: float | None = Field(None, gt=0)
    error_ratio: float | None = Field(None, ge=0, lt=1)
    peak_rss_bytes: int | None = Field(None, gt=0)
    min_requests: int = Field(100, ge=1, description="live: fewer requests in the window = no evidence")


class Profile(_Strict):
    name: str
    seed: int
    rounds: int = Field(ge=2, le=200, description="interleaved rounds per build")
    max_rounds: int = Field(ge=2, le=400, description="rounds an undecided A/B may grow to")
    extra_rounds: int = Field(ge=1, le=100, description="rounds added at a time while undecided")
    warmup_calls: int = Field(ge=0, le=100_000, description="first calls of each step, sent once, unmeasured")
    request_timeout_s: float = Field(gt=0)
    rss_poll_s: float = Field(gt=0, description="how often the active build's /metrics is read for its RSS")
    service_env: dict[str, str] = Field(default_factory=dict, description="environment of started builds")
    workload: Workload
    steps: list[Step] = Field(min_length=1)
    thresholds: Thresholds
    slo_classes: dict[str, SloClass]
    sha256: str = Field("", description="of the profile's content; filled in by load_profile")

    @model_validator(mode="after")
    def _unique_step_names(self) -> Profile:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names repeat: {names}")
        if self.max_rounds < self.rounds:
            raise ValueError(f"max_rounds ({self.max_rounds}) is below rounds ({self.rounds})")
        return self

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


class ProfileError(ValueError):
    """The profile file is missing or invalid."""


def load_profile(source: str | Path = DEFAULT_PROFILE) -> Profile:
    """A profile by bundled name (`default`) or from a YAML file path."""
    text = _read(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile {source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"profile {source}: expected a mapping at the top")
    # Of the content, not the text: editing a comment does not invalidate a stored baseline.
    data["sha256"] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"profile {source}: {exc}") from exc


def _read(source: str | Path) -> str:
    path = Path(source)
    if path.suffix in (".yml", ".yaml") or path.exists():
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"profile {source}: {exc.strerror}") from exc
    bundled = resources.files("perf_gate") / "profiles" / f"{source}.yml"
    if not bundled.is_file():
        raise ProfileError(f"no bundled profile named {source!r} and no such file")
    return bundled.read_text(encoding="utf-8")
