"""Single ranking and the greedy mixture over a :class:`~lwlib.market.kernel.NumpyView`, without torch.

The same algorithm as :func:`lwlib.search.single.score_single` and :func:`lwlib.search.mixture.search_mixture_greedy`
(MMD² = ⟨Q,Q⟩ − 2⟨Q,Φ_i⟩ + ⟨Φ_i,Φ_i⟩ with cached self terms; a random-feature shortlist, then exact MMD²; the
mixture grows one learnware per round with all candidates of a round solved at once), ported to numpy so a
command-line or HTTP search never imports torch. ``tests/lwlib/test_market.py`` checks both give the same
ranking, scores and mixture.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from lwlib.errors import SearchError
from lwlib.market._pure import pure_search_module
from lwlib.market.kernel import NumpyView, rbf
from lwlib.market.store import coarse_of
from lwlib.market.qp import solve_simplex_qp

__all__ = ["Ranking", "score_rows", "greedy_mixture", "simplex_qp_batch", "mixture_weights", "DEFAULT_SHORTLIST"]

DEFAULT_SHORTLIST = 50  # as lwlib.search.single: exact MMD² for at most this many learnwares ("auto")
COARSE_MIN_ROWS = 20_000  # above this many candidates, a coarse sketch pass comes first (reads 1/4 of the bytes)
COARSE_KEEP = 1_000  # candidates the coarse pass keeps for the full sketch (at least 20 × the shortlist)
_MAX_ENUM = 10


@dataclass(frozen=True)
class Ranking:
    """Exact MMD² of the ranked rows of one group, best first (mirrors ``lwlib.search.single.SingleRanking``)."""

    view: NumpyView
    id_of: Callable[[int], str]
    rows: NDArray[np.int64]
    mmd2: NDArray[np.float64]
    cross: NDArray[np.float64]
    self_terms: NDArray[np.float64]
    query_self: float
    n_candidates: int

    @property
    def ids(self) -> list[str]:
        return [self.id_of(int(r)) for r in self.rows]

    def scores(self) -> NDArray[np.float64]:
        s = pure_search_module("scores").absolute_scores(self.mmd2, self.query_self, self.self_terms)
        return np.asarray(s, dtype=np.float64)

    def matches(self, top_k: int | None = None) -> list[Any]:
        SingleMatch = pure_search_module("result").SingleMatch
        n = len(self.rows) if top_k is None else min(int(top_k), len(self.rows))
        s = self.scores()
        return [SingleMatch(learnware_id=self.id_of(int(self.rows[i])), score=float(s[i]), mmd2=float(self.mmd2[i]),
                            rank=i) for i in range(n)]


def score_rows(view: NumpyView, id_of: Callable[[int], str], rows: NDArray[np.int64], query_z: Any,
               query_beta: Any, *, shortlist: int | None = DEFAULT_SHORTLIST) -> Ranking:
    """Rank ``rows`` of the view by exact MMD² to the (raw-unit) query; sketch-shortlist when there are many.

    Parameters
    ----------
    rows : ndarray of int
        Candidate rows (live learnwares, after the semantic filter), ascending.
    query_z, query_beta : array-like (K_q, d), (K_q,)
        The user's reduced set in raw feature units.
    shortlist : int or None
        Exact MMD² for at most this many rows (chosen by the sketch); None or 0 = all.
    """
    qz = view.transform(query_z)
    qb = np.asarray(query_beta, dtype=np.float64).reshape(-1)
    q_self = view.self_inner(qz, qb)
    n_candidates = int(rows.size)
    limit = int(shortlist or 0)
    qsk = view.query_sketch(qz, qb) if limit > 0 and rows.size > limit and view.sketch is not None else None
    if qsk is not None and view.sketch is not None:
        qs = qsk.astype(np.float32)
        if view.coarse is not None and view.coarse.shape[1] and rows.size > COARSE_MIN_ROWS:
            rows = np.sort(_shortlist(view.coarse, view.self_terms, rows, coarse_of(qs[None])[0],
                                      max(COARSE_KEEP, 20 * limit)))  # sorted: sketch rows are read in order
        rows = _shortlist(view.sketch, view.self_terms, rows, qs, limit)
    cross = view.cross(qz, qb, rows)
    selfs = np.asarray(view.self_terms[rows], dtype=np.float64)
    d = np.clip(q_self - 2.0 * cross + selfs, 0.0, None)
    ok = np.isfinite(d)
    order = np.argsort(np.where(ok, d, np.inf), kind="stable")
    order = order[ok[order]]
    return Ranking(view=view, id_of=id_of, rows=rows[order], mmd2=d[order], cross=cross[order],
                   self_terms=selfs[order], query_self=q_self, n_candidates=n_candidates)


def _shortlist(sketch: Any, self_terms: Any, rows: NDArray[np.int64], q: NDArray[np.float32],
               keep: int) -> NDArray[np.int64]:
    """The ``keep`` rows with the smallest sketched MMD² (``⟨Φ_i,Φ_i⟩ − 2 sketch_i·q``), unordered."""
    if rows.size <= keep:
        return rows
    if 4 * rows.size > sketch.shape[0]:  # one pass over the whole (memory-mapped) sketch, no gather copy
        prod = (sketch @ q)[rows]
    else:
        prod = sketch[rows] @ q
    approx = np.asarray(self_terms[rows], dtype=np.float64) - 2.0 * prod.astype(np.float64)
    return rows[np.argpartition(approx, keep - 1)[:keep]]


def mixture_weights(K: Any, c: Any) -> NDArray[np.float64]:
    """``min ½wᵀKw − cᵀw`` on the simplex with Clarabel (as :func:`lwlib.search.mixture.mixture_weights`)."""
    K = np.asarray(K, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    m = c.shape[0]
    if m == 1:
        return np.ones(1)
    P = 0.5 * (K + K.T) + 1e-12 * max(1.0, float(np.trace(K)) / m) * np.eye(m)
    x, solved = solve_simplex_qp(P, -c)
    w = x if solved else None
    if w is None or not np.all(np.isfinite(w)):
        w, _ = simplex_qp_batch(K[None], c[None])
        w = w[0]
    w = np.clip(w, 0.0, None)
    return np.asarray(w / w.sum(), dtype=np.float64)


def simplex_qp_batch(K: Any, c: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact small simplex QPs by support enumeration (m ≤ 10), all problems in one batched solve."""
    K = np.asarray(K, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    B, m = c.shape
    if m > _MAX_ENUM:
        raise SearchError(f"simplex_qp_batch accepts m ≤ {_MAX_ENUM}, got m={m}.", code="invalid_input")
    masks = np.array([s for s in itertools.product([0, 1], repeat=m) if any(s)], dtype=bool)
    S = masks.shape[0]
    ridge = 1e-10 * np.maximum(1.0, np.einsum("bii->b", K) / m)
    Kr = K + ridge[:, None, None] * np.eye(m)
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
    w = np.where(masks[None], sol[:, :, :m], 0.0)
    obj = 0.5 * np.einsum("bsi,bij,bsj->bs", w, K, w) - np.einsum("bsi,bi->bs", w, c)
    obj_f = np.where((w >= -1e-12).all(-1), obj, np.inf)
    best = np.argmin(obj_f, axis=1)
    wb = np.clip(w[np.arange(B), best], 0.0, None)
    wb /= wb.sum(1, keepdims=True)
    return wb, 0.5 * np.einsum("bi,bij,bj->b", wb, K, wb) - np.einsum("bi,bi->b", wb, c)


def greedy_mixture(ranking: Ranking, *, max_size: int = 5, min_improvement: float = 0.95,
                   pool_size: int | None = None) -> Any:
    """Greedy forward selection of a mixture from the best singles; None when no mixture of ≥ 2 helps."""
    if max_size < 2 or len(ranking.rows) < 2 or not ranking.mmd2[0] > 0:
        return None
    max_size = min(int(max_size), _MAX_ENUM)
    n = min(int(pool_size or max_size * max_size), len(ranking.rows))
    rows, c_pool, self_pool = ranking.rows[:n], ranking.cross[:n], ranking.self_terms[:n]
    view, q_self = ranking.view, ranking.query_self
    sel = [0]
    used = np.zeros(n, dtype=bool)
    used[0] = True
    G = view.gram(rows, rows[:1])
    best_d = float(ranking.mmd2[0])
    while len(sel) < max_size:
        cand = np.flatnonzero(~used)
        if cand.size == 0:
            break
        r = len(sel)
        Kb = np.empty((cand.size, r + 1, r + 1))
        Kb[:, :r, :r] = G[sel]
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
    K, c = G[sel], c_pool[sel]
    w = mixture_weights(K, c)
    mix_self = float(w @ K @ w)
    d = max(0.0, q_self + mix_self - 2.0 * float(c @ w))
    score = float(pure_search_module("scores").absolute_scores([d], q_self, [mix_self])[0])
    order = np.argsort(-w, kind="stable")
    return pure_search_module("result").MixtureMatch(
        learnware_ids=tuple(ranking.id_of(int(rows[sel][i])) for i in order),
        weights=tuple(float(w[i]) for i in order), score=score, mmd2=d)


def self_inner(z: NDArray[np.float64], b: NDArray[np.float64], gamma: float) -> float:
    """⟨Q, Q⟩ of a transformed point set (exposed for tests)."""
    return float(b @ rbf(z, z, gamma) @ b)
