"""The model-load retry schedule: one pure function, shared by the engine and the alert-rule tests.

The Prometheus rule tests import it to build the `ofa_ve_model_load_failures_total` series a replica
really produces, so a change here shows up in the alert tests instead of only in production.
"""

from __future__ import annotations

from collections.abc import Iterator

# downloading: a hub model's weights are being fetched (first start); loading: the pipeline is built
# and warmed up; ready: serving; failed: the last attempt failed and a retry is scheduled.
MODEL_STATES = ("downloading", "loading", "ready", "failed")
LOAD_RETRY_INITIAL_S = 10.0
LOAD_RETRY_MAX_S = 300.0
LOAD_RETRY_MULTIPLIER = 2.0


def load_retry_delay(
    failures: int,
    initial_s: float = LOAD_RETRY_INITIAL_S,
    max_s: float = LOAD_RETRY_MAX_S,
    multiplier: float = LOAD_RETRY_MULTIPLIER,
) -> float:
    """Seconds between the `failures`-th consecutive failed load (1-based) and the next attempt.

    initial_s * multiplier ** (failures - 1), capped at max_s.
    """
    if failures < 1:
        raise ValueError(f"failures must be >= 1, got {failures}")
    if not initial_s > 0:
        raise ValueError(f"initial_s must be > 0, got {initial_s}")
    if max_s < initial_s:
        raise ValueError(f"max_s ({max_s}) must be >= initial_s ({initial_s})")
    if multiplier < 1:
        raise ValueError(f"multiplier must be >= 1, got {multiplier}")
    delay = initial_s
    # Stepwise rather than multiplier ** n: a replica retrying for weeks must not overflow a float.
    for _ in range(failures - 1):
        if delay >= max_s:
            break
        delay *= multiplier
    return min(delay, max_s)


def load_retry_delays(
    initial_s: float = LOAD_RETRY_INITIAL_S,
    max_s: float = LOAD_RETRY_MAX_S,
    multiplier: float = LOAD_RETRY_MULTIPLIER,
) -> Iterator[float]:
    """The endless schedule: the wait after the 1st, 2nd, 3rd ... consecutive failure."""
    load_retry_delay(1, initial_s, max_s, multiplier)  # bad arguments fail here, not at the first next()

    def schedule() -> Iterator[float]:
        failures = 1
        while True:
            yield load_retry_delay(failures, initial_s, max_s, multiplier)
            failures += 1

    return schedule()
