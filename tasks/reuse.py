from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib import deployment
from lwlib.deployment import Market, ReuseOutcome, RuntimePool
from lwlib.dock import Dock
from lwlib.reuse.auto import ReuserKind
from lwlib.search import SearchResult
from lwlib.search.requirement import Requirement


@task(name="reuse", tags=["deploy", "runtime"], cache_policy=NONE, timeout_seconds=1800)
def reuse(dock: Dock, market: Market, result: SearchResult, requirement: Requirement, kind: ReuserKind,
          pool: RuntimePool | None = None) -> ReuseOutcome | None:
    """Fit the chosen reuser over the learnwares' isolated runtimes and predict the user's data."""
    outcome = deployment.reuse(dock, market, result, requirement, kind=kind, pool=pool)
    log = get_run_logger()
    log.info("reuse: %s", outcome.message if outcome else "nothing to reuse")
    for warning in outcome.warnings if outcome else ():
        log.warning("reuse: %s", warning)
    return outcome
