"""Reading request bodies within a size limit, with or without Content-Length, and parsing them.

Every body is refused with 413 `request_too_large` as soon as it grows past its limit: a declared
Content-Length over it before a byte is read, a chunked body at the chunk that crosses it. Multipart
bodies go through Starlette's parser over the same limited stream (file parts spool to disk past 1 MB
as before, but the total is bounded now). JSON over `OFF_LOOP_BYTES` is parsed in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ofa_ve.errors import ClientError

# Below this, json.loads takes well under a millisecond: not worth a thread hop.
OFF_LOOP_BYTES = 256 * 1024


def too_large(limit: int) -> ClientError:
    return ClientError(f"request body over {limit} bytes", code="request_too_large", status_code=413)


def declared_length(request: Request) -> int | None:
    """The Content-Length the client declared, or None (chunked, or not a number)."""
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


def check_declared(request: Request, limit: int) -> int | None:
    """The declared length, refused with 413 when over `limit`."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_large(limit)
    return declared


async def limited_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, raising 413 at the chunk that takes it past `limit`."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it grows past `limit`."""
    check_declared(request, limit)
    return b"".join([chunk async for chunk in limited_stream(request, limit)])


async def read_form(request: Request, limit: int, *, max_files: int = 1, max_fields: int = 8) -> FormData:
    """A multipart form whose total size is bounded by `limit` (413 past it)."""
    check_declared(request, limit)
    parser = MultiPartParser(request.headers, limited_stream(request, limit), max_files=max_files,
                             max_fields=max_fields)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise ClientError(f"malformed multipart body: {exc.message}", code="invalid_request") from exc
    except (ValueError, KeyError) as exc:
        raise ClientError(f"malformed multipart body: {exc}", code="invalid_request") from exc


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientError(f"body is not valid JSON: {exc}", code="malformed_json") from exc


async def parse_json(body: bytes) -> Any:
    """The parsed JSON (in a worker thread when large), or 400 malformed_json."""
    if len(body) < OFF_LOOP_BYTES:
        return _loads(body)
    return await asyncio.to_thread(_loads, body)
