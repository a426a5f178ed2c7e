"""Search across feature spaces: match the user's columns to each learnware space by their descriptions.

Why not the reference's HeteroMap (LEARNWARE_FORMAT.md §3.4): it trains a transformer on RKME points of the whole
market to embed every table into one space, retrains every 100 uploads, and its reuse then ignores the embedding
and learns an unconstrained MMD-matching MLP. But uploaders already say what each column *is*
(``Input.Description``); when two spaces share a column ("growth 1 month before") the exact answer is to copy it.
So here:

1. :func:`align_by_descriptions` matches user columns to a space's columns by their text (rapidfuzz
   ``process.cdist``, one-to-one by optimal assignment, numbers in a description must agree — "1 month before" is
   not "12 months before"; optional MiniLM cosine as a second signal).
2. :class:`ColumnMap` copies matched columns and *imputes* the learnware's other columns from its own RKME: the
   reduced set (Z, β) is a weighted sample of the learnware's inputs, so a β-weighted ridge regression of the
   missing columns on the matched ones gives their conditional mean (``fill="linear"``; ``"mean"`` = the
   β-weighted column mean). The fit's R² also says how much of a missing column the user's data determine.
3. :class:`HeteroSearcher` ranks the learnwares of each space by the exact MMD² between the user's RKME on the
   matched columns and the learnwares' RKMEs *marginalised* on those columns (a marginal of an RKME is its reduced
   set restricted to those columns, same β), batched through :class:`SpecIndex` / :func:`score_single` with the
   market kernel of that projected space. Spaces are merged by ``score = statistical score × coverage``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array, check_is_fitted, validate_params
from lwlib.base import LwEstimator
from lwlib.constants import RKME_TABLE_TYPE
from lwlib.errors import SearchError
from lwlib.search.index import SpecIndex
from lwlib.search.mixture import search_mixture_greedy
from lwlib.search.result import MixtureMatch, SearchResult, SingleMatch
from lwlib.search.searcher import SearchEntry, _pick_stat_spec
from lwlib.search.single import score_single
from lwlib.spec.kernels import stack_specs

logger = logging.getLogger(__name__)

__all__ = ["ColumnMap", "align_by_descriptions", "description_similarity", "input_descriptions",
           "HeteroSearcher", "HeteroSearchResult", "HeteroMatch", "combined_score",
           "fill_statistics"]

NUMBER_MISMATCH_FACTOR = 0.5  # similarity kept when two descriptions quote different numbers
_FILLS = ("linear", "mean")
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
        from lwlib.spec.text import embed_texts

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
        if miss.size:
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

    if fill not in _FILLS:
        raise SearchError(f"fill must be one of {_FILLS}, got {fill!r}.", code="invalid_parameter")
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


# ----------------------------------------------------------------------------------------------- searcher
@dataclass(frozen=True, eq=False)
class HeteroMatch:
    """Where a match came from: its feature space, the map that brings user rows there, and the score parts."""

    learnware_id: str
    space: str
    column_map: ColumnMap
    coverage: float
    stat_score: float
    mmd2: float


@dataclass(frozen=True)
class HeteroSearchResult(SearchResult):
    """A :class:`SearchResult` whose singles and mixtures may live in several spaces; ``matches`` says how.

    ``matches[learnware_id].column_map.transform(user_X)`` gives the rows that learnware's ``predict`` expects.
    """

    matches: Mapping[str, HeteroMatch] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["matches"] = {k: {"space": m.space, "coverage": m.coverage, "stat_score": m.stat_score,
                              "column_map": m.column_map.to_dict()} for k, m in self.matches.items()}
        return out


@dataclass
class _Space:
    name: str
    descriptions: dict[int, str]
    ids: list[str]
    Zs: NDArray[np.float64]
    betas: NDArray[np.float64]
    indexes: dict[tuple[int, ...], SpecIndex] = field(default_factory=dict)


@dataclass
class _Projected:
    """An RKME restricted to some columns (the marginal embedding): same β, Z's columns."""

    z_: NDArray[np.float64]
    beta_: NDArray[np.float64]
    type_name: str = RKME_TABLE_TYPE


def combined_score(stat_score: float, coverage: float) -> float:
    """``1 − (1 − stat_score) / coverage``, clipped to [0, 1]: the relative MMD² inflated by the uncovered share.

    Why not ``stat_score × coverage``: absolute scores of close distributions sit in 0.95–1, while coverage
    differs by 0.1–0.3 between learnwares, so the product ranks by coverage alone and ignores the data. Dividing
    the *distance* keeps the statistical order within a space and still discounts a match made on few columns
    (weaker evidence); a perfect match stays 1 whatever the coverage, a coverage of 0.5 doubles the distance.

    Examples
    --------
    >>> round(combined_score(0.99, 0.5), 3), round(combined_score(0.99, 1.0), 3)
    (0.98, 0.99)
    """
    return float(np.clip(1.0 - (1.0 - float(stat_score)) / max(float(coverage), 1e-12), 0.0, 1.0))


