from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from lwlib.deploy import ReuseOutcome, reuse_learnwares
from lwlib.dock import Dock
from lwlib.search import SearchResult


@task(name="reuse", tags=["deploy", "runtime"], cache_policy=NONE, timeout_seconds=1800)
def reuse(dock: Dock, entries: list[Any], result: SearchResult, X: Any, kind: str, X_label: Any = None,
          y_label: Any = None) -> ReuseOutcome | None:
    """Fit the chosen reuser over the learnwares' isolated runtimes and predict the user's data."""
    outcome = reuse_learnwares(dock, entries, result, X, kind=kind, X_label=X_label, y_label=y_label)
    get_run_logger().info("reuse: %s", outcome.message if outcome else "nothing to reuse")
    return outcome
