from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.deploy import ReuseOutcome
from lwlib.dock import Dock, RegistryRef
from tasks._common import transient_only


@task(name="deploy", tags=["deploy", "mlflow"], cache_policy=NONE, timeout_seconds=300, retries=2,
      retry_delay_seconds=2, retry_condition_fn=transient_only)
def deploy(dock: Dock, outcome: ReuseOutcome, name: str, search_params: dict, timings: dict) -> RegistryRef:
    """Register the reused solution as an MLflow pyfunc (lineage tags: learnwares and weights)."""
    ref = dock.register_solution(outcome, name, search_params, timings)
    get_run_logger().info("deployed %s as %s (serve with: PATH=.venv/bin:$PATH mlflow models serve -m %s --env-manager local)",
                          outcome.kind, ref.uri, ref.uri)
    return ref
