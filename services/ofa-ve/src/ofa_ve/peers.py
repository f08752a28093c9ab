"""Finding a request in another replica's log: an exemplar link opens on whichever replica answers.

Every replica keeps its own request log, but a link (Grafana's exemplar link, a log line) reaches one
address. On a miss the replica resolves `OFA_VE_PEER_DNS` (in Compose the service name, whose A
records are every replica, as Prometheus' discovery uses) and asks each peer once, in parallel, with
a header that keeps a peer from asking further.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PEER_HEADER = "x-ofa-ve-peer-lookup"


def _fetch(url: str, timeout_s: float) -> dict[str, Any] | None:
    request = urllib.request.Request(url, headers={PEER_HEADER: "1", "accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - http only
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            log.debug("peer %s answered %s", url, exc.code)
        return None
    except (OSError, ValueError) as exc:
        log.debug("peer %s unreachable: %s", url, exc)
        return None


class PeerLookup:
    """Asks the replicas behind a DNS name for a request record."""

    def __init__(
        self, name: str, port: int, timeout_s: float,
        fetch: Callable[[str, float], dict[str, Any] | None] = _fetch,
    ) -> None:
        self.name = name
        self.port = port
        self.timeout_s = timeout_s
        self._fetch = fetch

    async def addresses(self) -> list[str]:
        """Every address the name resolves to (empty when it does not resolve)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(self.name, self.port, type=socket.SOCK_STREAM), self.timeout_s
            )
        except (OSError, TimeoutError) as exc:
            log.debug("peer name %s does not resolve: %s", self.name, exc)
            return []
        return sorted({str(info[4][0]) for info in infos})

    def url(self, address: str, request_id: str) -> str:
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{self.port}/v1/requests/{request_id}"

    async def find(self, request_id: str) -> dict[str, Any] | None:
        """The first record a peer has for `request_id`, or None."""
        tasks = [asyncio.create_task(asyncio.to_thread(self._fetch, self.url(a, request_id), self.timeout_s))
                 for a in await self.addresses()]
        try:
            for next_done in asyncio.as_completed(tasks):
                record = await next_done
                if record is not None:
                    return record
            return None
        finally:
            for task in tasks:
                task.cancel()
