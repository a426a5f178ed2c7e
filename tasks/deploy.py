from __future__ import annotations

from typing import Any, Mapping

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import deployment
from lwlib.deployment import Market, ReuseOutcome
from lwlib.dock import Dock
from lwlib.submission import RegistryRef
from tasks._common import transient_only


@task(name="deploy", tags=["deploy", "mlflow"], cache_policy=NONE, timeout_seconds=300, retries=2,
      retry_delay_seconds=2, retry_condition_fn=transient_only)
def deploy(dock: Dock, market: Market, outcome: ReuseOutcome, name: str, search_log: Mapping[str, Any]
           ) -> RegistryRef:
    """Register the reused solution as an MLflow pyfunc, in one run with the search that found it."""
    ref = deployment.deploy(dock, market, outcome, name, search_log)
    get_run_logger().info("deployed %s as %s (serve with: lwdock serve-model %s)", outcome.kind, ref.uri, ref.name)
    return ref
