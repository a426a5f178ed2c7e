"""Single-learnware ranking: MMD² of the user's RKME against every compatible learnware in one batched pass.

``MMD²_i = ⟨Q,Q⟩ − 2⟨Q,Φ_i⟩ + ⟨Φ_i,Φ_i⟩``: the self terms ⟨Φ_i,Φ_i⟩ are cached in the index, ⟨Q,Q⟩ is computed once
per query, and the cross terms for all learnwares are one blocked kernel evaluation — no Python loop over
learnwares. For large markets a random-Fourier-feature sketch first shortlists the ``shortlist`` most promising
learnwares in O(N·D); the exact MMD² is then computed on the shortlist only (recall is measured in
``benchmarks/search_speed.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from lwlib.errors import SearchError
from lwlib.search.index import KernelView, SpecGroup, SpecIndex
from lwlib.search.result import SingleMatch
from lwlib.search.scores import absolute_scores
from lwlib.rkme.kernels import as_tensor

logger = logging.getLogger(__name__)

__all__ = ["SingleRanking", "score_single", "rank_single", "prepare_query", "DEFAULT_SHORTLIST"]

# Exact MMD² is computed for at most this many learnwares per query when the sketch is available ("auto").
DEFAULT_SHORTLIST = 50


@dataclass(frozen=True)
class SingleRanking:
    """Exact MMD² for the ranked learnwares of one group, best first, plus what mixtures need.

    Attributes
    ----------
    group : SpecGroup
    view : KernelView
    rows : ndarray (n,)  rows of ``group`` ranked, ascending MMD².
    mmd2, cross, self_terms : ndarray (n,)  MMD², ⟨Q,Φ_i⟩, ⟨Φ_i,Φ_i⟩.
    query_self : float  ⟨Q,Q⟩.
    query_z, query_beta : Tensor  the query in the view's space.
    n_candidates : int  compatible learnwares before shortlisting.
    """

    group: SpecGroup
    view: KernelView
    rows: NDArray[np.int64]
    mmd2: NDArray[np.float64]
    cross: NDArray[np.float64]
    self_terms: NDArray[np.float64]
    query_self: float
    query_z: torch.Tensor
    query_beta: torch.Tensor
    n_candidates: int

    @property
    def ids(self) -> list[str]:
        return [self.group.ids[r] for r in self.rows]

    def scores(self) -> NDArray[np.float64]:
        """Absolute scores of the ranked learnwares (see :mod:`lwlib.search.scores`)."""
        return absolute_scores(self.mmd2, self.query_self, self.self_terms)

    def matches(self, top_k: int | None = None) -> list[SingleMatch]:
        n = len(self.rows) if top_k is None else min(int(top_k), len(self.rows))
        s = self.scores()
        return [SingleMatch(learnware_id=self.group.ids[int(self.rows[i])], score=float(s[i]),
                            mmd2=float(self.mmd2[i]), rank=i) for i in range(n)]


def prepare_query(view: KernelView, query_spec: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The query's reduced set mapped into the view's space (standardised in market mode)."""
    return view.transform(query_spec.z_), as_tensor(query_spec.beta_).reshape(-1)


def score_single(index: SpecIndex, query_spec: Any, *, kernel: str = "market", candidates: Sequence[str] | None = None,
                 shortlist: int | str | None = "auto") -> SingleRanking | None:
    """Rank compatible learnwares by exact MMD² to ``query_spec`` (all of them, or a sketch shortlist).

    Parameters
    ----------
    index : SpecIndex
    query_spec : fitted RKME spec
    kernel : {"market", "reference"}
        ``"reference"`` uses raw features and the query's γ, like the reference market.
    candidates : sequence of str, optional
        Restrict to these learnware ids (e.g. the semantic survivors).
    shortlist : int, "auto" or None
        Number of learnwares scored exactly after the sketch prefilter; ``"auto"`` = ``DEFAULT_SHORTLIST`` in
        market mode and exact in reference mode (which must reproduce the reference's ranking), None or 0 =
        exact for all.

    Returns
    -------
    SingleRanking or None
        None when no learnware shares the query's spec type and dimension (or none of ``candidates`` does).
    """
    if getattr(query_spec, "z_", None) is None:
        raise SearchError("The user specification is not fitted; fit it on the user's data first.",
                          code="spec_not_fitted")
    group = index.group_for(query_spec)
    if group is None:
        return None
    rows = index.rows_of(group, candidates)
    n_candidates = int(rows.size)
    if n_candidates == 0:
        return None
    view = group.view(kernel, getattr(query_spec, "gamma_", None))
    qz, qb = prepare_query(view, query_spec)
    q_self = view.self_inner(qz, qb)
    if shortlist == "auto":
        limit = DEFAULT_SHORTLIST if kernel == "market" else 0
    else:
        limit = int(shortlist or 0)
    qs = view.query_sketch(qz, qb) if limit > 0 and rows.size > limit and view.sketch is not None else None
    if qs is not None and view.sketch is not None:  # a view with a sketch always sketches the query too
        sk = view.sketch if rows.size == len(group) else view.sketch[torch.from_numpy(rows)]
        approx = view.self_terms[rows] - 2.0 * (sk @ qs).numpy()
        rows = rows[np.argpartition(approx, limit - 1)[:limit]]
    cross = view.cross(qz, qb, rows)
    selfs = view.self_terms[rows]
    d = np.clip(q_self - 2.0 * cross + selfs, 0.0, None)
    ok = np.isfinite(d)
    order = np.argsort(np.where(ok, d, np.inf), kind="stable")
    order = order[ok[order]]
    return SingleRanking(group=group, view=view, rows=rows[order], mmd2=d[order], cross=cross[order],
                         self_terms=selfs[order], query_self=q_self, query_z=qz, query_beta=qb,
                         n_candidates=n_candidates)


def rank_single(index: SpecIndex, query_spec: Any, *, top_k: int | None = 10, kernel: str = "market",
                candidates: Sequence[str] | None = None, shortlist: int | str | None = "auto") -> list[SingleMatch]:
    """The ``top_k`` best single learnwares for ``query_spec``, ascending MMD², with absolute scores.

    Only learnwares with the same spec type and number of features are compared; an empty list means none is
    compatible. See :func:`score_single` for the parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from lwlib.rkme.rkme import RKMETableSpec
    >>> rng = np.random.default_rng(0)
    >>> specs = [RKMETableSpec(reduced_set_size=5).fit(rng.normal(m, 1, (60, 3))) for m in (0, 5)]
    >>> idx = SpecIndex.build(["a", "b"], specs)
    >>> user = RKMETableSpec(reduced_set_size=5).fit(rng.normal(5, 1, (60, 3)))
    >>> rank_single(idx, user)[0].learnware_id
    'b'
    """
    ranking = score_single(index, query_spec, kernel=kernel, candidates=candidates, shortlist=shortlist)
    return [] if ranking is None else ranking.matches(top_k)
