"""Mixtures of learnwares: find weights w on the simplex so that Σ w_i Φ_i matches the user's embedding Q.

``MMD²(Q, Σ w_i Φ_i) = ⟨Q,Q⟩ + 2·(½ wᵀKw − cᵀw)`` with ``K_ij = ⟨Φ_i,Φ_j⟩`` and ``c_i = ⟨Q,Φ_i⟩``, so the best
weights solve the simplex QP ``min ½wᵀKw − cᵀw, 1ᵀw = 1, w ≥ 0`` (:func:`mixture_weights`, Clarabel).

Two search strategies over a candidate pool (the best ``max_size²`` singles, as in the reference):

* :func:`search_mixture_greedy`: grow the set one learnware per round, each round trying every unused candidate;
  accept the best only if it lowers MMD² to ≤ ``min_improvement`` × the previous value. The Gram matrix grows by
  one batched column per accepted learnware, and all candidates of a round are solved at once by an exact batched
  small-QP solver (support enumeration), instead of one solver call per candidate.
* :func:`search_mixture_joint`: solve the QP over the whole pool once, keep the heaviest learnwares until their
  cumulative weight reaches ``weight_cut`` (the reference's "auto"), then re-solve on the kept set.

A mixture of one learnware is not a mixture and is discarded (None).
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lwlib.errors import SearchError
from lwlib.search.result import MixtureMatch
from lwlib.search.scores import absolute_scores
from lwlib.search.single import SingleRanking

logger = logging.getLogger(__name__)

__all__ = ["mixture_weights", "simplex_qp_batch", "search_mixture_greedy", "search_mixture_joint"]

_MAX_ENUM = 10  # support enumeration is exact but 2^m; beyond this size, use the QP solver


def mixture_weights(K: Any, c: Any) -> NDArray[np.float64]:
    """Solve ``min_w ½wᵀKw − cᵀw`` subject to ``1ᵀw = 1, w ≥ 0`` with Clarabel.

    Parameters
    ----------
    K : array-like of shape (m, m)
        Gram matrix of the learnwares' embeddings (PSD).
    c : array-like of shape (m,)
        Inner products of the user's embedding with each learnware's.

    Returns
    -------
    ndarray of shape (m,)
        Weights on the simplex (tiny negatives from the solver are clipped and renormalised).

    Examples
    --------
    >>> mixture_weights([[1.0, 0.0], [0.0, 1.0]], [0.7, 0.3]).round(3).tolist()
    [0.7, 0.3]
    """
    import qpsolvers

    K = np.asarray(K, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    m = c.shape[0]
    if K.shape != (m, m) or m == 0:
        raise SearchError(f"mixture_weights needs K of shape (m, m) and c of shape (m,), got {K.shape} and "
                          f"{c.shape}.", code="invalid_input")
    if m == 1:
        return np.ones(1)
    P = 0.5 * (K + K.T) + 1e-12 * max(1.0, float(np.trace(K)) / m) * np.eye(m)
    w = qpsolvers.solve_qp(sp.csc_matrix(P), -c, A=sp.csc_matrix(np.ones((1, m))), b=np.array([1.0]),
                           lb=np.zeros(m), solver="clarabel")
    if w is None or not np.all(np.isfinite(w)):
        if m > _MAX_ENUM:
            raise SearchError(f"The mixture-weight QP over {m} learnwares did not converge; reduce the pool size.",
                              code="mixture_qp_failed")
        logger.warning("clarabel failed on a %d-learnware mixture QP; using exact support enumeration", m)
        w, _ = simplex_qp_batch(K[None], c[None])
        w = w[0]
    w = np.clip(w, 0.0, None)
    normalised: NDArray[np.float64] = w / w.sum()
    return normalised


def simplex_qp_batch(K: Any, c: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exactly solve B small simplex QPs at once by enumerating supports (m ≤ 10).

    The optimum lies in the relative interior of some face {w_i = 0, i ∉ S}; there it is the equality-constrained
    minimiser, found from the KKT system ``[K_SS 1; 1ᵀ 0][w; λ] = [c_S; 1]``. Among the supports whose solution is
    non-negative, the one with the lowest objective is the global optimum (the problem is convex). All supports of
    all problems are solved in one batched ``numpy.linalg.solve``.

    Parameters
    ----------
    K : array-like of shape (B, m, m)
    c : array-like of shape (B, m)

    Returns
    -------
    w : ndarray of shape (B, m)
    obj : ndarray of shape (B,)  ½wᵀKw − cᵀw at the optimum.
    """
    K = np.asarray(K, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    B, m = c.shape
    if m > _MAX_ENUM:
        raise SearchError(f"simplex_qp_batch enumerates 2^m supports and accepts m ≤ {_MAX_ENUM}, got m={m}; use "
                          "mixture_weights for larger problems.", code="invalid_input")
    masks = np.array([s for s in itertools.product([0, 1], repeat=m) if any(s)], dtype=bool)  # (S, m)
    S = masks.shape[0]
    ridge = 1e-10 * np.maximum(1.0, np.einsum("bii->b", K) / m)
    Kr = K + ridge[:, None, None] * np.eye(m)
    # KKT matrices (B, S, m+1, m+1): rows/cols outside the support become identity with zero right-hand side.
    A = np.zeros((B, S, m + 1, m + 1))
    mm = masks[:, :, None] & masks[:, None, :]
    A[:, :, :m, :m] = np.where(mm[None], Kr[:, None], 0.0)
    idx = np.arange(m)
    A[:, :, idx, idx] = np.where(masks[None], A[:, :, idx, idx], 1.0)
    A[:, :, :m, m] = masks[None].astype(float)
    A[:, :, m, :m] = masks[None].astype(float)
    rhs = np.zeros((B, S, m + 1))
    rhs[:, :, :m] = np.where(masks[None], c[:, None, :], 0.0)
    rhs[:, :, m] = 1.0
    sol = np.linalg.solve(A, rhs[..., None])[..., 0]
    w = np.where(masks[None], sol[:, :, :m], 0.0)  # (B, S, m)
    obj = 0.5 * np.einsum("bsi,bij,bsj->bs", w, K, w) - np.einsum("bsi,bi->bs", w, c)
    feasible = (w >= -1e-12).all(-1)
    obj_f = np.where(feasible, obj, np.inf)
    best = np.argmin(obj_f, axis=1)
    wb = np.clip(w[np.arange(B), best], 0.0, None)
    wb /= wb.sum(1, keepdims=True)
    return wb, 0.5 * np.einsum("bi,bij,bj->b", wb, K, wb) - np.einsum("bi,bi->b", wb, c)


def _pool(ranking: SingleRanking, pool_size: int) -> tuple[NDArray[np.int64], NDArray[np.float64],
                                                           NDArray[np.float64]]:
    n = min(int(pool_size), len(ranking.rows))
    return ranking.rows[:n], ranking.cross[:n], ranking.self_terms[:n]


def _match(ranking: SingleRanking, rows: NDArray[np.int64], K: NDArray[np.float64],
           c: NDArray[np.float64]) -> MixtureMatch:
    """Final Clarabel weights and absolute score for a chosen set (sorted by weight)."""
    w = mixture_weights(K, c)
    mix_self = float(w @ K @ w)
    d = max(0.0, ranking.query_self + mix_self - 2.0 * float(c @ w))
    score = float(absolute_scores([d], ranking.query_self, [mix_self])[0])
    order = np.argsort(-w, kind="stable")
    return MixtureMatch(learnware_ids=tuple(ranking.group.ids[int(rows[i])] for i in order),
                        weights=tuple(float(w[i]) for i in order), score=score, mmd2=d)


def search_mixture_greedy(ranking: SingleRanking, *, max_size: int = 5, min_improvement: float = 0.95,
                          pool_size: int | None = None) -> MixtureMatch | None:
    """Greedy forward selection of a mixture from the best singles of ``ranking``.

    Parameters
    ----------
    ranking : SingleRanking
        Output of :func:`lwlib.search.single.score_single` for the user's spec (its kernel is used).
    max_size : int
        Largest mixture (≤ 10).
    min_improvement : float
        Accept a new learnware only if MMD² drops to ≤ this × the previous MMD².
    pool_size : int, optional
        Candidates considered; default ``max_size²`` as in the reference.

    Returns
    -------
    MixtureMatch or None
        None when no mixture of ≥ 2 learnwares improves on the best single.
    """
    if max_size < 2 or len(ranking.rows) < 2:
        return None
    max_size = min(int(max_size), _MAX_ENUM)
    rows, c_pool, self_pool = _pool(ranking, pool_size or max_size * max_size)
    view, q_self = ranking.view, ranking.query_self
    p = len(rows)
    sel = [0]  # the pool is sorted by single MMD²: the best single starts the mixture
    used = np.zeros(p, dtype=bool)
    used[0] = True
    G = view.gram(rows, rows[:1])  # (p, |sel|): incremental Gram columns
    best_d = float(ranking.mmd2[0])
    while len(sel) < max_size:
        cand = np.flatnonzero(~used)
        if cand.size == 0:
            break
        r = len(sel)
        Ks = G[sel]  # (r, r)
        Kb = np.empty((cand.size, r + 1, r + 1))
        Kb[:, :r, :r] = Ks
        Kb[:, :r, r] = G[cand]
        Kb[:, r, :r] = G[cand]
        Kb[:, r, r] = self_pool[cand]
        cb = np.empty((cand.size, r + 1))
        cb[:, :r] = c_pool[sel]
        cb[:, r] = c_pool[cand]
        _, obj = simplex_qp_batch(Kb, cb)
        dists = q_self + 2.0 * obj
        j = int(np.argmin(dists))
        if not dists[j] <= min_improvement * best_d:
            break
        best_d = float(dists[j])
        sel.append(int(cand[j]))
        used[cand[j]] = True
        G = np.concatenate([G, view.gram(rows, rows[[cand[j]]])], axis=1)
    if len(sel) < 2:
        return None
    return _match(ranking, rows[sel], G[sel], c_pool[sel])


def search_mixture_joint(ranking: SingleRanking, *, max_size: int = 5, weight_cut: float = 0.98,
                         pool_size: int | None = None, min_weight: float = 1e-3) -> MixtureMatch | None:
    """All-at-once mixture: weights over the whole pool, then keep the heaviest learnwares.

    Learnwares are sorted by weight and kept until their cumulative weight reaches ``weight_cut`` (the item that
    crosses the cut is kept — the reference stops *before* it, which discards the second member of a 0.7/0.3
    mixture), ignoring weights below ``min_weight``, truncated to ``max_size``; weights are then re-solved on the
    kept set.

    Returns
    -------
    MixtureMatch or None
        None when fewer than two learnwares carry weight.
    """
    if max_size < 2 or len(ranking.rows) < 2:
        return None
    rows, c_pool, _ = _pool(ranking, pool_size or max_size * max_size)
    G = ranking.view.gram(rows, rows)
    w = mixture_weights(G, c_pool)
    order = np.argsort(-w, kind="stable")
    cum = np.cumsum(w[order])
    n_keep = int(np.searchsorted(cum, weight_cut - 1e-12) + 1)
    keep = order[:min(n_keep, int(max_size))]
    keep = keep[w[keep] >= min_weight]
    if keep.size < 2:
        return None
    m = _match(ranking, rows[keep], G[np.ix_(keep, keep)], c_pool[keep])
    return m if m.mmd2 < float(ranking.mmd2[0]) else None
