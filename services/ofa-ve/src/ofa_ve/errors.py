"""The service's error set: each error has an HTTP status and a fixed machine-readable code.

The code doubles as the `type` label of `ofa_ve_errors_total`, so it must come from ERROR_CODES. An
error caused by an unexpected exception also carries `cause`, the exception's class name: the `cause`
label of `ofa_ve_errors_total` (bounded there, see metrics.CauseLabels) and a field of the request log.
"""

from __future__ import annotations

CLIENT_ERROR_CODES = (
    "invalid_request",
    "malformed_json",
    "invalid_base64",
    "unsupported_media_type",
    "request_too_large",
    "unsupported_image_type",
    "corrupt_image",
    "empty_image",
    "image_too_large",
    "image_too_many_pixels",
    "empty_text",
    "text_too_long",
    "unencodable_text",
    "empty_batch",
    "batch_too_large",
)
SERVER_ERROR_CODES = (
    "overloaded",
    "queue_full",
    "deadline_exceeded",
    "not_ready",
    "gpu_out_of_memory",
    "device_fault",
    "inference_failed",
    "internal_error",
)
ERROR_CODES = CLIENT_ERROR_CODES + SERVER_ERROR_CODES


class ServiceError(Exception):
    """An error with an HTTP status and a code from ERROR_CODES."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, status_code: int | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        if self.code not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.code!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status_code}, {self.code!r}, {self.message!r})"

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ClientError(ServiceError):
    """The caller's fault (4xx)."""

    status_code = 400
    code = "invalid_request"


class NotReadyError(ServiceError):
    """The model has not finished loading (or failed to load)."""

    status_code = 503
    code = "not_ready"


class OverloadedError(ServiceError):
    """Admission control: the replica already holds as much work (or request bytes) as it may."""

    status_code = 503
    code = "overloaded"


class QueueFullError(ServiceError):
    """The bounded queue has no room: shed load at once."""

    status_code = 503
    code = "queue_full"


class DeadlineExceededError(ServiceError):
    """The request's deadline passed before its result was ready."""

    status_code = 504
    code = "deadline_exceeded"


class InferenceError(ServiceError):
    """The model failed on a batch for a reason we did not foresee; `cause` names the exception class."""

    status_code = 500
    code = "inference_failed"


class GpuOutOfMemoryError(ServiceError):
    """The GPU ran out of memory even for this item alone (after splitting its batch down to one)."""

    status_code = 503
    code = "gpu_out_of_memory"


class DeviceFaultError(ServiceError):
    """The accelerator hit an unrecoverable fault (illegal access, Xid): the replica restarts."""

    status_code = 503
    code = "device_fault"
