from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.dock import Dock
from lwlib.specify import SpecReport


@task(name="specify", tags=["submit"], cache_policy=NONE, timeout_seconds=600, retries=0)
def specify(dock: Dock, learnware: Any) -> SpecReport:
    """Verify the statistical spec (type, dimension, finite, self inner product)."""
    report = dock.specify(learnware)
    get_run_logger().info("spec %s: %d points x %d features, self-MMD term %.4g%s", report.spec_type,
                          report.reduced_set_size, report.n_features, report.self_mmd2,
                          "; " + "; ".join(report.notes) if report.notes else "")
    return report
