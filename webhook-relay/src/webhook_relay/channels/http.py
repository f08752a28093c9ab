"""What every chat robot has in common: one JSON POST, a reply to interpret, secrets kept out of logs."""

from __future__ import annotations

from typing import Any

import httpx

from webhook_relay.channels.base import Outcome, Request, Result
from webhook_relay.config import Target
from webhook_relay.masking import mask_url, scrub
from webhook_relay.render import Message


class HttpChannel:
    """A robot reached by an HTTP POST of JSON. Subclasses say how to build the request for a message
    and how to read the reply; sending, transport errors and masking live here once."""

    reasons: tuple[str, ...] = ()

    def __init__(self, target: Target, client: httpx.AsyncClient) -> None:
        self.target = target
        self.client = client

    def build(self, message: Message, now: float) -> Request:
        raise NotImplementedError

    def interpret(self, status: int, content: bytes) -> Result:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        t = self.target
        return [s.get_secret_value() for s in (t.access_token, t.key, t.token, t.secret) if s]

    def preview(self, message: Message, now: float) -> dict[str, Any]:
        """The exact request body, with the URL's secrets masked."""
        request = self.build(message, now)
        return {"url": mask_url(request.url), "body": request.body}

    async def send(self, message: Message, now: float) -> Result:
        """Post one message; every failure becomes a Result (nothing raised, no secret in the detail)."""
        request = self.build(message, now)
        try:
            reply = await self.client.post(request.url, json=request.body)
        except httpx.TimeoutException:
            return Result(Outcome.TRANSIENT, "timeout", "request timed out")
        except httpx.HTTPError as exc:
            return Result(Outcome.TRANSIENT, "network", scrub(f"{type(exc).__name__}: {exc}", self.secrets()))
        result = self.interpret(reply.status_code, reply.content)
        return Result(result.outcome, result.reason, scrub(result.detail, self.secrets()))
