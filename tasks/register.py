from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.check import CheckReport
from lwlib.dock import Dock, RegistryRef, RuntimeInfo
from lwlib.specify import SpecReport
from tasks._common import transient_only


@task(name="register", tags=["submit", "mlflow"], cache_policy=NONE, timeout_seconds=300, retries=2,
      retry_delay_seconds=2, retry_condition_fn=transient_only)
def register(dock: Dock, learnware: Any, check: CheckReport, spec: SpecReport, runtime: RuntimeInfo,
             timings: dict[str, float]) -> RegistryRef:
    """Log the submission as an MLflow run and register the learnware as a pyfunc model version."""
    ref = dock.register(learnware, check, spec, runtime, timings)
    get_run_logger().info("registered %s version %s (%s)", ref.name, ref.version,
                          "alias usable" if check.status.value == "USABLE" else "no usable alias")
    return ref


@task(name="compensate-register", tags=["submit", "mlflow"], cache_policy=NONE, retries=3, retry_delay_seconds=2)
def unregister(dock: Dock, ref: RegistryRef) -> None:
    """The catalog step failed for good: remove the registry entry so registry and catalog stay consistent."""
    dock.unregister(ref)
    get_run_logger().warning("removed %s version %s: the catalog write failed", ref.name, ref.version)
