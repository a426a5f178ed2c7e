"""Ensemble pruning: pick a small weighted sub-ensemble of learnwares on a labelled validation set.

Why: when the user has a few labels, keeping only the learnwares that help (and weighting them) beats blending
everything. The reference used MDEP (margin-distribution-guided evolutionary pruning) through ``geatpy``, which
does not install on Python ≥ 3.11, so the reuser was unusable. We use greedy forward selection *with
replacement* (Caruana et al., ICML 2004): start empty; at each step add the learnware whose inclusion gives the
lowest validation error (classification: misclassifications of the weighted majority vote; regression: MSE of
the weighted mean), break ties by the larger mean voting margin (classification; the margin idea of MDEP), then
by a seeded random order. After ``max_size`` steps the prefix with the lowest error wins, the smaller one on
ties. A learnware picked ``c`` times gets weight ``c / size``. Every step scores all candidates in one
vectorised array operation.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib.errors import ReuseError
from lwlib.reuse.base import BaseReuser, ReusableLearnware, _is_learnware_list
from lwlib.reuse.combine import collect_outputs, combine_outputs, to_labels

logger = logging.getLogger(__name__)

__all__ = ["EnsemblePruningReuser", "greedy_selection"]


def _positive_int_or_none(v: Any) -> bool:
    """None or an int >= 1"""
    return v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(v >= 1))


def greedy_selection(outputs: Sequence[NDArray[Any]], y: NDArray[Any], *, task: str, max_size: int,
                     random_state: int = 0) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Greedy forward selection with replacement on validation outputs.

    Parameters
    ----------
    outputs : sequence of m arrays, each the learnware's prediction on the validation rows
    y : ndarray of shape (n,) or (n, k)
    task : {"classification", "regression"}
    max_size : int
        Number of greedy steps (ensemble size with repetitions).
    random_state : int
        Seeds the last-resort tie-breaking order.

    Returns
    -------
    counts : ndarray of shape (m,)
        How often each learnware was picked in the best prefix.
    errors : ndarray of shape (max_size,)
        Validation error after each step (misclassification rate or MSE).
    """
    m = len(outputs)
    tiebreak = np.random.default_rng(random_state).permutation(m)  # lower rank wins a full tie
    counts = np.zeros(m, dtype=np.int64)
    history = np.zeros((max_size, m), dtype=np.int64)
    errors = np.zeros(max_size)
    if task == "classification":
        L = np.stack([to_labels(o) for o in outputs])  # (m, n)
        uniq, inv = np.unique(np.concatenate([L.ravel(), np.asarray(y).ravel()]), return_inverse=True)
        n = L.shape[1]
        Lidx, yidx = inv[: m * n].reshape(m, n), inv[m * n:]
        onehot = np.zeros((m, n, uniq.shape[0]))
        onehot[np.arange(m)[:, None], np.arange(n)[None, :], Lidx] = 1.0  # one-hot votes
        votes = np.zeros((n, uniq.shape[0]))
        true_mask = np.zeros((n, uniq.shape[0]), dtype=bool)
        true_mask[np.arange(n), yidx] = True
        for t in range(max_size):  # steps, not points or learnwares: all m candidates are scored at once
            cand = votes[None] + onehot  # (m, n, U)
            err = (cand.argmax(axis=2) != yidx[None]).mean(axis=1)
            true_votes = cand[:, true_mask].reshape(m, n)
            other = np.where(true_mask[None], -np.inf, cand).max(axis=2)
            margin = ((true_votes - other) / (t + 1)).mean(axis=1)
            j = np.lexsort((tiebreak, -margin, err))[0]
            votes += onehot[j]
            counts[j] += 1
            history[t], errors[t] = counts, err[j]
    else:
        V = np.stack([np.asarray(o, dtype=np.float64).reshape(o.shape[0], -1) for o in outputs])  # (m, n, k)
        Y = np.asarray(y, dtype=np.float64).reshape(V.shape[1], -1)
        if Y.shape[1] != V.shape[2]:
            raise ReuseError(f"y has {Y.shape[1]} output columns but the learnwares predict {V.shape[2]}.",
                             code="output_shape_mismatch")
        total = np.zeros(V.shape[1:])
        for t in range(max_size):
            err = (((total[None] + V) / (t + 1) - Y[None]) ** 2).mean(axis=(1, 2))
            j = np.lexsort((tiebreak, err))[0]
            total += V[j]
            counts[j] += 1
            history[t], errors[t] = counts, err[j]
    best = int(np.argmin(errors))  # argmin takes the first (smallest) prefix on ties
    return history[best], errors


class EnsemblePruningReuser(BaseReuser):
    """Greedy forward selection with replacement of a weighted sub-ensemble, on ``fit(X_val, y_val)``.

    Parameters
    ----------
    learnwares : sequence of ReusableLearnware
    task : {"classification", "regression"}
    max_size : int, optional
        Greedy steps; default ``min(2 · n_learnwares, 50)``.
    random_state : int
        Seeds the last-resort tie-breaking order between equally good learnwares.

    Attributes
    ----------
    selected_ : ndarray of int
        Indices of the kept learnwares.
    weights_ : ndarray
        Their weights (pick counts / ensemble size).
    val_errors_ : ndarray
        Validation error along the greedy path.
    """

    kind = "ensemble_pruning"
    _needs_labels = True
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "learnwares": _is_learnware_list, "task": {"classification", "regression"},
        "max_size": _positive_int_or_none, "random_state": (int, np.integer),
    }

    def __init__(self, learnwares: Sequence[ReusableLearnware] | None = None, *, task: str = "classification",
                 max_size: int | None = None, random_state: int = 0) -> None:
        self.learnwares = learnwares
        self.task = task
        self.max_size = max_size
        self.random_state = random_state

    def _fit(self, X: NDArray[np.float64] | None, y: NDArray[Any] | None) -> None:
        X, y = self._labelled(X, y)
        lws = list(self.learnwares or [])
        outputs = collect_outputs(lws, X)
        size = self.max_size or min(2 * len(lws), 50)
        counts, errors = greedy_selection(outputs, y, task=self.task, max_size=size,
                                          random_state=self.random_state)
        self.selected_ = np.flatnonzero(counts)
        self.weights_ = counts[self.selected_] / counts.sum()
        self.val_errors_ = errors
        self.mode_ = "mean" if self.task == "regression" else "vote_by_label"
        logger.info("ensemble pruning kept %d of %d learnwares (val error %.4g)", len(self.selected_), len(lws),
                    errors.min())

    def _members(self) -> list[ReusableLearnware]:
        lws = list(self.learnwares or [])
        return [lws[i] for i in self.selected_]

    def _predict(self, X: NDArray[np.float64]) -> NDArray[Any]:
        return combine_outputs(collect_outputs(self._members(), X), self.mode_, self.weights_)

    def _solution_extra(self) -> dict[str, Any]:
        return {"mode": self.mode_, "weights": self.weights_.tolist()}
