"""GET /metrics, rendered in its own thread: a scrape never stalls the event loop, nor waits for it.

prometheus_client's ASGI app renders the registry on the event loop, custom collectors (NVML) included.
This endpoint negotiates the format the same way (OpenMetrics, with exemplars, when the scraper asks
for `application/openmetrics-text`; Prometheus does), honours `name[]` and gzip, and renders on one
dedicated thread, apart from the decode pool that requests keep busy.
"""

from __future__ import annotations

import asyncio
import gzip
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send


class MetricsEndpoint:
    """An ASGI app serving `registry`; `close()` ends its thread."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="metrics-render")

    def render(
        self, accept: str, accept_encoding: str, names: list[str] | None
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The body and headers of one scrape (runs on the render thread)."""
        encoder, content_type = choose_encoder(accept)
        registry = self.registry.restricted_registry(names) if names else self.registry
        output = encoder(registry)
        headers = [(b"content-type", content_type.encode("latin-1"))]
        if gzip_accepted(accept_encoding):
            output = gzip.compress(output)
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(output)).encode("latin-1")))
        return output, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        names = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("name[]")
        loop = asyncio.get_running_loop()
        output, response_headers = await loop.run_in_executor(
            self._executor, self.render, headers.get("accept", ""), headers.get("accept-encoding", ""), names
        )
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": output})

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
