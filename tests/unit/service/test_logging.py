"""JSON-lines logging with the request id."""

from __future__ import annotations

import io
import json
import logging

from ofa_ve.logging_setup import JsonFormatter, RequestIdFilter, request_id_var


def _logger() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.ofa_ve.json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_each_line_is_json_with_request_id_and_extras() -> None:
    """A record logged inside a request carries its id and the extra fields, as one JSON object."""
    logger, stream = _logger()
    token = request_id_var.set("req-7")
    try:
        logger.info("request finished", extra={"status_code": 415, "endpoint": "entailment"})
    finally:
        request_id_var.reset(token)
    logger.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "request finished"
    assert first["request_id"] == "req-7"
    assert first["status_code"] == 415
    assert first["level"] == "INFO"
    assert second["request_id"] is None


def test_exceptions_are_inside_the_json_line() -> None:
    """A logged exception stays on one line, in the `exception` field."""
    logger, stream = _logger()
    try:
        raise ValueError("bad thing")
    except ValueError:
        logger.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "ValueError: bad thing" in json.loads(lines[0])["exception"]
