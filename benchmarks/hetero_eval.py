"""Part A on ``tabular_hetero``: users whose feature space is no learnware's, searched and reused via column maps.

For each user: :class:`~lwlib.search.hetero.HeteroSearcher` over both learnware spaces (users describe their
columns; learnwares carry per-column ``Input.Description``), then the top-1 learnware and the best mixture (or the
top singles when no mixture is found) reused through their column maps (:class:`~lwlib.reuse.hetero.
HeteroLearnware`). Mean/Best in market are oracle baselines: they run every learnware on the user's rows in the
learnware's own feature space (``UserTask.view``), which no real user has.

Extra rows (in ``rows``, not in the bench table): ``top1_mean_fill`` (unmatched columns filled with the RKME
column mean instead of the conditional fill) and ``top1_feature_align`` (the reference's hetero reuse idea:
an MMD-trained MLP map into the same top-1 learnware's space, no column semantics; ``feature_align=True`` only).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.evaluate import UserRow, summarise
from benchmarks.metrics import best_in_market, loss, market_losses, mean_in_market
from benchmarks.scenarios import build
from benchmarks.scenarios.base import Scenario, UserTask
from lwlib.reuse import AveragingReuser, FeatureAlignReuser, InProcessLearnware, JobSelectorReuser
from lwlib.reuse.hetero import HeteroLearnware
from lwlib.search.hetero import HeteroSearcher, HeteroSearchResult, input_descriptions
from lwlib.semantic import SemanticSpec
from lwlib.rkme.rkme import RKMETableSpec

__all__ = ["evaluate_hetero", "score_hetero_user"]

logger = logging.getLogger(__name__)

SCENARIO = "tabular_hetero"
AVERAGE_SINGLES = 3  # singles averaged when the search found no mixture


def _through_map(scenario: Scenario, res: HeteroSearchResult, names: list[str], specs: dict[str, Any],
                 X: np.ndarray, *, fill: str | None = None) -> list[HeteroLearnware]:
    out = []
    for n in names:
        cmap = res.matches[n].column_map
        if fill is not None and fill != cmap.fill:
            cmap = cmap.with_spec(specs[n], fill=fill)
        out.append(HeteroLearnware(InProcessLearnware(n, scenario.learnware(n).model, specs[n]), cmap, user_X=X))
    return out


def score_hetero_user(scenario: Scenario, user: UserTask, res: HeteroSearchResult, specs: dict[str, Any], *,
                      search_seconds: float = 0.0, feature_align: bool = False) -> UserRow:
    """Losses of every row for one user, reusing the found learnwares through their column maps."""
    table = market_losses(scenario, user)
    best, best_name = best_in_market(scenario, user, table)
    row = UserRow(user.name, search_seconds=search_seconds, best=best_name)
    row.losses["mean_in_market"] = mean_in_market(scenario, user, table)
    row.losses["best_in_market"] = best
    if not res.singles:
        logger.warning("no hetero match for %s: %s", user.name, res.message)
        return row
    task = scenario.task
    row.top1 = res.singles[0].learnware_id
    mix = res.mixtures[0] if res.mixtures else None
    pool = list(mix.learnware_ids) if mix else [m.learnware_id for m in res.singles[:AVERAGE_SINGLES]]
    row.mixture, row.weights = (tuple(mix.learnware_ids), tuple(mix.weights)) if mix else ((), ())
    with threadpool_limits(1):
        top = _through_map(scenario, res, [row.top1], specs, user.X)[0]
        row.losses["top1"] = loss(task, user.y, top.predict(user.X))
        row.top1_is_best = row.top1 == best_name or bool(np.isclose(row.losses["top1"], best))
        members = _through_map(scenario, res, pool, specs, user.X)
        row.losses["average_ensemble"] = loss(task, user.y, AveragingReuser(members, task=task).fit(user.X)
                                              .predict(user.X))
        js = JobSelectorReuser(members, task=task).fit(user.X)
        row.losses["job_selector"] = loss(task, user.y, js.predict(user.X))
        mean_fill = _through_map(scenario, res, [row.top1], specs, user.X, fill="mean")[0]
        row.losses["top1_mean_fill"] = loss(task, user.y, mean_fill.predict(user.X))
        if feature_align:
            lw = InProcessLearnware(row.top1, scenario.learnware(row.top1).model, specs[row.top1])
            fa = FeatureAlignReuser(lw, task=task, random_state=0).fit(user.X)
            row.losses["top1_feature_align"] = loss(task, user.y, fa.predict(user.X))
    if user.truth_learnwares:
        row.mixture_has_truth = set(user.truth_learnwares) <= set(pool)
    return row


def evaluate_hetero(size: str = "small", seed: int = 0, *, feature_align: bool = False, labelled: bool = True,
                    **searcher_params: Any) -> dict[str, Any]:
    """Summary of ``tabular_hetero`` in the shape of :func:`benchmarks.evaluate.summarise`.

    Parameters
    ----------
    size : {"small", "full"}
    seed : int
    feature_align : bool
        Also score the reference-style MMD-trained map into the top-1 learnware (slow: one MLP per user).
    **searcher_params
        Passed to :class:`HeteroSearcher`.
    """
    t0 = time.perf_counter()
    scenario = build(SCENARIO, size=size, seed=seed)
    specs = {lw.name: RKMETableSpec(random_state=0).fit(lw.X_train) for lw in scenario.learnwares}
    entries = [(lw.name, SemanticSpec.from_reference(lw.semantic), {RKMETableSpec.type_name: specs[lw.name]})
               for lw in scenario.learnwares]
    searcher = HeteroSearcher(**{"top_k": 10, "max_mixture": 5, **searcher_params}).fit(entries)
    t_market = time.perf_counter() - t0
    rows = []
    for user in scenario.users:
        t1 = time.perf_counter()
        res = searcher.search(user.X, input_descriptions(user.semantic_query))
        rows.append(score_hetero_user(scenario, user, res, specs, search_seconds=time.perf_counter() - t1,
                                      feature_align=feature_align))
    summary = summarise(scenario, rows)
    if labelled:
        from benchmarks.labelled_eval import evaluate_hetero_labelled

        lab = evaluate_hetero_labelled(scenario, searcher, specs)
        summary["labelled"], summary["labelled_users"] = lab["summary"], lab["users"]
    summary["info"] = {"size": size, "seed": seed, "method": "HeteroSearcher (description column maps)",
                       "searcher": searcher.get_params(), "market_seconds": round(t_market, 2),
                       "total_seconds": round(time.perf_counter() - t0, 2)}
    return summary
