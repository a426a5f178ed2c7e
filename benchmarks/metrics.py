"""Losses and the in-market baselines of BENCHMARKS.md part A.

The baselines run the scenario's own fitted models in-process: they are the benchmark's trusted models, built by
``benchmarks.scenarios``, not uploaded code, so no sandbox is needed to score them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits

from benchmarks.scenarios.base import Scenario, UserTask
from benchmarks.errors import BenchmarkDataError

__all__ = ["loss", "market_losses", "mean_in_market", "best_in_market"]

logger = logging.getLogger(__name__)


def loss(task: str, y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error (regression) or error rate = 1 - accuracy (classification).

    For classification, 2-D ``y_pred`` with several columns is read as scores and arg-maxed, as a reuser's
    probability output would be.

    Raises
    ------
    BenchmarkDataError
        Unknown task or mismatched lengths.
    """
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    if task == "classification" and yp.ndim == 2 and yp.shape[1] > 1:
        yp = yp.argmax(axis=1)
    yt, yp = yt.reshape(len(yt), -1), yp.reshape(len(yp), -1)
    if yt.shape != yp.shape:
        raise BenchmarkDataError(f"y_true has shape {yt.shape} but y_pred has {yp.shape}; predict one value per "
                                 "test row.", code="loss_shape_mismatch")
    if task == "regression":
        return float(np.mean((yt.astype(np.float64) - yp.astype(np.float64)) ** 2))
    if task == "classification":
        return float(np.mean(np.any(yt != yp, axis=1)))
    raise BenchmarkDataError(f"task must be 'classification' or 'regression', got {task!r}.", code="unknown_task")


def market_losses(scenario: Scenario, user: UserTask) -> dict[str, float]:
    """Loss of every learnware that can read the user's rows (own feature space or an oracle view), by name."""
    out: dict[str, float] = {}
    with threadpool_limits(1):  # OpenMP spin-waiting on a shared 2-core box costs more than it gains
        for lw in scenario.learnwares:
            X: Any = user.view(lw.feature_space)
            if X is None:
                continue
            out[lw.name] = loss(scenario.task, user.y, lw.model.predict(X))
    if not out:
        raise BenchmarkDataError(f"no learnware of {scenario.name!r} can read user {user.name!r}'s features "
                                 f"({user.feature_space}); give the user views in the learnwares' spaces.",
                                 code="no_comparable_learnware")
    return out


def mean_in_market(scenario: Scenario, user: UserTask, losses: dict[str, float] | None = None) -> float:
    """Average loss over the market: what picking a learnware at random costs the user on average."""
    values = np.fromiter((losses or market_losses(scenario, user)).values(), dtype=np.float64)
    return float(values.mean())


def best_in_market(scenario: Scenario, user: UserTask,
                   losses: dict[str, float] | None = None) -> tuple[float, str]:
    """Oracle: the lowest loss any single learnware reaches on this user, in hindsight, and its name."""
    table = losses or market_losses(scenario, user)
    name = min(table, key=table.__getitem__)
    return table[name], name
