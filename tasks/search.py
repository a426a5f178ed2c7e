from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from lwlib import deployment
from lwlib.deployment import Market
from lwlib.search import SearchResult
from lwlib.search.requirement import Requirement


@task(name="semantic-search", tags=["deploy"], cache_policy=NONE, timeout_seconds=120)
def semantic_search(market: Market, requirement: Requirement) -> list[str]:
    """The learnwares whose semantic spec matches the requirement (tags, name and description), best first."""
    if requirement.semantic is None:
        get_run_logger().info("semantic search: no semantic requirement, the whole market is searched")
        return []
    found = market.search(Requirement(semantic=requirement.semantic)).semantic
    get_run_logger().info("semantic search: %d learnwares pass%s", len(found),
                          f" (best text score {found[0].score:.2f})" if found else "")
    return [m.learnware_id for m in found]


@task(name="stat-search", tags=["deploy"], cache_policy=NONE, timeout_seconds=600)
def stat_search(market: Market, requirement: Requirement, top_k: int, max_mixture: int,
                predictors: Any = None) -> SearchResult:
    """Rank learnwares by MMD to the user's RKME (and by loss on their labelled rows); find the best mixture."""
    result = deployment.search_market(market, requirement, top_k=top_k, max_mixture=max_mixture,
                                      predictors=predictors)
    ids = [m.learnware_id for m in result.singles] + [i for m in result.mixtures for i in m.learnware_ids]
    rows = deployment.result_rows(result, market.records_for(list(dict.fromkeys(ids))))
    if rows:
        create_table_artifact(key="search-results", table=rows, description="Single and mixture matches")
    get_run_logger().info("stat search: %d singles, %d mixtures; decided by %s; %s", len(result.singles),
                          len(result.mixtures), result.evidence.get("decided_by", "P(X)"), result.message)
    return result
