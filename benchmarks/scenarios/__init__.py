"""Benchmark scenarios on offline data: markets of fitted models plus user tasks (BENCHMARKS.md part A)."""

from __future__ import annotations

from benchmarks.scenarios.base import (
    SIZES,
    LearnwareSource,
    Scenario,
    UserTask,
    available_scenarios,
    build,
    reference_semantic,
    register,
)

__all__ = ["SIZES", "LearnwareSource", "Scenario", "UserTask", "available_scenarios", "build",
           "reference_semantic", "register"]
