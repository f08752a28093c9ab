"""perf-gate: fails a change that makes OFA-VE slower (A/B before merge) or breaks its SLO (live)."""

EXIT_PASS, EXIT_REGRESSION, EXIT_NOT_MEASURED = 0, 1, 2
