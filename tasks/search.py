from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from lwlib import deployment
from lwlib.deployment import Market
from lwlib.search import SearchResult
from lwlib.search.requirement import Requirement
from lwlib.search.searcher import SearchEntry


@task(name="semantic-search", tags=["deploy"], cache_policy=NONE, timeout_seconds=120)
def semantic_search(market: Market, query: Any) -> list[SearchEntry]:
    """Keep the market's learnwares that match the semantic requirement (tags, name and description)."""
    entries, scores = deployment.semantic_filter(market.entries, query)
    get_run_logger().info("semantic search: %d of %d learnwares pass%s", len(entries), len(market.entries),
                          f" (best text score {max(scores.values()):.2f})" if scores else "")
    return entries


@task(name="stat-search", tags=["deploy"], cache_policy=NONE, timeout_seconds=600)
def stat_search(market: Market, entries: list[SearchEntry], requirement: Requirement, top_k: int,
                max_mixture: int, predictors: Any = None) -> SearchResult:
    """Rank learnwares by MMD to the user's RKME (and by loss on their labelled rows); find the best mixture."""
    result = deployment.find(entries, requirement, top_k=top_k, max_mixture=max_mixture, predictors=predictors)
    rows = deployment.result_rows(result, market.records)
    if rows:
        create_table_artifact(key="search-results", table=rows, description="Single and mixture matches")
    get_run_logger().info("stat search: %d singles, %d mixtures; decided by %s; %s", len(result.singles),
                          len(result.mixtures), result.evidence.get("decided_by", "P(X)"), result.message)
    return result
