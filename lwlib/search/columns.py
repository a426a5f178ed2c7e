"""Column alignment across feature spaces by the semantic Input descriptions (used by the hetero searcher).

:func:`align_by_descriptions` matches user columns to a learnware space's columns by their text (rapidfuzz
``process.cdist``, one-to-one by optimal assignment, numbers in a description must agree); :class:`ColumnMap` copies
matched columns and imputes the learnware's other columns from its own RKME (β-weighted ridge on the reduced set,
or the β-weighted mean). See :mod:`lwlib.search.hetero` for why this beats a learned embedding here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array
from lwlib.errors import SearchError

logger = logging.getLogger(__name__)

__all__ = ["ColumnMap", "align_by_descriptions", "description_similarity", "input_descriptions", "fill_statistics"]

NUMBER_MISMATCH_FACTOR = 0.5  # similarity kept when two descriptions quote different numbers
FILLS = ("linear", "mean")
_NUM = re.compile(r"\d+(?:\.\d+)?")


# ----------------------------------------------------------------------------------------------- text matching
def _normalise(text: str) -> str:
    """Lower case, ``month(s)``/``months`` → ``month``, punctuation → spaces, so wording variants compare equal."""
    t = str(text).lower().replace("(s)", "")
    t = re.sub(r"[^a-z0-9.]+", " ", t)
    t = re.sub(r"\b([a-z]{3,}[^s\W])s\b", r"\1", t)
    return " ".join(t.split())


def _substitution_factor(nu: Sequence[str], nt: Sequence[str], S: NDArray[np.float64]) -> NDArray[np.float64]:
    """Penalty for pairs that *replace* words: "max minus min X" vs "std of X" share X but name other statistics.

    Words only one side has ("age in years" vs "age years") are tolerated; when both sides have words of their
    own, the pair keeps ``0.5 + 0.5·ratio(own words)``. Only pairs already scoring ≥ 0.5 are examined (a few).
    """
    from rapidfuzz import fuzz

    F = np.ones_like(S)
    tu, tt = [set(t.split()) for t in nu], [set(t.split()) for t in nt]
    for i, j in zip(*np.nonzero(S >= 0.5)):  # description pairs, not data points
        own_u, own_t = tu[i] - tt[j], tt[j] - tu[i]
        if own_u and own_t:
            F[i, j] = 0.5 + 0.5 * fuzz.token_sort_ratio(" ".join(sorted(own_u)), " ".join(sorted(own_t))) / 100
    return F


def description_similarity(user_texts: Sequence[str], target_texts: Sequence[str], *,
                           use_embeddings: bool = False) -> NDArray[np.float64]:
    """Similarity in [0, 1] of every user description to every target description, shape (n_user, n_target).

    ``token_sort_ratio`` on normalised text (not ``token_set_ratio``: "max minus min growth over 12 months"
    contains every word of "growth 12 months" and would score 1). Pairs whose numbers differ are multiplied by
    ``NUMBER_MISMATCH_FACTOR``. With ``use_embeddings`` the MiniLM cosine is averaged in (loaded lazily).
    """
    from rapidfuzz import fuzz, process

    nu, nt = [_normalise(t) for t in user_texts], [_normalise(t) for t in target_texts]
    S = process.cdist(nu, nt, scorer=fuzz.token_sort_ratio, dtype=np.float32, workers=1).astype(np.float64) / 100
    num_u = np.array([" ".join(sorted(_NUM.findall(t))) for t in nu], dtype=object)
    num_t = np.array([" ".join(sorted(_NUM.findall(t))) for t in nt], dtype=object)
    S = np.where(num_u[:, None] == num_t[None, :], S, S * NUMBER_MISMATCH_FACTOR)
    S = S * _substitution_factor(nu, nt, S)
    if use_embeddings:
        from lwlib.rkme.text import embed_texts

        E = embed_texts(list(user_texts) + list(target_texts))
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        S = 0.5 * (S + np.clip(E[:len(nu)] @ E[len(nu):].T, 0.0, 1.0))
    return S


def input_descriptions(semantic_spec: Any) -> dict[int, str]:
    """Per-column input descriptions of a ``SemanticSpec`` or reference dict (``{}`` when there are none)."""
    if semantic_spec is None:
        return {}
    if isinstance(semantic_spec, Mapping):
        desc = (semantic_spec.get("Input") or {}).get("Description") or {}
    else:
        io = getattr(semantic_spec, "input", None)
        desc = getattr(io, "descriptions", None) or {}
    return {int(k): str(v) for k, v in desc.items() if str(v).strip()}


# ----------------------------------------------------------------------------------------------- column map
@dataclass(frozen=True, eq=False)
class ColumnMap:
    """How user rows become rows of one learnware space.

    Attributes
    ----------
    n_user, n_target : int
        Widths of the user's and the learnware's feature spaces.
    user_cols, target_cols : ndarray of int
        Matched pairs: user column ``user_cols[i]`` is copied to target column ``target_cols[i]``.
    scores : ndarray
        Description similarity of each matched pair.
    fill : {"linear", "mean"}
    fill_mean : ndarray of shape (n_target,) or None
        β-weighted mean of every target column in the learnware's RKME (None until :meth:`with_spec`).
    fill_coef : ndarray of shape (n_matched, n_missing) or None
        Ridge coefficients of the missing columns on the matched ones (``fill="linear"``).
    fill_r2 : ndarray of shape (n_missing,) or None
        β-weighted R² of that regression on the RKME points: the share of a missing column the user determines.
    """

    n_user: int
    n_target: int
    user_cols: NDArray[np.int64]
    target_cols: NDArray[np.int64]
    scores: NDArray[np.float64]
    fill: str = "linear"
    fill_mean: NDArray[np.float64] | None = None
    fill_coef: NDArray[np.float64] | None = None
    fill_r2: NDArray[np.float64] | None = None

    @property
    def missing_cols(self) -> NDArray[np.int64]:
        """Target columns no user column supplies (filled from the learnware's RKME)."""
        return np.setdiff1d(np.arange(self.n_target), self.target_cols)

    @property
    def dropped_cols(self) -> NDArray[np.int64]:
        """User columns the learnware has no use for."""
        return np.setdiff1d(np.arange(self.n_user), self.user_cols)

    @property
    def coverage(self) -> float:
        """Share of the learnware's columns the user supplies: (Σ match scores + Σ fill R² if linear) / n_target."""
        got = float(self.scores.sum())
        if self.fill == "linear" and self.fill_r2 is not None:
            got += float(np.clip(self.fill_r2, 0.0, 1.0).sum())
        return got / max(1, self.n_target)

    def with_spec(self, spec: Any, *, fill: str | None = None, ridge: float = 1e-3) -> ColumnMap:
        """This map with fill statistics from the learnware's RKME (see :func:`fill_statistics`)."""
        fill = self.fill if fill is None else fill
        Zs, betas = np.asarray(spec.z_, dtype=np.float64)[None], np.asarray(spec.beta_, dtype=np.float64)[None]
        mean, coef, r2 = fill_statistics(Zs, betas, self.target_cols, ridge=ridge)
        return replace(self, fill=fill, fill_mean=mean[0], fill_coef=coef[0], fill_r2=r2[0])

    def transform(self, X: Any) -> NDArray[np.float64]:
        """User rows of shape (n, n_user) → rows of shape (n, n_target) in the learnware's space."""
        X = check_array(X, name="X")
        if X.shape[1] != self.n_user:
            raise SearchError(f"ColumnMap expects user rows with {self.n_user} columns, got {X.shape[1]}; pass data "
                              "in the feature space the map was built for.", code="n_features_mismatch")
        miss = self.missing_cols
        if miss.size and self.fill_mean is None:
            raise SearchError(f"ColumnMap has {miss.size} unmatched learnware columns and no fill statistics; call "
                              "with_spec(learnware_rkme) first.", code="column_map_unfitted")
        out = np.empty((X.shape[0], self.n_target))
        Xm = X[:, self.user_cols]
        out[:, self.target_cols] = Xm
        if miss.size and self.fill_mean is not None:  # checked above: unmatched columns have fill statistics
            out[:, miss] = self.fill_mean[miss]
            if self.fill == "linear" and self.fill_coef is not None and self.user_cols.size:
                out[:, miss] += (Xm - self.fill_mean[self.target_cols]) @ self.fill_coef
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no fill arrays)."""
        return {"n_user": self.n_user, "n_target": self.n_target, "pairs": [[int(u), int(t), round(float(s), 4)]
                for u, t, s in zip(self.user_cols, self.target_cols, self.scores)],
                "missing": self.missing_cols.tolist(), "dropped": self.dropped_cols.tolist(), "fill": self.fill,
                "coverage": round(self.coverage, 4)}


def fill_statistics(Zs: NDArray[np.float64], betas: NDArray[np.float64], matched: NDArray[np.int64], *,
                    ridge: float = 1e-3) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """β-weighted means, ridge coefficients and R² of missing on matched columns, for N stacked RKMEs at once.

    Parameters
    ----------
    Zs : ndarray of shape (N, K, d);  betas : ndarray of shape (N, K) (padding has β = 0).
    matched : ndarray of int  target columns the user supplies.
    ridge : float  relative ridge (times the mean matched variance), keeps the solve stable when K is small.

    Returns
    -------
    mean (N, d), coef (N, n_matched, n_missing), r2 (N, n_missing)
    """
    matched = np.asarray(matched, dtype=np.int64)
    missing = np.setdiff1d(np.arange(Zs.shape[2]), matched)
    p = np.clip(betas, 0.0, None)
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-300)
    mean = np.einsum("nk,nkd->nd", p, Zs)
    C = Zs - mean[:, None, :]
    Cm, Cu = C[:, :, matched], C[:, :, missing]
    N, m, u = Zs.shape[0], matched.size, missing.size
    if m == 0 or u == 0:
        return mean, np.zeros((N, m, u)), np.zeros((N, u))
    A = np.einsum("nk,nki,nkj->nij", p, Cm, Cm)
    B = np.einsum("nk,nki,nkj->nij", p, Cm, Cu)
    lam = ridge * np.maximum(np.einsum("nii->n", A) / m, 1e-12)
    coef = np.linalg.solve(A + lam[:, None, None] * np.eye(m), B)
    resid = Cu - np.einsum("nki,niu->nku", Cm, coef)
    var = np.einsum("nk,nku->nu", p, Cu * Cu)
    r2 = 1.0 - np.einsum("nk,nku->nu", p, resid * resid) / np.maximum(var, 1e-300)
    return mean, coef, np.where(var > 1e-300, np.clip(r2, 0.0, 1.0), 1.0)


def align_by_descriptions(user_descriptions: Mapping[int, str], learnware_descriptions: Mapping[int, str], *,
                          n_user: int | None = None, n_target: int | None = None, threshold: float = 0.8,
                          use_embeddings: bool = False, fill: str = "linear") -> ColumnMap:
    """Match user columns to learnware columns one-to-one by their description text.

    Parameters
    ----------
    user_descriptions, learnware_descriptions : dict of int to str
        Column index → description; undescribed columns cannot be matched.
    n_user, n_target : int, optional
        Widths of the two spaces (default: 1 + the largest described index).
    threshold : float
        Minimum similarity (see :func:`description_similarity`) of a kept pair.
    use_embeddings : bool
        Average the MiniLM cosine into the similarity (slower; needs the text model installed).
    fill : {"linear", "mean"}
        How :meth:`ColumnMap.transform` fills unmatched learnware columns once :meth:`ColumnMap.with_spec` ran.

    Returns
    -------
    ColumnMap
        Pairs sorted by learnware column; possibly none (then ``coverage == 0``).

    Examples
    --------
    >>> m = align_by_descriptions({0: "age in years", 1: "income"}, {0: "income", 1: "height", 2: "Age (years)"})
    >>> m.user_cols.tolist(), m.target_cols.tolist()
    ([1, 0], [0, 2])
    """
    from scipy.optimize import linear_sum_assignment

    if fill not in FILLS:
        raise SearchError(f"fill must be one of {FILLS}, got {fill!r}.", code="invalid_parameter")
    ud = {int(k): str(v) for k, v in user_descriptions.items() if str(v).strip()}
    td = {int(k): str(v) for k, v in learnware_descriptions.items() if str(v).strip()}
    n_user = int(n_user if n_user is not None else max(ud, default=-1) + 1)
    n_target = int(n_target if n_target is not None else max(td, default=-1) + 1)
    empty = np.zeros(0, dtype=np.int64)
    if not ud or not td:
        return ColumnMap(n_user, n_target, empty, empty, np.zeros(0), fill=fill)
    uk, tk = np.array(sorted(ud)), np.array(sorted(td))
    S = description_similarity([ud[i] for i in uk], [td[j] for j in tk], use_embeddings=use_embeddings)
    r, c = linear_sum_assignment(-S)
    keep = S[r, c] >= threshold
    r, c = r[keep], c[keep]
    order = np.argsort(tk[c], kind="stable")
    return ColumnMap(n_user, n_target, uk[r][order].astype(np.int64), tk[c][order].astype(np.int64),
                     S[r, c][order], fill=fill)
