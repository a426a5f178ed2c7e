from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import submission
from lwlib.dock import Dock
from lwlib.submission import Submission
from tasks._common import catalog_write_slot, transient_only


@task(name="catalog", tags=["submit", "duckdb"], cache_policy=NONE, timeout_seconds=300, retries=3,
      retry_delay_seconds=[1, 2, 4], retry_condition_fn=transient_only)
def catalog(dock: Dock, sub: Submission) -> Submission:
    """Write the learnware row, its spec payloads and the check into the DuckDB catalog (one transaction)."""
    with catalog_write_slot():
        sub = submission.catalog(dock, sub)
    assert sub.record is not None
    get_run_logger().info("catalogued %s as %s", sub.semantic.name, sub.record.status.value)
    return sub
