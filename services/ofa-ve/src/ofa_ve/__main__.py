"""Entrypoint: `python -m ofa_ve` or the `ofa-ve` console script."""

from __future__ import annotations

import logging

import uvicorn
from prometheus_client import CollectorRegistry

from ofa_ve.app import create_app
from ofa_ve.logging_setup import configure_logging
from ofa_ve.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    logging.getLogger(__name__).info("starting", extra={"port": settings.port, "model": settings.model})
    app = create_app(settings, CollectorRegistry())
    # One process per GPU: prometheus_client's multiprocess mode cannot serve custom collectors.
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                limit_concurrency=settings.max_connections, timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
