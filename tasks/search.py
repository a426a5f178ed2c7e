from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from lwlib.deploy import market_entries, semantic_filter, stat_search as _stat_search
from lwlib.dock import Dock
from lwlib.search import SearchResult


@task(name="semantic-search", tags=["deploy"], cache_policy=NONE, timeout_seconds=120, retries=2,
      retry_delay_seconds=1)
def semantic_search(dock: Dock, query: dict[str, Any] | None) -> list[Any]:
    """Load the USABLE market from the catalog and keep the learnwares matching the semantic requirement."""
    entries, scores = semantic_filter(market_entries(dock), query)
    get_run_logger().info("semantic search: %d learnwares pass%s", len(entries),
                          f" (best text score {max(scores.values()):.2f})" if scores else "")
    return entries


@task(name="stat-search", tags=["deploy"], cache_policy=NONE, timeout_seconds=600)
def stat_search(entries: list[Any], X: Any, top_k: int, max_mixture: int, query: dict[str, Any] | None = None
                ) -> SearchResult:
    """Rank single learnwares by MMD to the user's RKME and find the best weighted mixture."""
    result = _stat_search(entries, X, top_k=top_k, max_mixture=max_mixture, query=query)
    rows = [{"rank": m.rank + 1, "learnware": m.learnware_id[:12], "score": round(m.score, 4), "mmd2": round(m.mmd2, 6)}
            for m in result.singles]
    rows += [{"rank": "mixture", "learnware": " + ".join(i[:8] for i in m.learnware_ids),
              "score": round(m.score, 4), "mmd2": round(m.mmd2, 6),
              "weights": ", ".join(f"{w:.2f}" for w in m.weights)} for m in result.mixtures]
    if rows:
        create_table_artifact(key="search-results", table=rows, description="Single and mixture matches")
    get_run_logger().info("stat search: %d singles, %d mixtures; %s", len(result.singles), len(result.mixtures),
                          result.message)
    return result
