"""A stand-in for ofa-ve's HTTP API with a set delay: fast A/B runs of the gate's orchestration.

It answers like the real service where the gate looks (/readyz, /metrics with RSS and model info,
200 with a label for a valid pair, 422 for a bad one, per-item results for a batch) and nowhere else.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    delay_s: float = 0.02
    status: int | None = None  # answer every inference call with this status instead
    rss_bytes: float = 5e8


def _valid_image(data: bytes) -> bool:
    """A whole JPEG, PNG or WEBP by its first and last bytes (decoding would slow the fake down)."""
    if data.startswith(b"\xff\xd8\xff"):
        return data.endswith(b"\xff\xd9")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data[-8:-4] == b"IEND"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return int.from_bytes(data[4:8], "little") + 8 == len(data)
    return False


def _pair_ok(image: bytes, text: Any) -> bool:
    return isinstance(text, str) and bool(text.strip()) and _valid_image(image)


def _multipart(body: bytes, content_type: str) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[name] = payload if part.get_filename() else payload.decode()
    return fields


def _handler(behaviour: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as two writes: without this, Nagle + delayed ACK add 40 ms a call.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/readyz":
                self._send(200, b'{"status": "ready"}')
            elif self.path == "/metrics":
                text = (f"process_resident_memory_bytes {behaviour.rss_bytes:e}\n"
                        'ofa_ve_model_info{model="fake",revision="",device="cpu",dtype="float32"} 1.0\n')
                self._send(200, text.encode(), "text/plain")
            else:
                self._send(404, b"{}")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            ctype = self.headers.get("content-type", "")
            time.sleep(behaviour.delay_s)
            if behaviour.status is not None:
                self._send(behaviour.status, b'{"error": {"code": "internal_error"}}')
                return
            if self.path == "/v1/entailment/batch":
                results = []
                for index, item in enumerate(json.loads(body)["items"]):
                    ok = _pair_ok(base64.b64decode(item["image_base64"]), item.get("text"))
                    results.append({"index": index, "label": "YES"} if ok else
                                   {"index": index, "error": {"code": "corrupt_image"}})
                self._send(200, json.dumps({"results": results}).encode())
                return
            if ctype.startswith("multipart/"):
                fields = _multipart(body, ctype)
                ok = _pair_ok(fields.get("image", b""), fields.get("text"))
            else:
                item = json.loads(body)
                ok = _pair_ok(base64.b64decode(item["image_base64"]), item.get("text"))
            self._send(200 if ok else 422, b'{"label": "YES", "score": 0.9}' if ok else b'{"error": {}}')

    return Handler


@contextmanager
def fake_service(behaviour: Behaviour) -> Iterator[str]:
    """The fake on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(behaviour))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
