"""Reads and programs the fake chat container through its `/_fake/*` HTTP API (tests/fakechat/server.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.fakechat.server import message_text


@dataclass(frozen=True)
class ChatMessage:
    """One message a fake robot accepted."""

    channel: str
    title: str  # DingTalk's markdown title, e.g. "[FIRING:1] ServiceDown"; empty for WeCom
    text: str


class FakeChatClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _get(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/_fake/messages", timeout=10)
        response.raise_for_status()
        return response.json()

    def messages(self, channel: str | None = None) -> list[ChatMessage]:
        """Accepted messages, oldest first, optionally of one channel (dingtalk, wecom)."""
        return [
            ChatMessage(m["channel"], m["body"].get("markdown", {}).get("title", ""), message_text(m["body"]))
            for m in self._get()["messages"]
            if channel is None or m["channel"] == channel
        ]

    def bodies(self, channel: str) -> list[dict[str, Any]]:
        """The request bodies a channel's robot accepted (WeCom image messages included), oldest first."""
        return [m["body"] for m in self._get()["messages"] if m["channel"] == channel]

    def llm(self, mode: str, delay: float = 0.0) -> None:
        """How the fake language model answers from now on (good, slow, garbage, error, schema)."""
        reply = httpx.post(f"{self.base_url}/_fake/llm", json={"mode": mode, "delay": delay}, timeout=10)
        reply.raise_for_status()

    def llm_requests(self) -> list[dict[str, Any]]:
        """What the fake language model was asked since the last reset."""
        response = httpx.get(f"{self.base_url}/_fake/llm", timeout=10)
        response.raise_for_status()
        return response.json()["requests"]

    def rejected(self) -> list[dict[str, Any]]:
        """Requests the fake refused (bad signature, unknown token, injected fault)."""
        return self._get()["rejected"]

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next `count` robot requests with HTTP `status`."""
        fault = {"status": status, "count": count}
        httpx.post(f"{self.base_url}/_fake/faults", json=fault, timeout=10).raise_for_status()

    def fail_everything(self) -> None:
        """Answer every robot request with HTTP 500 until `reset`, as a chat API outage does."""
        self.fail_next(500, count=1_000_000)

    def reset(self) -> None:
        """Forget messages and clear queued faults."""
        httpx.delete(f"{self.base_url}/_fake/messages", timeout=10).raise_for_status()

    def pings(self, token: str) -> list[float]:
        """Times the push-monitor endpoint `/ping/<token>` was called (the relay's heartbeat forward)."""
        response = httpx.get(f"{self.base_url}/_fake/pings", timeout=10)
        response.raise_for_status()
        return [p["at"] for p in response.json()["pings"] if p["token"] == token]
