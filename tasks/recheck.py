from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import submission
from lwlib.catalog import LearnwareRecord
from lwlib.check import CheckReport
from lwlib.dock import Dock


@task(name="recheck-one", tags=["recheck", "runtime"], cache_policy=NONE, timeout_seconds=900, retries=1,
      retry_delay_seconds=5)
def recheck_one(dock: Dock, record: LearnwareRecord) -> CheckReport:
    """Re-run `check` on a catalogued learnware in its runtime and record the outcome (status, alias, history)."""
    report, old = submission.recheck(dock, record)
    log = get_run_logger()
    (log.warning if old is not report.status else log.info)("recheck %s: %s -> %s (%s)", record.name, old.value,
                                                             report.status.value, report.reason)
    return report
