from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.check import CheckReport
from lwlib.dock import Dock, RegistryRef, RuntimeInfo
from lwlib.specify import SpecReport
from tasks._common import transient_only


@task(name="catalog", tags=["submit", "duckdb"], cache_policy=NONE, timeout_seconds=120, retries=3,
      retry_delay_seconds=[1, 2, 4], retry_condition_fn=transient_only)
def catalog(dock: Dock, learnware: Any, check: CheckReport, spec: SpecReport, runtime: RuntimeInfo,
            ref: RegistryRef) -> Any:
    """Write the learnware row, its spec payloads and the check into the DuckDB catalog (one transaction)."""
    record = dock.record(learnware, check, spec, runtime, ref)
    get_run_logger().info("catalogued %s as %s", record.id[:12], record.status.value)
    return record
