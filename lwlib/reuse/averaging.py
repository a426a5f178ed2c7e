"""Averaging: combine all learnwares' outputs with fixed (optionally RKME-mixture) weights.

Why: the cheapest reuse needs no labels. Two reference bugs are fixed here: regression outputs with several
columns are averaged per column (the reference averaged across columns as well), and outputs that already are
probabilities are averaged as they are (the reference softmaxed probabilities, flattening them toward uniform).
``weights="mixture"`` weighs each learnware by how much of the user's distribution its RKME explains.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_is_fitted
from lwlib.errors import ReuseError
from lwlib.reuse.base import BaseReuser, ReusableLearnware, _is_learnware_list
from lwlib.reuse.combine import collect_outputs, combine_outputs, mean_proba
from lwlib.reuse.job_selector import rkme_mixture_weights

logger = logging.getLogger(__name__)

__all__ = ["AveragingReuser"]


def _valid_weights(value: Any) -> bool:
    """None, "mixture", or a sequence of non-negative numbers with a positive sum"""
    if value is None or (isinstance(value, str) and value == "mixture"):
        return True
    try:
        w = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return w.ndim == 1 and w.size > 0 and bool(np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0)


class AveragingReuser(BaseReuser):
    """Weighted average (regression), weighted label vote, or weighted probability mean over all learnwares.

    Parameters
    ----------
    learnwares : sequence of ReusableLearnware
    task : {"classification", "regression"}
    mode : {"mean", "vote_by_label", "vote_by_prob"}, optional
        Default: ``"mean"`` for regression, ``"vote_by_prob"`` for classification. In ``vote_by_prob`` the
        columns of 2-D outputs are the class labels 0..C-1; 1-D label outputs count as one-hot.
    weights : None, "mixture" or array-like of shape (n_learnwares,)
        None = uniform; ``"mixture"`` = RKME mixture weights of the user's ``X`` given to :meth:`fit` (needs
        specs); an array = given weights (e.g. the mixture weights a search returned), normalised to sum 1.

    Attributes
    ----------
    weights_ : ndarray of shape (n_learnwares,)
    mode_ : str
    """

    kind = "averaging"
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "learnwares": _is_learnware_list, "task": {"classification", "regression"},
        "mode": {None, "mean", "vote_by_label", "vote_by_prob"}, "weights": _valid_weights,
    }

    def __init__(self, learnwares: Sequence[ReusableLearnware] | None = None, *, task: str = "classification",
                 mode: str | None = None, weights: Any = None) -> None:
        self.learnwares = learnwares
        self.task = task
        self.mode = mode
        self.weights = weights

    def _fit(self, X: NDArray[np.float64] | None, y: NDArray[Any] | None) -> None:
        m = len(self.learnwares or [])
        mode = self.mode or ("mean" if self.task == "regression" else "vote_by_prob")
        if self.task == "regression" and mode != "mean":
            raise ReuseError(f"AveragingReuser(mode={mode!r}) is for classification; regression uses mode='mean'.",
                             code="invalid_parameter")
        if isinstance(self.weights, str):  # "mixture"
            if X is None:
                raise ReuseError("AveragingReuser(weights='mixture') needs the user's data: call fit(X).",
                                 code="user_data_required")
            w = rkme_mixture_weights(self._require_specs(), X)
        elif self.weights is None:
            w = np.full(m, 1.0 / m)
        else:
            w = np.asarray(self.weights, dtype=np.float64)
            if w.shape[0] != m:
                raise ReuseError(f"AveragingReuser got {w.shape[0]} weights for {m} learnwares; give one each.",
                                 code="invalid_weights")
            w = w / w.sum()
        self.weights_ = w
        self.mode_ = mode

    def _active(self) -> tuple[list[ReusableLearnware], NDArray[np.float64]]:
        """Learnwares with a positive weight: zero-weight learnwares are never called."""
        keep = np.flatnonzero(self.weights_ > 0)
        lws = list(self.learnwares or [])
        return [lws[i] for i in keep], self.weights_[keep]

    def _predict(self, X: NDArray[np.float64]) -> NDArray[Any]:
        lws, w = self._active()
        return combine_outputs(collect_outputs(lws, X), self.mode_, w)

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Weighted mean of the learnwares' class probabilities (``mode="vote_by_prob"`` only)."""
        check_is_fitted(self)
        if self.mode_ != "vote_by_prob":
            raise ReuseError(f"AveragingReuser(mode={self.mode_!r}) has no probabilities; use mode='vote_by_prob'.",
                             code="proba_unavailable")
        lws, w = self._active()
        return mean_proba(collect_outputs(lws, self._check_X(X)), w)

    def _members(self) -> list[ReusableLearnware]:
        return self._active()[0]

    def _solution_extra(self) -> dict[str, Any]:
        return {"mode": self.mode_, "weights": self._active()[1].tolist()}
