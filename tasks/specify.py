from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import submission
from lwlib.dock import Dock
from lwlib.submission import Submission


@task(name="specify", tags=["submit", "runtime"], cache_policy=NONE, timeout_seconds=600, retries=0)
def specify(dock: Dock, sub: Submission) -> Submission:
    """Add the label-aware spec: the model's outputs at its own RKME points, computed in its sandbox."""
    sub = submission.specify(dock, sub)
    get_run_logger().info("spec %s: %d points x %d features; label-aware part: %s", sub.spec.spec_type,
                          sub.spec.reduced_set_size, sub.spec.n_features,
                          type(sub.label_spec).__name__ if sub.label_spec is not None else "none")
    return sub
