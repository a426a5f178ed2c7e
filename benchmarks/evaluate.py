"""Score a scenario the way the reference experiments do: Mean/Best in market, Top-1, Job selector, Average.

Two ways to obtain the search results: through the real flows (`make demo`: zips → submission flow → deploying
flow) or through the engine in-process (`make bench`, same search code, no orchestration overhead). The
comparison rows re-use the scenario's own fitted models in-process: they are the benchmark's trusted models, and
the numbers equal what the isolated runtimes return (the runtime tests check that equality).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.metrics import best_in_market, loss, market_losses, mean_in_market
from benchmarks.scenarios.base import Scenario, UserTask
from lwlib.reuse import AveragingReuser, InProcessLearnware, JobSelectorReuser

__all__ = ["UserSearch", "UserRow", "score_user", "summarise", "ROWS"]

logger = logging.getLogger(__name__)

ROWS = ("mean_in_market", "best_in_market", "top1", "job_selector", "average_ensemble")


@dataclass(frozen=True)
class UserSearch:
    """What search returned for one user, by learnware name: ranked singles and the best mixture with weights."""

    singles: tuple[str, ...]
    mixture: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    deployed_predictions: Any = None
    search_seconds: float = 0.0


@dataclass
class UserRow:
    user: str
    losses: dict[str, float] = field(default_factory=dict)
    top1: str = ""
    best: str = ""
    top1_is_best: bool = False
    mixture_has_truth: bool | None = None
    mixture: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    search_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _members(scenario: Scenario, names: Sequence[str], specs: dict[str, Any]) -> list[InProcessLearnware]:
    return [InProcessLearnware(n, scenario.learnware(n).model, specs.get(n)) for n in names]


def score_user(scenario: Scenario, user: UserTask, found: UserSearch, specs: dict[str, Any]) -> UserRow:
    """Losses of every row for one user; search quality against the oracle and the generating learnwares."""
    table = market_losses(scenario, user)
    best, best_name = best_in_market(scenario, user, table)
    row = UserRow(user.name, search_seconds=found.search_seconds)
    row.losses["mean_in_market"] = mean_in_market(scenario, user, table)
    row.losses["best_in_market"] = best
    row.best = best_name
    if found.singles:
        row.top1 = found.singles[0]
        row.losses["top1"] = table.get(row.top1, float("nan"))
        row.top1_is_best = row.top1 == best_name or np.isclose(row.losses["top1"], best)
        pool = list(found.mixture) if len(found.mixture) > 1 else [row.top1]
        row.mixture, row.weights = tuple(found.mixture), tuple(found.weights)
        with threadpool_limits(1):
            js = JobSelectorReuser(_members(scenario, pool, specs), task=scenario.task).fit(user.X)
            row.losses["job_selector"] = loss(scenario.task, user.y, js.predict(user.X))
            av = AveragingReuser(_members(scenario, pool, specs), task=scenario.task).fit(user.X)
            row.losses["average_ensemble"] = loss(scenario.task, user.y, av.predict(user.X))
        if found.deployed_predictions is not None:
            row.losses["deployed_auto"] = loss(scenario.task, user.y, found.deployed_predictions)
        if user.truth_learnwares:
            row.mixture_has_truth = set(user.truth_learnwares) <= set(found.mixture or found.singles[:1])
    return row


def summarise(scenario: Scenario, rows: Sequence[UserRow]) -> dict[str, Any]:
    """Mean loss per row over users, plus search quality shares and timing."""
    order = ROWS + ("deployed_auto", "top1_labels", "auto_labels")
    keys = sorted({k for r in rows for k in r.losses}, key=lambda k: order.index(k) if k in order else 99)
    mean = {k: float(np.nanmean([r.losses.get(k, np.nan) for r in rows])) for k in keys}
    with_truth = [r.mixture_has_truth for r in rows if r.mixture_has_truth is not None]
    return {"scenario": scenario.name, "task": scenario.task, "loss": scenario.loss_name,
            "n_learnwares": len(scenario.learnwares), "n_users": len(rows), "rows": mean,
            "top1_is_best_share": float(np.mean([r.top1_is_best for r in rows])) if rows else 0.0,
            "top1_beats_mean_share": float(np.mean([r.losses.get("top1", np.inf) < r.losses["mean_in_market"]
                                                    for r in rows])) if rows else 0.0,
            "mixture_has_truth_share": float(np.mean(with_truth)) if with_truth else None,
            "search_seconds_median": float(np.median([r.search_seconds for r in rows])) if rows else 0.0,
            "users": [r.to_dict() for r in rows]}
