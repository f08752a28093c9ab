"""Configuration from OFA_VE_* environment variables, and device resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
from ofa_ve.model import resolve_device
from ofa_ve.settings import DEFAULT_MODEL, Settings
from pydantic import ValidationError


def test_defaults_name_the_hub_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without configuration the service serves the large SNLI-VE model on port 8000, device auto."""
    for key in ("OFA_VE_MODEL", "OFA_VE_PORT", "OFA_VE_DEVICE"):
        monkeypatch.delenv(key, raising=False)
    s = Settings()
    assert (s.model, s.port, s.device) == (DEFAULT_MODEL, 8000, "auto")
    assert not s.model_is_local


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """OFA_VE_* variables set the fields."""
    monkeypatch.setenv("OFA_VE_MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("OFA_VE_DEVICE", "cpu")
    s = Settings()
    assert (s.max_batch_size, s.device) == (16, "cpu")


def test_relative_local_dir_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing relative directory is made absolute, so ModelScope never takes it for a hub id."""
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    s = Settings(model="models/tiny")
    assert s.model == str(tmp_path / "models" / "tiny")
    assert s.model_is_local


BAD_VALUES = [
    ("device", "tpu"), ("max_batch_size", 0), ("queue_capacity", 0), ("expected_replicas", -1),
    ("load_retry_initial_s", 0), ("load_retry_max_s", -1), ("load_retry_multiplier", 0.5),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    """Impossible settings fail at start-up, not at the first request."""
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_device_resolution() -> None:
    """auto follows CUDA availability; asking for CUDA without a GPU is an error."""
    assert resolve_device("auto", cuda_available=True) == "cuda"
    assert resolve_device("auto", cuda_available=False) == "cpu"
    assert resolve_device("cpu", cuda_available=True) == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA"):
        resolve_device("cuda", cuda_available=False)


def test_retry_and_replica_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OFA_VE_LOAD_RETRY_* and OFA_VE_EXPECTED_REPLICAS set the retry schedule and the replica count."""
    monkeypatch.setenv("OFA_VE_LOAD_RETRY_INITIAL_S", "0.5")
    monkeypatch.setenv("OFA_VE_LOAD_RETRY_MAX_S", "4")
    monkeypatch.setenv("OFA_VE_LOAD_RETRY_MULTIPLIER", "3")
    monkeypatch.setenv("OFA_VE_EXPECTED_REPLICAS", "2")
    s = Settings()
    assert (s.load_retry_initial_s, s.load_retry_max_s, s.load_retry_multiplier, s.expected_replicas) == (
        0.5, 4, 3, 2
    )


def test_expected_replicas_defaults_to_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OFA_VE_EXPECTED_REPLICAS the count is 0, meaning not configured."""
    monkeypatch.delenv("OFA_VE_EXPECTED_REPLICAS", raising=False)
    assert Settings().expected_replicas == 0


def test_retry_cap_below_start_is_refused() -> None:
    """A cap smaller than the first wait is a configuration error, not a silently shorter wait."""
    with pytest.raises(ValidationError, match="load_retry_max_s"):
        Settings(load_retry_initial_s=60, load_retry_max_s=10)
