"""Entrypoint: `python -m ofa_ve` or the `ofa-ve` console script."""

from __future__ import annotations

import logging
import os
import sys
import threading

import uvicorn
from prometheus_client import CollectorRegistry

from ofa_ve.app import create_app
from ofa_ve.arrival import TimedH11Protocol
from ofa_ve.logging_setup import configure_logging
from ofa_ve.settings import Settings

log = logging.getLogger(__name__)

# Exit status after an unrecoverable device fault: any restart policy (`unless-stopped`, `on-failure`)
# brings the replica back with a fresh CUDA context.
DEVICE_FAULT_EXIT = 3


class FatalExit:
    """Stops the server `delay_s` after a device fault (one scrape can still see the failed state)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.server: uvicorn.Server | None = None
        self.triggered = threading.Event()

    def __call__(self, reason: str) -> None:
        if self.triggered.is_set():
            return
        self.triggered.set()
        log.critical("exiting in %.0f s after a device fault", self.delay_s, extra={"error": reason})
        timer = threading.Timer(self.delay_s, self._stop)
        timer.daemon = True
        timer.start()

    def _stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True


def main() -> None:
    # NVML numbers GPUs in PCI bus order; without this CUDA puts the fastest first, and `gpu` of the NVML
    # metrics and `device` of the torch metrics could name different cards. Before torch touches CUDA.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    log.info("starting", extra={"port": settings.port, "model": settings.model})
    fatal = FatalExit(settings.fault_exit_delay_s)
    app = create_app(settings, CollectorRegistry(), on_device_fault=fatal)
    # One process per GPU: prometheus_client's multiprocess mode cannot serve custom collectors or
    # exemplars. The h11 protocol is uvicorn's own, stamping each request's arrival (arrival.py).
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            limit_concurrency=settings.max_connections, timeout_graceful_shutdown=10,
                            http=TimedH11Protocol)
    server = uvicorn.Server(config)
    fatal.server = server
    server.run()
    if fatal.triggered.is_set():
        sys.exit(DEVICE_FAULT_EXIT)


if __name__ == "__main__":
    main()
