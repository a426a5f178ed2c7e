from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.check import CheckReport
from lwlib.dock import Dock


@task(name="check", tags=["submit", "runtime"], cache_policy=NONE, timeout_seconds=900, retries=0)
def check(dock: Dock, learnware: Any) -> CheckReport:
    """Run the model in its runtime: shapes, probes from its own RKME and random inputs, finite outputs, labels."""
    report = dock.check(learnware)
    get_run_logger().info("check %s: %s (%s); protections: %s", learnware.id[:12], report.status.value,
                          report.reason, ", ".join(report.protections) or "none")
    return report
