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
   market kernel of that projected space. Spaces are merged by :func:`combined_score` (``1 − (1 − score) / coverage``).
"""


from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array, check_is_fitted, validate_params
from lwlib.base import LwEstimator
from lwlib.constants import RKME_TABLE_TYPE
from lwlib.search.columns import (FILLS, ColumnMap, align_by_descriptions, description_similarity,
                                  fill_statistics, input_descriptions)
from lwlib.search.index import SpecIndex
from lwlib.search.mixture import search_mixture_greedy
from lwlib.search.result import MixtureMatch, SearchResult, SingleMatch
from lwlib.search.searcher import SearchEntry, _pick_stat_spec
from lwlib.search.single import score_single
from lwlib.rkme.kernels import stack_specs

if TYPE_CHECKING:
    from lwlib.rkme.rkme import RKMETableSpec

logger = logging.getLogger(__name__)

__all__ = ["ColumnMap", "align_by_descriptions", "description_similarity", "input_descriptions",
           "HeteroSearcher", "HeteroSearchResult", "HeteroMatch", "combined_score",
           "fill_statistics"]



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
        "fill": set(FILLS),
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
        for i, ((d, desc_items), members) in enumerate(buckets.items()):
            Zs, betas = stack_specs([s for _, s in members])
            self.spaces_.append(_Space(name=f"space{i}-d{d}", descriptions=dict(desc_items), ids=[m for m, _ in members],
                                       Zs=Zs, betas=betas))
        logger.info("hetero searcher fitted: %d learnwares in %d feature spaces",
                    sum(len(s.ids) for s in self.spaces_), len(self.spaces_))
        return self

    def search(self, user_X: Any, user_descriptions: Mapping[int, str] | None = None) -> HeteroSearchResult:
        """Search every space the user's described columns can be mapped into.

        ``user_X`` may be a :class:`~lwlib.search.requirement.Requirement` (its ``X`` and its ``descriptions``, or
        the semantic query's Input descriptions), the searcher contract; or the user rows, the legacy call.

        Returns
        -------
        HeteroSearchResult
            Empty with a ``message`` when no space has a usable column match (e.g. no descriptions: use
            :class:`lwlib.reuse.FeatureAlignReuser`, which needs none, or :class:`MarketSearcher` for same-space
            data).
        """
        check_is_fitted(self, "spaces_")
        from lwlib.search.requirement import Requirement

        if isinstance(user_X, Requirement):
            req = user_X
            user_descriptions = req.descriptions if req.descriptions is not None else input_descriptions(req.semantic)
            user_X = req.X
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

    def _user_spec(self, index: SpecIndex, Xm: NDArray[np.float64]) -> RKMETableSpec:
        """User RKME fitted in the projected space's standardised units, returned in raw units."""
        from lwlib.rkme.rkme import RKMETableSpec

        view = next(iter(index.groups.values())).view("market")
        spec = RKMETableSpec(reduced_set_size=self.user_reduced_set_size, gamma=view.gamma)
        spec.fit(view.standardise(Xm))
        spec.z_ = view.unstandardise(spec.z_)
        return spec
