"""Fake chat robot APIs: DingTalk, WeCom and Feishu compatible, signatures checked, faults on demand.

Signatures are verified with an implementation written here from the vendors' documentation, kept
independent of `webhook_relay.channels`. WeCom image messages are checked like WeCom does (base64 that
decodes, the MD5 of the bytes, at most 2 MB).

Also a fake OpenAI-compatible chat-completions API (`POST /v1/chat/completions`) for the relay's AI
analysis, answering per `llm_mode`: good (a valid answer), slow (good, after `llm_delay` s), garbage
(prose), error (HTTP 500), schema (JSON that breaks the schema). `POST /_fake/llm` sets both.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

RATE_CODES = {"dingtalk": 130101, "wecom": 45009, "feishu": 11232}
LIMITS = {"dingtalk": 20000, "wecom": 4096}


@dataclass
class FakeChat:
    """State shared by the HTTP handlers; tests may read and change it directly when in-process."""

    dingtalk: dict[str, str | None] = field(default_factory=dict)  # access_token -> signing secret
    wecom: set[str] = field(default_factory=set)  # keys
    feishu: dict[str, str | None] = field(default_factory=dict)  # token -> signing secret
    rate_messages: int | None = None
    rate_period: float = 60.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    faults: deque[dict[str, Any]] = field(default_factory=deque)
    # channel -> fault applied to every request while set (an outage of hours, not a count of faults).
    outages: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Heartbeats received by the push-monitor endpoint: (time, token).
    pings: list[tuple[float, str]] = field(default_factory=list)
    # The fake language model: how it answers, how long it takes, what it was asked.
    llm_mode: str = "good"
    llm_delay: float = 0.0
    llm_requests: list[dict[str, Any]] = field(default_factory=list)
    _sent: dict[str, deque[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, doc: dict[str, Any]) -> None:
        with self.lock:
            self.dingtalk.update(doc.get("dingtalk", {}))
            self.wecom.update(doc.get("wecom", []))
            self.feishu.update(doc.get("feishu", {}))
            if "rate_limit" in doc:
                limit = doc["rate_limit"] or {}
                self.rate_messages = limit.get("messages")
                self.rate_period = float(limit.get("period_seconds", 60))

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.rejected.clear()
            self.faults.clear()
            self.outages.clear()
            self.pings.clear()
            self._sent.clear()
            self.llm_requests.clear()

    def texts(self, channel: str | None = None) -> list[str]:
        """The markdown text of each accepted message, in arrival order."""
        with self.lock:
            found = [m for m in self.messages if channel is None or m["channel"] == channel]
        return [message_text(m["body"]) for m in found]

    def _next_fault(self, channel: str) -> dict[str, Any] | None:
        with self.lock:
            if channel in self.outages:
                return dict(self.outages[channel])
            if not self.faults:
                return None
            fault = self.faults[0]
            fault["count"] = fault.get("count", 1) - 1
            if fault["count"] <= 0:
                self.faults.popleft()
            return dict(fault)

    def _rate_limited(self, robot: str, now: float) -> bool:
        if self.rate_messages is None:
            return False
        with self.lock:
            sent = self._sent.setdefault(robot, deque())
            while sent and sent[0] <= now - self.rate_period:
                sent.popleft()
            if len(sent) >= self.rate_messages:
                return True
            sent.append(now)
            return False


LLM_ANSWER = {
    "hypothesis": "The replica is saturated: requests wait in the queue while the GPU runs out of memory "
                  "on large batches.",
    "confidence": "medium",
    "next_checks": ["Lower OFA_VE_MAX_BATCH_SIZE or add a replica", "Look at GPU memory on the overview "
                    "dashboard", "Open the request ids of the recent errors"],
}


def llm_content(mode: str) -> str:
    """The assistant message content of the fake model in `mode`."""
    if mode == "garbage":
        return "I think the GPU is sad today. Maybe restart everything?"
    if mode == "schema":
        return json.dumps({"hypothesis": "x", "confidence": "very high"})
    return "```json\n" + json.dumps(LLM_ANSWER) + "\n```"


def image_error(body: dict[str, Any]) -> tuple[int, str] | None:
    """WeCom's checks of an image message (None when it passes)."""
    image = body.get("image") or {}
    try:
        data = base64.b64decode(str(image.get("base64", "")), validate=True)
    except (binascii.Error, ValueError):
        return 40009, "invalid image"
    if not data or len(data) > 2 * 1024 * 1024:
        return 40009, "invalid image size"
    if hashlib.md5(data).hexdigest() != image.get("md5"):  # noqa: S324 - WeCom's checksum
        return 40009, "image md5 mismatch"
    return None


