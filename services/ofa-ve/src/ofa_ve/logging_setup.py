"""JSON-lines logging with the current request id on every record."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Client-chosen ids end up in logs: accept only a short, plain token, otherwise mint one.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def is_request_id(value: str | None) -> bool:
    """A short plain token: safe in logs, URLs and exemplars."""
    return bool(value) and _REQUEST_ID.fullmatch(value) is not None  # type: ignore[arg-type]


def accept_request_id(given: str | None) -> str:
    """The caller's X-Request-ID when it is a well-formed token, else a new one."""
    return given if given and is_request_id(given) else uuid.uuid4().hex

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class RequestIdFilter(logging.Filter):
    """Copies the request id of the running request (if any) onto the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    """Installs one stderr handler on the root logger; called once, from the entrypoint."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.captureWarnings(True)  # library warnings become log records (JSON) instead of raw stderr
    _adopt_modelscope_logger(handler)


def _adopt_modelscope_logger(handler: logging.Handler) -> None:
    # ModelScope's logger has its own plain-text stream handler and resets propagate=False on every
    # get_logger() call; giving it our handler once keeps its lines in the JSON stream.
    try:
        from modelscope.utils.logger import get_logger
    except ImportError:
        return
    get_logger().handlers[:] = [handler]
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    # transformers, too, writes through its own handler unless told to propagate to ours.
    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
