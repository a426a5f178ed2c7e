from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import submission
from lwlib.dock import Dock
from lwlib.submission import Submission


@task(name="check", tags=["submit", "runtime"], cache_policy=NONE, timeout_seconds=900, retries=0)
def check(dock: Dock, sub: Submission) -> Submission:
    """Run the model in its runtime: shapes, probes from its own RKME and random inputs, finite outputs, labels."""
    sub = submission.check(dock, sub)
    report = sub.check
    assert report is not None
    get_run_logger().info("check %s: %s (%s); protections: %s", sub.source_name, report.status.value,
                          report.reason, ", ".join(report.protections) or "none")
    return sub
