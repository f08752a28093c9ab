"""The gate's one failure that is not a verdict: it could not measure (exit code 2)."""

from __future__ import annotations


class CouldNotMeasure(Exception):
    """A build did not start or died, a baseline could not be found, Prometheus gave no data."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail  # e.g. the tail of a build's log

    def __repr__(self) -> str:
        return f"CouldNotMeasure({self.reason!r})"
