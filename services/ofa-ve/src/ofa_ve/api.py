"""REST routes: request parsing into validated pairs, the error model, per-request metrics and logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from ofa_ve import context
from ofa_ve.bodies import check_declared, parse_json, read_body, read_form
from ofa_ve.context import RequestContext
from ofa_ve.errors import ClientError, ServiceError
from ofa_ve.imaging import check_image_bytes, check_text, normalize_base64
from ofa_ve.logging_setup import accept_request_id, request_id_var
from ofa_ve.metrics import ServiceMetrics
from ofa_ve.requestlog import SHED_CODES, RequestLog
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


def error_response(exc: ServiceError, settings: Settings) -> JSONResponse:
    headers = {"Retry-After": str(settings.retry_after_s)} if exc.status_code == 503 else None
    return JSONResponse(
        {"error": exc.to_json(), "request_id": request_id_var.get() or ""},
        status_code=exc.status_code, headers=headers,
    )


class Tracker:
    """Counts, times, logs and keeps (request log) each request once; turns ServiceError into its JSON
    response. Latency runs from the request's arrival at the server, not from the handler's start."""

    def __init__(
        self, settings: Settings, metrics: ServiceMetrics, request_log: RequestLog | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        if request_log is None:  # (an empty log is falsy: no `or` here)
            request_log = RequestLog(settings.request_log_size, settings.slow_request_s, settings.replica)
        self.request_log = request_log

    def begin(self, endpoint: str, ctx: RequestContext) -> None:
        """The handler starts: records how long the request waited for it."""
        ctx.endpoint = endpoint
        wait = max(0.0, time.perf_counter() - ctx.received)
        ctx.timings_s["wait"] = wait
        self.metrics.request_wait.labels(endpoint).observe(wait)
        self.metrics.in_flight.inc()

    def end(self, ctx: RequestContext, status_code: int, error: ServiceError | None) -> None:
        """The handler finished: counts, observes (exemplar when kept or sampled), keeps and logs."""
        self.metrics.in_flight.dec()
        duration = time.perf_counter() - ctx.received
        ctx.status_code, ctx.duration_s = status_code, duration
        if error is not None:
            ctx.error, ctx.cause = error.to_json(), error.cause
            self.metrics.record_error(error.code, error.cause)
        endpoint = ctx.endpoint or "unknown"
        keep = self.request_log.must_keep(ctx)
        self.metrics.record_request(endpoint, status_code, duration, ctx, keep=keep)
        self.request_log.add(ctx)
        code = error.code if error is not None else None
        shed = code in SHED_CODES
        level = logging.WARNING if status_code >= 500 and not shed else logging.INFO
        log.log(level, "request finished", extra={
            "endpoint": endpoint, "status_code": status_code, "error_code": code,
            "cause": error.cause if error is not None else None,
            "duration_ms": round(duration * 1000, 3), "wait_ms": round(ctx.timings_s["wait"] * 1000, 3),
        })

    async def run(self, endpoint: str, handler: Callable[[], Awaitable[JSONResponse]]) -> JSONResponse:
        ctx = context.current()
        token = None
        if ctx is None:  # outside the middleware (benchmarks): the request arrives now
            ctx = RequestContext(request_id_var.get() or accept_request_id(None), time.perf_counter())
            token = context.activate(ctx)
        try:
            self.begin(endpoint, ctx)
            error: ServiceError | None = None
            try:
                response = await handler()
            except ServiceError as exc:
                error = exc
            except Exception as exc:
                cause = type(exc).__name__
                log.exception("unhandled error", extra={"endpoint": endpoint, "error_type": "internal_error",
                                                        "cause": cause})
                error = ServiceError("internal error", cause=cause)
            if error is not None:
                response = error_response(error, self.settings)
            self.end(ctx, response.status_code, error)
            return response
        finally:
            if token is not None:
                context.deactivate(token)


def pair_from_json(item: Any, settings: Settings, where: str = "body") -> Pair:
    """A validated pair; its base64 image is size-checked now and decoded only when its turn comes."""
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
    image_b64 = normalize_base64(image_b64, max_bytes=settings.max_image_bytes)
    if not image_b64:
        raise ClientError("image is empty", code="empty_image", status_code=422)
    assert text is not None
    return Pair(image=None, text=text, premise=premise, image_base64=image_b64)


async def pair_from_multipart(request: Request, settings: Settings) -> Pair:
    form = await read_form(request, settings.multipart_body_limit)
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


def build_router(
    settings: Settings, metrics: ServiceMetrics, service: EntailmentService, tracker: Tracker
) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/entailment", response_model=EntailmentResponse, responses=ERROR_RESPONSES,
        openapi_extra=SINGLE_REQUEST_BODY, summary="Does the image entail the sentence? (YES / NO / MAYBE)",
    )
    async def entailment(request: Request) -> JSONResponse:
        async def handle() -> JSONResponse:
            media = _media_type(request)
            if media == "multipart/form-data":
                limit = settings.multipart_body_limit
            elif media == "application/json":
                limit = settings.single_body_limit
            else:
                raise ClientError(
                    f"unsupported content type {media or '(none)'!r}; "
                    "use multipart/form-data or application/json",
                    code="unsupported_media_type", status_code=415,
                )
            declared = check_declared(request, limit)
            # Admission before a byte of the body is read: refused at once when the replica is full.
            with service.admit(1, declared if declared is not None else limit) as ticket:
                ctx = context.current()
                started = time.perf_counter()
                if media == "multipart/form-data":
                    pair = await pair_from_multipart(request, settings)
                else:
                    body = await read_body(request, limit)
                    ticket.resize_body(len(body))
                    payload = await parse_json(body)
                    del body
                    pair = pair_from_json(payload, settings)
                    del payload
                if ctx is not None:
                    ctx.timings_s["read"] = time.perf_counter() - started
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
            limit = settings.max_batch_body_bytes
            declared = check_declared(request, limit)
            with service.admit(1, declared if declared is not None else limit) as ticket:
                ctx = context.current()
                started = time.perf_counter()
                body = await read_body(request, limit)
                ticket.resize_body(len(body))
                payload = await parse_json(body)
                del body
                parsed = _batch_items(payload, settings, service.admission.max_items)
                del payload
                # The call's real size is known only now: it must fit the budget as a whole.
                ticket.grow(len(parsed))
                if ctx is not None:
                    ctx.timings_s["read"] = time.perf_counter() - started
                results = await service.infer_many(parsed, service.deadline())
            return JSONResponse({"results": results, "request_id": request_id_var.get() or ""})

        return await tracker.run("batch", handle)

    @router.get("/healthz", summary="Liveness: the process serves HTTP")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: model loaded and warmed up",
                responses={503: {"description": "downloading, loading, or failed with a retry scheduled"}})
    async def readyz() -> JSONResponse:
        st = service.engine.status()
        if st.state == "ready":
            return JSONResponse({"status": "ready"})
        return JSONResponse({
            "status": st.state,
            # In words: "downloading 37 % of 3.1 GB", "loading the model", "warming up", "failed: ...".
            "activity": st.activity,
            "download": st.download.as_json() if st.download else None,
            "error": st.error,
            "failed_attempts": st.failed_attempts,
            "retry_in_s": None if st.retry_in_s is None else round(st.retry_in_s, 3),
        }, status_code=503)

    return router


def _batch_items(payload: Any, settings: Settings, admissible: int) -> list[Pair | ServiceError]:
    """The batch's pairs (client errors in place of the bad ones), its size checked against the limits."""
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise ClientError("body must be an object with a list field 'items'", code="invalid_request",
                          status_code=422)
    if not items:
        raise ClientError("'items' is empty", code="empty_batch", status_code=422)
    limit = min(settings.max_batch_items, admissible)
    if len(items) > limit:
        raise ClientError(f"{len(items)} items, over the limit of {limit}", code="batch_too_large",
                          status_code=413)
    parsed: list[Pair | ServiceError] = []
    for index, item in enumerate(items):
        try:
            parsed.append(pair_from_json(item, settings, where=f"items[{index}]"))
        except ClientError as exc:
            parsed.append(exc)
        items[index] = None  # the pair holds what is needed; the parsed JSON item can go
    return parsed


def install(app: FastAPI, settings: Settings, metrics: ServiceMetrics, service: EntailmentService,
            tracker: Tracker) -> None:
    app.include_router(build_router(settings, metrics, service, tracker))