def message_text(body: dict[str, Any]) -> str:
    if body.get("msgtype") == "markdown":
        md = body.get("markdown", {})
        return md.get("text", md.get("content", ""))
    if body.get("msg_type") == "interactive":
        return "".join(e.get("content", "") for e in body.get("card", {}).get("elements", []))
    return str(body.get("text", {}).get("content", ""))


def _dingtalk_sign_ok(secret: str, timestamp: str, sign: str) -> bool:
    if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > 3600_000:
        return False
    string_to_sign = f"{timestamp}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, sign)


def _feishu_sign_ok(secret: str, timestamp: str, sign: str) -> bool:
    if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 3600:
        return False
    key = f"{timestamp}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, sign)


def _reply(channel: str, code: int, msg: str) -> JSONResponse:
    if channel == "feishu":
        return JSONResponse({"code": code, "msg": msg, "data": {}})
    return JSONResponse({"errcode": code, "errmsg": msg})


def create_app(state: FakeChat) -> Starlette:
    async def handle(request: Request, channel: str, robot: str, auth_error: tuple[int, str] | None) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return _reply(channel, 40001 if channel != "feishu" else 9499, "invalid json")
        fault = state._next_fault(channel)
        if fault:
            if fault.get("delay"):
                await asyncio.sleep(float(fault["delay"]))
            if fault.get("status"):
                return JSONResponse({"error": "injected"}, status_code=int(fault["status"]))
            if fault.get("errcode") is not None:
                state.rejected.append({"channel": channel, "body": body, "errcode": fault["errcode"]})
                return _reply(channel, int(fault["errcode"]), "injected")
        if auth_error is not None:
            state.rejected.append({"channel": channel, "body": body, "errcode": auth_error[0]})
            return _reply(channel, *auth_error)
        if channel == "wecom" and body.get("msgtype") == "image":
            refused = image_error(body)
            if refused is not None:
                state.rejected.append({"channel": channel, "body": body, "errcode": refused[0]})
                return _reply(channel, *refused)
        text = message_text(body)
        limit = LIMITS.get(channel)
        if limit is not None and len(text.encode()) > limit:
            code = 460101 if channel == "dingtalk" else 40058
            state.rejected.append({"channel": channel, "body": body, "errcode": code})
            return _reply(channel, code, "message too long")
        if state._rate_limited(f"{channel}:{robot}", time.monotonic()):
            state.rejected.append({"channel": channel, "body": body, "errcode": RATE_CODES[channel]})
            return _reply(channel, RATE_CODES[channel], "send too fast")
        with state.lock:
            state.messages.append({"channel": channel, "robot": robot, "body": body, "at": time.time()})
        return _reply(channel, 0, "ok" if channel != "feishu" else "success")

    async def dingtalk(request: Request) -> Any:
        q = request.query_params
        token = q.get("access_token", "")
        error = None
        if token not in state.dingtalk:
            error = (300001, "token is not exist")
        elif state.dingtalk[token] and not _dingtalk_sign_ok(
            state.dingtalk[token] or "", q.get("timestamp", ""), q.get("sign", "")
        ):
            error = (310000, "sign not match")
        return await handle(request, "dingtalk", token, error)

    async def wecom(request: Request) -> Any:
        key = request.query_params.get("key", "")
        error = None if key in state.wecom else (93000, "invalid webhook url")
        return await handle(request, "wecom", key, error)

    async def feishu(request: Request) -> Any:
        token = request.path_params["token"]
        error = None
        if token not in state.feishu:
            error = (19001, "param invalid: incoming webhook access token invalid")
        elif state.feishu[token]:
            try:
                body = await request.json()
            except ValueError:
                body = {}
            if not _feishu_sign_ok(
                state.feishu[token] or "", str(body.get("timestamp", "")), str(body.get("sign", ""))
            ):
                error = (19021, "sign match fail or timestamp is not within one hour from current time")
        return await handle(request, "feishu", token, error)

    async def get_messages(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse({"messages": list(state.messages), "rejected": list(state.rejected)})

    async def delete_messages(request: Request) -> JSONResponse:
        state.reset()
        return JSONResponse({"status": "cleared"})

    async def post_faults(request: Request) -> JSONResponse:
        faults = await request.json()
        with state.lock:
            state.faults.extend(faults if isinstance(faults, list) else [faults])
        return JSONResponse({"queued": len(state.faults)})

    async def post_config(request: Request) -> JSONResponse:
        state.configure(await request.json())
        return JSONResponse({"status": "ok"})

    async def chat_completions(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": {"message": "invalid json"}}, status_code=400)
        with state.lock:
            state.llm_requests.append({"at": time.time(), "body": body,
                                       "authorization": request.headers.get("authorization", "")})
            mode, delay = state.llm_mode, state.llm_delay
        if mode == "slow" or delay:
            await asyncio.sleep(delay)
        if mode == "error":
            return JSONResponse({"error": {"message": "injected"}}, status_code=500)
        return JSONResponse({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model", ""),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": llm_content(mode)}}],
        })

    async def post_llm(request: Request) -> JSONResponse:
        doc = await request.json()
        with state.lock:
            state.llm_mode = str(doc.get("mode", state.llm_mode))
            state.llm_delay = float(doc.get("delay", state.llm_delay))
        return JSONResponse({"mode": state.llm_mode, "delay": state.llm_delay})

    async def get_llm(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse({"mode": state.llm_mode, "delay": state.llm_delay,
                                 "requests": list(state.llm_requests)})

    async def healthy(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ping(request: Request) -> PlainTextResponse:
        # A push monitor (healthchecks.io, Uptime Kuma): any method, the token in the path.
        with state.lock:
            state.pings.append((time.time(), request.path_params["token"]))
        return PlainTextResponse("OK")

    async def get_pings(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse({"pings": [{"at": at, "token": token} for at, token in state.pings]})

    return Starlette(
        routes=[
            Route("/robot/send", dingtalk, methods=["POST"]),
            Route("/cgi-bin/webhook/send", wecom, methods=["POST"]),
            Route("/open-apis/bot/v2/hook/{token}", feishu, methods=["POST"]),
            Route("/_fake/messages", get_messages, methods=["GET"]),
            Route("/_fake/messages", delete_messages, methods=["DELETE"]),
            Route("/_fake/faults", post_faults, methods=["POST"]),
            Route("/_fake/config", post_config, methods=["POST"]),
            Route("/_fake/healthy", healthy, methods=["GET"]),
            Route("/ping/{token}", ping, methods=["GET", "POST", "HEAD"]),
            Route("/_fake/pings", get_pings, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/_fake/llm", post_llm, methods=["POST"]),
            Route("/_fake/llm", get_llm, methods=["GET"]),
        ]
    )


def serve_in_thread(
    app: Any, host: str, port: int, name: str
) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Start `app` under uvicorn in a daemon thread; returns once it listens, with the bound port."""
    # No websockets/httptools: fewer optional imports whose warnings would fail strict test runs.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", ws="none",
                            http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    return server, thread, port or server.servers[0].sockets[0].getsockname()[1]


def stop_in_thread(server: uvicorn.Server, thread: threading.Thread) -> None:
    """Ask a server started by `serve_in_thread` to exit and wait for its thread."""
    server.should_exit = True
    thread.join(timeout=10)


class FakeChatServer:
    """Runs the fake in a background thread; `stop()` and `start()` again simulate an outage."""

    def __init__(self, state: FakeChat | None = None, port: int = 0, host: str = "127.0.0.1") -> None:
        self.state = state or FakeChat()
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeChatServer:
        self._server, self._thread, self.port = serve_in_thread(create_app(self.state), self.host, self.port,
                                                                "fakechat")
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            stop_in_thread(self._server, self._thread)
        self._server = None
        self._thread = None
