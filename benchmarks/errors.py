"""Errors of the benchmark harness (kept out of the engine: lwlib knows nothing of benchmarks)."""

from __future__ import annotations

from lwlib.errors import LwdockError

__all__ = ["BenchmarkDataError", "ReferenceRunError"]


class BenchmarkDataError(LwdockError):
    """A benchmark scenario is unknown or its offline data set is not installed."""

    default_code = "benchmark_data"


class ReferenceRunError(LwdockError):
    """The reference ``learnware`` package cannot be run side by side (venv missing, runner failed or timed out)."""

    default_code = "reference_run"
