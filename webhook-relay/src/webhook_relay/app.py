"""The application factory: wires the outbox, sender, watches and supervisor to the HTTP routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from webhook_relay import __version__
from webhook_relay.charts import ChartLinks
from webhook_relay.config import RelayConfig
from webhook_relay.context import ApiError, Relay, error_response
from webhook_relay.heartbeat import HeartbeatWatch
from webhook_relay.inbox import Inbox
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Outbox
from webhook_relay.routes import dead_letters, inbox, preview, public, webhooks
from webhook_relay.runbook import Runbook
from webhook_relay.selfcheck import StorageWatch
from webhook_relay.sender import Sender
from webhook_relay.supervise import Supervisor

log = logging.getLogger(__name__)


def live_channels(config: RelayConfig) -> str:
    """One line for the start-up log: which targets send, and which were left out for want of a credential."""
    live = ", ".join(f"{name} ({t.kind})" for name, t in config.targets.items())
    off = ", ".join(config.disabled_targets) or "none"
    return f"live: {live}; not configured (empty credentials): {off}"


def create_app(
    config: RelayConfig,
    registry: CollectorRegistry,
    outbox: Outbox,
    *,
    client: httpx.AsyncClient | None = None,
    run_sender: bool = True,
    clock: Callable[[], float] = time.time,
    enrichment_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """Build the relay app. Background tasks run in the app's lifespan when `run_sender` is true.

    `enrichment_client` (Prometheus, the instances' error views, the language model) is the app's own
    unless given; it is used only when `enrichment` is on.
    """
    metrics = RelayMetrics(registry)
    metrics.watch_outbox(lambda: outbox.stats(clock()), {n: t.kind for n, t in config.targets.items()})
    http = client or httpx.AsyncClient(timeout=config.delivery.timeout_seconds)
    mailbox = Inbox(outbox, config.inbox.keep_per_target)
    secret = config.server.token()
    token = secret.get_secret_value().encode() if secret is not None else None
    charts = ChartLinks(token, config.enrichment.chart.public_url)
    sender = Sender(config, outbox, metrics, http, clock=clock, inbox=mailbox, charts=charts)
    for name, target in config.targets.items():
        metrics.init_target(name, target.kind, sender.channels[name].reasons)
    supervisor = Supervisor(metrics)
    supervisor.check("outbox_writer", lambda: outbox.writer_alive)
    metrics.watch_components(supervisor.components)
    storage = StorageWatch(
        outbox, sender, metrics, config.alarm_targets(), clock,
        interval=config.storage.check_interval_seconds, repeat_seconds=config.storage.notice_repeat_seconds,
    )
    relay: Relay  # the health check below needs the finished context

    async def health() -> list[str]:
        return await relay.problems()

    watch = HeartbeatWatch(config, outbox, metrics, sender.wake, clock, client=http, health=health)
    for task_name, factory in sender.tasks():
        supervisor.add(task_name, "sender", factory)
    supervisor.add("heartbeat-watch", "heartbeat_watch", watch.run)
    supervisor.add("storage-watch", "storage_watch", storage.run)
    runbook = Runbook(config.server.runbook_path) if config.server.runbook_path else None
    relay = Relay(config, outbox, metrics, sender, watch, storage, supervisor, runbook, clock, token, mailbox,
                  charts)
    enrich_http: httpx.AsyncClient | None = None
    if config.enrichment.available():
        # Optional, and apart from the delivery core: the core only holds enriched alerts until a
        # stored time; the enricher's being slow, down or restarting delays no alert past that.
        from webhook_relay.enrichment import Enricher, EnrichmentMetrics

        analysis = config.enrichment.analysis.deadline_seconds if config.enrichment.analysis.configured else 0
        enrich_http = enrichment_client or httpx.AsyncClient(
            timeout=max(config.enrichment.deadline_seconds, analysis) + 1, follow_redirects=False)
        enricher = Enricher(config, outbox, sender.wake, enrich_http, EnrichmentMetrics(registry),
                            clock=clock)
        supervisor.add("enricher", "enrichment", enricher.run, essential=False)
        relay.wake_enricher = enricher.wake
        relay.preview_evidence = enricher.preview

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None
        log.info("channels: %s", live_channels(config),
                 extra={"targets": {n: t.kind for n, t in config.targets.items()},
                        "disabled": list(config.disabled_targets)})
        if run_sender:
            task = asyncio.create_task(supervisor.run(), name="supervisor")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if client is None:
                await http.aclose()
            if enrich_http is not None and enrichment_client is None:
                await enrich_http.aclose()

    app = FastAPI(
        title="webhook-relay",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_exception_handler(ApiError, error_response)
    app.state.relay = relay
    app.state.registry = registry
    # Handles the tests and the CLI reach for.
    app.state.sender = sender
    app.state.heartbeat = watch
    app.state.metrics = metrics
    app.state.storage = storage
    app.state.supervisor = supervisor
    for module in (webhooks, dead_letters, preview, inbox, public):
        app.include_router(module.router)
    return app
