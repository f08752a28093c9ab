"""Helpers shared by the test suites: repo paths, tool binaries, requirement switches, free ports."""