class HeteroSearcher(LwEstimator):
    """Rank learnwares of every feature space for user data described column by column.

    Parameters
    ----------
    min_coverage : float, default 0.5
        Learnwares whose :attr:`ColumnMap.coverage` is below this are not offered (too much of their input
        would be guessed).
    top_k : int, default 10
    max_mixture : int, default 5
        Largest mixture, searched within one space (< 2 disables).
    threshold : float, default 0.8
        Minimum description similarity of a matched column pair.
    fill : {"linear", "mean"}, default "linear"
    use_embeddings : bool, default False
        Add MiniLM similarity to the fuzzy text match.
    min_improvement : float, default 0.95
    shortlist : int, "auto" or None, default "auto"
    user_reduced_set_size : int, default 100
        K of the user's RKME on the matched columns (computed locally; the data go no further).

    Notes
    -----
    Spaces are merged by :func:`combined_score` of the absolute score of the marginal MMD² and the coverage
    (a mixture uses the weight-averaged coverage of its members).
    """

    _parameter_constraints = {
        "min_coverage": lambda v: isinstance(v, (int, float)) and 0 <= v <= 1,
        "top_k": lambda v: isinstance(v, int) and v >= 1,
        "max_mixture": lambda v: isinstance(v, int) and 0 <= v <= 10,
        "threshold": lambda v: isinstance(v, (int, float)) and 0 < v <= 1,
        "fill": set(_FILLS),
        "use_embeddings": (bool,),
        "min_improvement": lambda v: isinstance(v, (int, float)) and 0 < v <= 1,
        "user_reduced_set_size": lambda v: isinstance(v, int) and v >= 1,
    }

    def __init__(self, min_coverage: float = 0.5, top_k: int = 10, max_mixture: int = 5, threshold: float = 0.8,
                 fill: str = "linear", use_embeddings: bool = False, min_improvement: float = 0.95,
                 shortlist: int | str | None = "auto", user_reduced_set_size: int = 100) -> None:
        self.min_coverage = min_coverage
        self.top_k = top_k
        self.max_mixture = max_mixture
        self.threshold = threshold
        self.fill = fill
        self.use_embeddings = use_embeddings
        self.min_improvement = min_improvement
        self.shortlist = shortlist
        self.user_reduced_set_size = user_reduced_set_size

    def fit(self, entries: Sequence[SearchEntry | tuple[str, Any, Any]]) -> HeteroSearcher:
        """Group the market's table RKMEs into feature spaces: same width and same column descriptions."""
        validate_params(self)
        buckets: dict[tuple[int, tuple[tuple[int, str], ...]], list[tuple[str, Any]]] = {}
        for e in (SearchEntry(*e) for e in entries):  # bookkeeping; the numeric work is batched per space
            spec = _pick_stat_spec(e.stat_spec)
            if spec is None:
                continue
            d = int(np.asarray(spec.z_).shape[1])
            desc = {k: v for k, v in input_descriptions(e.semantic_spec).items() if 0 <= k < d}
            buckets.setdefault((d, tuple(sorted(desc.items()))), []).append((str(e.learnware_id), spec))
        self.spaces_: list[_Space] = []
        for i, ((d, desc), members) in enumerate(buckets.items()):
            Zs, betas = stack_specs([s for _, s in members])
            self.spaces_.append(_Space(name=f"space{i}-d{d}", descriptions=dict(desc), ids=[m for m, _ in members],
                                       Zs=Zs, betas=betas))
        logger.info("hetero searcher fitted: %d learnwares in %d feature spaces",
                    sum(len(s.ids) for s in self.spaces_), len(self.spaces_))
        return self

    def search(self, user_X: Any, user_descriptions: Mapping[int, str] | None = None) -> HeteroSearchResult:
        """Search every space the user's described columns can be mapped into.

        Returns
        -------
        HeteroSearchResult
            Empty with a ``message`` when no space has a usable column match (e.g. no descriptions: use
            :class:`lwlib.reuse.FeatureAlignReuser`, which needs none, or :class:`MarketSearcher` for same-space
            data).
        """
        check_is_fitted(self, "spaces_")
        X = check_array(user_X, name="user_X")
        ud = {int(k): str(v) for k, v in (user_descriptions or {}).items() if str(v).strip()}
        if not ud:
            return HeteroSearchResult(message="The user data have no column descriptions, so no column can be "
                                      "matched; describe the columns, or align with FeatureAlignReuser.")
        singles: list[SingleMatch] = []
        mixtures: list[MixtureMatch] = []
        matches: dict[str, HeteroMatch] = {}
        info: dict[str, Any] = {}
        for space in self.spaces_:
            found = self._search_space(space, X, ud, info)
            if found is not None:
                singles += found[0]
                mixtures += found[1]
                matches.update(found[2])
        if not singles:
            return HeteroSearchResult(kernel={"mode": "hetero", "spaces": info},
                                      message="No feature space has enough columns matching the user's "
                                      f"descriptions (threshold {self.threshold}, min coverage {self.min_coverage}); "
                                      "describe more columns, lower min_coverage, or use FeatureAlignReuser.")
        singles.sort(key=lambda m: -m.score)
        singles = [replace(m, rank=r) for r, m in enumerate(singles[:self.top_k])]
        mixtures.sort(key=lambda m: -m.score)
        keep = {m.learnware_id for m in singles} | {i for m in mixtures for i in m.learnware_ids}
        msg = (f"{len(singles)} single learnware(s) and {len(mixtures)} mixture(s) from "
               f"{sum(1 for v in info.values() if v.get('n_candidates'))} feature space(s).")
        return HeteroSearchResult(singles=tuple(singles), mixtures=tuple(mixtures),
                                  kernel={"mode": "hetero", "spaces": info}, message=msg,
                                  matches={k: v for k, v in matches.items() if k in keep})

    def _search_space(self, space: _Space, X: NDArray[np.float64], ud: dict[int, str], info: dict[str, Any]
                      ) -> tuple[list[SingleMatch], list[MixtureMatch], dict[str, HeteroMatch]] | None:
        cmap = align_by_descriptions(ud, space.descriptions, n_user=X.shape[1], n_target=space.Zs.shape[2],
                                     threshold=self.threshold, use_embeddings=self.use_embeddings, fill=self.fill)
        info[space.name] = {"n_features": int(space.Zs.shape[2]), "matched": int(cmap.user_cols.size)}
        if cmap.user_cols.size == 0:
            return None
        mean, coef, r2 = fill_statistics(space.Zs, space.betas, cmap.target_cols)
        cov = np.broadcast_to((cmap.scores.sum() + (r2.sum(1) if self.fill == "linear" else 0.0))
                              / space.Zs.shape[2], (len(space.ids),))
        ok = np.flatnonzero(cov >= self.min_coverage)
        info[space.name]["coverage_max"] = float(cov.max())
        if ok.size == 0:
            return None
        index = self._projected_index(space, cmap.target_cols)
        ranking = score_single(index, self._user_spec(index, X[:, cmap.user_cols]), kernel="market",
                               candidates=[space.ids[i] for i in ok], shortlist=self.shortlist)
        if ranking is None or len(ranking.rows) == 0:
            return None
        info[space.name].update(ranking.view.info(), n_candidates=ranking.n_candidates)
        row_of = {lid: i for i, lid in enumerate(space.ids)}
        matches: dict[str, HeteroMatch] = {}
        singles = []
        for m in ranking.matches(None):  # bookkeeping per ranked learnware; fill statistics were batched above
            i = row_of[m.learnware_id]
            lw_map = replace(cmap, fill_mean=mean[i], fill_coef=coef[i], fill_r2=r2[i])
            matches[m.learnware_id] = HeteroMatch(m.learnware_id, space.name, lw_map, float(cov[i]), m.score, m.mmd2)
            singles.append(replace(m, score=combined_score(m.score, float(cov[i]))))
        mixtures = []
        if self.max_mixture >= 2 and len(ranking.rows) >= 2 and ranking.mmd2[0] > 0:
            mix = search_mixture_greedy(ranking, max_size=self.max_mixture, min_improvement=self.min_improvement)
            if mix is not None:
                w_cov = float(np.dot(mix.weights, [cov[row_of[i]] for i in mix.learnware_ids]))
                mixtures.append(replace(mix, score=combined_score(mix.score, w_cov)))
        return singles, mixtures, matches

    def _projected_index(self, space: _Space, cols: NDArray[np.int64]) -> SpecIndex:
        """The space's RKMEs marginalised on ``cols``, indexed once per column set (cached)."""
        key = tuple(int(c) for c in cols)
        if key not in space.indexes:
            specs = [_Projected(z, b) for z, b in zip(space.Zs[:, :, cols], space.betas)]
            space.indexes[key] = SpecIndex.build(space.ids, specs)
        return space.indexes[key]

    def _user_spec(self, index: SpecIndex, Xm: NDArray[np.float64]) -> Any:
        """User RKME fitted in the projected space's standardised units, returned in raw units."""
        from lwlib.spec.rkme import RKMETableSpec

        view = next(iter(index.groups.values())).view("market")
        spec = RKMETableSpec(reduced_set_size=self.user_reduced_set_size, gamma=view.gamma)
        spec.fit((Xm - view.shift) / view.scale)
        spec.z_ = spec.z_ * view.scale + view.shift
        return spec
