from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.check import CheckReport
from lwlib.dock import Dock


@task(name="recheck-one", tags=["recheck", "runtime"], cache_policy=NONE, timeout_seconds=900, retries=1,
      retry_delay_seconds=5)
def recheck_one(dock: Dock, learnware_id: str) -> CheckReport:
    """Re-run `check` on a catalogued learnware in its runtime and record the outcome (status, alias, history)."""
    report = dock.check(dock.load(learnware_id))
    old, new = dock.apply_recheck(learnware_id, report)
    log = get_run_logger()
    (log.warning if old is not new else log.info)("recheck %s: %s -> %s (%s)", learnware_id[:12], old.value,
                                                  new.value, report.reason)
    return report
