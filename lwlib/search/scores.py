"""Turning MMD² into scores a user can read, absolute by default, reference-style on request.

Absolute score (what the dock shows)
------------------------------------
``score = 1 − MMD²(Q, Φ) / (⟨Q,Q⟩ + ⟨Φ,Φ⟩) = 2⟨Q,Φ⟩ / (‖Q‖² + ‖Φ‖²)``, clipped to [0, 1].

Why this and not ``exp(−MMD²/τ)``: the size of an MMD² depends on the kernel width, the dimension and how
concentrated each distribution is, so any fixed temperature τ would make "0.8" mean different things for different
queries and feature spaces. Dividing by the two self terms removes the overall scale of the embeddings: the score is
the share of the embeddings' energy they have in common (a Dice coefficient in the RKHS). It is 1 exactly when the
embeddings coincide, ≈ 0 when the distributions do not overlap under the kernel, needs no tuning, and does not
depend on which other learnwares are in the market — so scores are comparable across queries and over time. For a
mixture Σ w_i Φ_i the self term is ``wᵀ K w``.

Reference score (compatibility)
-------------------------------
:func:`reference_scores` re-implements the reference market's per-query min-max normalisation
(LEARNWARE_FORMAT.md §5.2 step 7). It is relative — the worst listed item always gets 0 and the best ≥ 0.92 —
so it is offered only to reproduce reference behaviour.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

__all__ = ["absolute_scores", "reference_scores", "REFERENCE_MIN_SCORE"]

# The reference keeps singles while their (relative) score is at least this (§5.2 step 9).
REFERENCE_MIN_SCORE = 0.6


def absolute_scores(mmd2: Any, query_self: float, spec_self: Any) -> NDArray[np.float64]:
    """Absolute, query-comparable scores ``1 − mmd2 / (query_self + spec_self)`` in [0, 1].

    Parameters
    ----------
    mmd2 : array-like of shape (n,)
        Squared MMDs under one kernel.
    query_self : float
        ⟨Q, Q⟩ under the same kernel.
    spec_self : array-like of shape (n,)
        ⟨Φ_i, Φ_i⟩ (or ``wᵀKw`` for a mixture) under the same kernel.

    Returns
    -------
    ndarray of shape (n,)
        Non-finite inputs map to 0.

    Examples
    --------
    >>> absolute_scores([0.0, 0.5], 0.5, [0.5, 0.5]).round(2).tolist()
    [1.0, 0.5]
    """
    d = np.asarray(mmd2, dtype=np.float64).reshape(-1)
    denom = float(query_self) + np.asarray(spec_self, dtype=np.float64).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 1.0 - d / denom
    s = np.where(np.isfinite(s) & (denom > 0), s, 0.0)
    return np.clip(s, 0.0, 1.0)


def reference_scores(dists: Any) -> NDArray[np.float64]:
    """The reference market's relative score normalisation of one query's distance list (§5.2 step 7).

    ``ε = 0.1·mean(D)``; if ``min(D) < ε`` the best item is anchored at 1, else if the spread ratio
    ``(max−min)/(max−ε)`` is below 0.92 the best is anchored at 0.92; ``s = (max−d)/(max−ε)`` and scores below 0.7
    become ``min(√s, 0.7)``. The worst item always gets 0; all-equal lists get 1.

    Parameters
    ----------
    dists : array-like of shape (n,)
        Squared MMDs (singles, plus the mixture distance if any).

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> reference_scores([0.01, 0.02, 0.05, 0.1, 0.3]).round(3).tolist()
    [0.999, 0.964, 0.861, 0.7, 0.0]
    """
    D = np.asarray(dists, dtype=np.float64).reshape(-1)
    if D.size == 0:
        return D.copy()
    dmax, dmin = float(D.max()), float(D.min())
    if dmax == dmin:
        return np.ones_like(D)
    eps = 0.1 * float(D.mean())
    spread = (dmax - dmin) / (dmax - eps)
    if dmin < eps:
        eps = dmin
    elif spread < 0.92:
        eps = dmax - (dmax - dmin) / 0.92
    s = (dmax - D) / (dmax - eps)
    low = s < 0.7
    s[low] = np.minimum(np.sqrt(np.clip(s[low], 0.0, None)), 0.7)
    return s
