"""Root fixtures shared by every suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.env import ROOT


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return ROOT
