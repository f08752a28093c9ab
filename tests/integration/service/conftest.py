"""Session fixtures: `python -m ofa_ve` on loopback with the real pipeline on the tiny model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.service import Server, start_server, stop_server


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service with default batching, a 1 MiB image limit, at most 8 batch items, 3 expected replicas."""
    server = start_server(
        tmp_path_factory.mktemp("ofa-ve"), "service",
        OFA_VE_MAX_IMAGE_BYTES=str(1024 * 1024), OFA_VE_MAX_BATCH_ITEMS="8", OFA_VE_MAX_WAIT_MS="5",
        OFA_VE_EXPECTED_REPLICAS="3",
    )
    yield server
    stop_server(server)
