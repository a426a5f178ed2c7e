from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import submission
from lwlib.dock import Dock
from lwlib.submission import Submission
from tasks._common import transient_only


@task(name="register", tags=["submit", "mlflow"], cache_policy=NONE, timeout_seconds=300, retries=3,
      retry_delay_seconds=[1, 2, 4], retry_condition_fn=transient_only)
def register(dock: Dock, sub: Submission) -> Submission:
    """Log the submission run to MLflow and register (or find) the learnware's model version."""
    sub = submission.register(dock, sub)
    ref = sub.reference
    assert ref is not None
    get_run_logger().info("registered %s version %s (%s)", ref.name, ref.version,
                          "alias usable" if sub.status.value == "USABLE" else "no usable alias")
    return sub


@task(name="compensate-register", tags=["submit", "mlflow"], cache_policy=NONE, retries=3, retry_delay_seconds=2)
def unregister(dock: Dock, sub: Submission) -> None:
    """The catalog step failed for good: remove the registry entry so registry and catalog stay consistent."""
    submission.unregister(dock, sub)
    get_run_logger().warning("removed %s: the catalog write failed", sub.reference.name if sub.reference else "-")
