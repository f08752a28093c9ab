"""Response models and request schemas, for validation of what we send and for the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Timings(BaseModel):
    decode: float
    queue: float
    preprocess: float
    inference: float
    postprocess: float


class EntailmentResult(BaseModel):
    label: Literal["YES", "NO", "MAYBE"]
    score: float = Field(description="probability of the label among yes/no/maybe")
    timings_ms: Timings
    batch_size: int = Field(description="items in the forward pass that served this one")


class EntailmentResponse(EntailmentResult):
    request_id: str


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable code; also the `type` label of ofa_ve_errors_total")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str


class BatchItemResult(BaseModel):
    index: int
    label: Literal["YES", "NO", "MAYBE"] | None = None
    score: float | None = None
    timings_ms: Timings | None = None
    batch_size: int | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    results: list[BatchItemResult]
    request_id: str


_JSON_ITEM = {
    "type": "object",
    "required": ["image_base64", "text"],
    "properties": {
        "image_base64": {"type": "string", "description": "JPEG/PNG/WebP/GIF/BMP as base64 (or a data: URL)"},
        "text": {"type": "string", "description": "the hypothesis sentence"},
        "premise": {"type": "string", "description": "optional premise sentence"},
    },
}
SINGLE_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", "text"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "text": {"type": "string"},
                        "premise": {"type": "string"},
                    },
                }
            },
            "application/json": {"schema": _JSON_ITEM},
        },
    }
}
BATCH_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["items"],
                    "properties": {"items": {"type": "array", "items": _JSON_ITEM}},
                }
            }
        },
    }
}
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse, "description": why}
    for code, why in {
        400: "malformed JSON or base64, missing fields",
        413: "image, request or batch too large; too many pixels",
        415: "unsupported content type or image type",
        422: "empty, over-long or unencodable text, corrupt image",
        500: "inference_failed or internal_error: an unexpected failure (its class is logged and counted)",
        503: "overloaded (admission budget full), queue_full, not_ready, gpu_out_of_memory or device_fault "
             "(with Retry-After)",
        504: "deadline exceeded",
    }.items()
}
