"""REST routes: request parsing into validated pairs, the error model, per-request metrics and logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from ofa_ve.errors import ClientError, ServiceError
from ofa_ve.imaging import check_image_bytes, check_text, decode_base64
from ofa_ve.logging_setup import request_id_var
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.schemas import (
    BATCH_REQUEST_BODY,
    ERROR_RESPONSES,
    SINGLE_REQUEST_BODY,
    BatchResponse,
    EntailmentResponse,
)
from ofa_ve.service import EntailmentService, Pair
from ofa_ve.settings import Settings

log = logging.getLogger(__name__)

# Multipart/JSON overhead allowed on top of the (base64-inflated) image itself.
_ENVELOPE_BYTES = 64 * 1024


def error_response(exc: ServiceError, settings: Settings) -> JSONResponse:
    headers = {"Retry-After": str(settings.retry_after_s)} if exc.status_code == 503 else None
    return JSONResponse(
        {"error": exc.to_json(), "request_id": request_id_var.get() or ""},
        status_code=exc.status_code, headers=headers,
    )


class Tracker:
    """Counts, times and logs each request once, and turns ServiceError into its JSON response."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics

    async def run(self, endpoint: str, handler: Callable[[], Awaitable[JSONResponse]]) -> JSONResponse:
        self.metrics.in_flight.inc()
        started = time.perf_counter()
        code: str | None = None
        try:
            response = await handler()
        except ServiceError as exc:
            code = exc.code
            self.metrics.record_error(exc.code)
            response = error_response(exc, self.settings)
        except Exception:
            code = "internal_error"
            self.metrics.record_error(code)
            log.exception("unhandled error", extra={"endpoint": endpoint})
            response = error_response(ServiceError("internal error"), self.settings)
        finally:
            self.metrics.in_flight.dec()
        duration = time.perf_counter() - started
        self.metrics.record_request(endpoint, response.status_code, duration)
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        log.log(level, "request finished", extra={
            "endpoint": endpoint, "status_code": response.status_code, "error_code": code,
            "duration_ms": round(duration * 1000, 3),
        })
        return response


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it grows past `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(f"request body over {limit} bytes", code="request_too_large", status_code=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientError(f"request body over {limit} bytes", code="request_too_large", status_code=413)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientError(f"body is not valid JSON: {exc}", code="malformed_json") from exc


def pair_from_json(item: Any, settings: Settings, where: str = "body") -> Pair:
    if not isinstance(item, dict):
        raise ClientError(f"{where} must be a JSON object", code="invalid_request", status_code=422)
    image_b64 = item.get("image_base64")
    if image_b64 is None:
        raise ClientError("missing field 'image_base64'", code="invalid_request", status_code=422)
    if not isinstance(image_b64, str):
        raise ClientError("field 'image_base64' must be a string", code="invalid_request", status_code=422)
    text = check_text(item.get("text"), field="text", max_chars=settings.max_text_chars)
    premise = check_text(
        item.get("premise"), field="premise", max_chars=settings.max_text_chars, required=False
    )
    image = decode_base64(image_b64, max_bytes=settings.max_image_bytes)
    check_image_bytes(len(image), settings.max_image_bytes)
    assert text is not None
    return Pair(image=image, text=text, premise=premise)


async def pair_from_multipart(request: Request, settings: Settings) -> Pair:
    declared = request.headers.get("content-length")
    limit = settings.max_image_bytes + _ENVELOPE_BYTES
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(f"request body over {limit} bytes", code="request_too_large", status_code=413)
    try:
        # Starlette spools file parts to disk past 1 MB, so a body without Content-Length stays cheap.
        form = await request.form(max_files=1, max_fields=8)
    except Exception as exc:
        raise ClientError(f"malformed multipart body: {exc}", code="invalid_request") from exc
    try:
        upload = form.get("image")
        if upload is None:
            raise ClientError("missing file field 'image'", code="invalid_request", status_code=422)
        if not isinstance(upload, UploadFile):
            raise ClientError("field 'image' must be a file upload", code="invalid_request", status_code=422)
        image = await upload.read(settings.max_image_bytes + 1)
        check_image_bytes(len(image), settings.max_image_bytes)
        text = check_text(form.get("text"), field="text", max_chars=settings.max_text_chars)
        premise = check_text(form.get("premise"), field="premise", max_chars=settings.max_text_chars,
                             required=False)
    finally:
        await form.close()
    assert text is not None
    return Pair(image=image, text=text, premise=premise)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def build_router(settings: Settings, metrics: ServiceMetrics, service: EntailmentService) -> APIRouter:
    router = APIRouter()
    tracker = Tracker(settings, metrics)
    single_limit = (settings.max_image_bytes + 2) // 3 * 4 + _ENVELOPE_BYTES

    @router.post(
        "/v1/entailment", response_model=EntailmentResponse, responses=ERROR_RESPONSES,
        openapi_extra=SINGLE_REQUEST_BODY, summary="Does the image entail the sentence? (YES / NO / MAYBE)",
    )
    async def entailment(request: Request) -> JSONResponse:
        async def handle() -> JSONResponse:
            media = _media_type(request)
            # Shed load and refuse while loading before spending anything on the body.
            service.check_capacity()
            if media == "multipart/form-data":
                pair = await pair_from_multipart(request, settings)
            elif media == "application/json":
                pair = pair_from_json(parse_json(await read_body(request, single_limit)), settings)
            else:
                raise ClientError(
                    f"unsupported content type {media or '(none)'!r}; "
                    "use multipart/form-data or application/json",
                    code="unsupported_media_type", status_code=415,
                )
            result = await service.infer(pair, service.deadline())
            return JSONResponse({**result, "request_id": request_id_var.get() or ""})

        return await tracker.run("entailment", handle)

    @router.post(
        "/v1/entailment/batch", response_model=BatchResponse, responses=ERROR_RESPONSES,
        openapi_extra=BATCH_REQUEST_BODY,
        summary="Many image/sentence pairs in one call; per-item results and per-item errors",
    )
    async def batch(request: Request) -> JSONResponse:
        async def handle() -> JSONResponse:
            if _media_type(request) != "application/json":
                raise ClientError("batch requests must be application/json", code="unsupported_media_type",
                                  status_code=415)
            body = parse_json(await read_body(request, single_limit * settings.max_batch_items))
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ClientError("body must be an object with a list field 'items'", code="invalid_request",
                                  status_code=422)
            if not items:
                raise ClientError("'items' is empty", code="empty_batch", status_code=422)
            if len(items) > settings.max_batch_items:
                raise ClientError(
                    f"{len(items)} items, over the limit of {settings.max_batch_items}",
                    code="batch_too_large", status_code=413,
                )
            parsed: list[Pair | ServiceError] = []
            for index, item in enumerate(items):
                try:
                    parsed.append(pair_from_json(item, settings, where=f"items[{index}]"))
                except ClientError as exc:
                    parsed.append(exc)
            results = await service.infer_many(parsed, service.deadline())
            return JSONResponse({"results": results, "request_id": request_id_var.get() or ""})

        return await tracker.run("batch", handle)

    @router.get("/healthz", summary="Liveness: the process serves HTTP")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: model loaded and warmed up",
                responses={503: {"description": "loading, or failed with a retry scheduled"}})
    async def readyz() -> JSONResponse:
        st = service.engine.status()
        if st.state == "ready":
            return JSONResponse({"status": "ready"})
        return JSONResponse({
            "status": st.state,
            "error": st.error,
            "failed_attempts": st.failed_attempts,
            "retry_in_s": None if st.retry_in_s is None else round(st.retry_in_s, 3),
        }, status_code=503)

    return router


def install(app: FastAPI, settings: Settings, metrics: ServiceMetrics, service: EntailmentService) -> None:
    app.include_router(build_router(settings, metrics, service))
