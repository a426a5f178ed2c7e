"""The market searcher: semantic filter, then statistical single + mixture search on the survivors.

Compared with the reference ``EasySearcher`` (LEARNWARE_FORMAT.md §5): the same flow (semantic → statistical on the
survivors → one mixture from the best ``max_mixture²`` singles), but batched and cached, the comparison kernel is
the market's (``kernel="market"``; ``"reference"`` reproduces raw features + the query's γ), singles are capped at
``top_k``, mixture weights are returned, scores are absolute (``scoring="absolute"``) — and "no match" is an empty
:class:`SearchResult` with a message, never an exception.

Reference-style behaviour (``scoring="reference"``): every compatible learnware is scored exactly, scores are the
reference's relative normalisation over singles + mixture, singles are kept while their score is ≥ 0.6 (at least
one, still capped at ``top_k``), the mixture is dropped when ⌊100·score⌋ equals the best single's, and a lone
single below 0.6 is raised to 0.6. Combine with ``kernel="reference", mixture="greedy"`` for the full reference
semantics.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Sequence

import numpy as np

from lwlib._validation import check_array, check_is_fitted, validate_params
from lwlib.base import LwEstimator
from lwlib.constants import RKME_TABLE_TYPE
from lwlib.errors import SearchError
from lwlib.search.index import KERNEL_MODES, SpecIndex, spec_type_of
from lwlib.search.mixture import search_mixture_greedy, search_mixture_joint
from lwlib.search.requirement import Requirement
from lwlib.search.result import MixtureMatch, SearchResult, SingleMatch
from lwlib.search.scores import REFERENCE_MIN_SCORE, reference_scores
from lwlib.search.semantic import SemanticSearcher
from lwlib.search.single import SingleRanking, score_single

if TYPE_CHECKING:
    from lwlib.rkme.rkme import RKMETableSpec

logger = logging.getLogger(__name__)

__all__ = ["MarketSearcher", "SearchEntry"]


class SearchEntry(NamedTuple):
    """One learnware as the searcher sees it (plain 3-tuples are accepted too)."""

    learnware_id: str
    semantic_spec: Any  # SemanticSpec | reference dict | None
    stat_spec: Any  # fitted RKME | {type_name: spec} | None


def _pick_stat_spec(stat: Any) -> Any:
    """The comparable spec of a learnware: a fitted RKME, or the table/text RKME out of a ``{type: spec}`` dict."""
    if stat is None or hasattr(stat, "z_"):
        return stat
    if isinstance(stat, Mapping):
        for spec in stat.values():
            if getattr(spec, "z_", None) is not None:
                return spec
        return None
    raise SearchError(f"A learnware's statistical spec must be a fitted RKME or a dict of them, got "
                      f"{type(stat).__name__}.", code="invalid_input")


class MarketSearcher(LwEstimator):
    """Search the market for learnwares (and mixtures) matching a user's requirement.

    Parameters
    ----------
    top_k : int, default 10
        Singles returned.
    max_mixture : int, default 5
        Largest mixture (the candidate pool is the best ``max_mixture²`` singles); < 2 disables mixtures.
    mixture : {"greedy", "joint"}, default "greedy"
    kernel : {"market", "reference"}, default "market"
        Which comparison kernel ranks learnwares (see :mod:`lwlib.search.index`).
    semantic : SemanticSearcher or None
        None means ``SemanticSearcher()`` with reference defaults.
    scoring : {"absolute", "reference"}, default "absolute"
    min_improvement : float, default 0.95
        Greedy mixture acceptance ratio.
    shortlist : int, "auto" or None, default "auto"
        Sketch prefilter size for large markets (None = exact for all; forced off for reference scoring).

    Attributes
    ----------
    index_ : SpecIndex
    entries_ : list of (learnware_id, SemanticSpec | None)
    """

    _parameter_constraints = {
        "top_k": lambda v: isinstance(v, int) and v >= 1,
        "max_mixture": lambda v: isinstance(v, int) and 0 <= v <= 10,
        "mixture": {"greedy", "joint"},
        "kernel": set(KERNEL_MODES),
        "scoring": {"absolute", "reference"},
        "min_improvement": lambda v: isinstance(v, (int, float)) and 0 < v <= 1,
    }

    def __init__(self, top_k: int = 10, max_mixture: int = 5, mixture: str = "greedy", kernel: str = "market",
                 semantic: SemanticSearcher | None = None, scoring: str = "absolute",
                 min_improvement: float = 0.95, shortlist: int | str | None = "auto") -> None:
        self.top_k = top_k
        self.max_mixture = max_mixture
        self.mixture = mixture
        self.kernel = kernel
        self.semantic = semantic
        self.scoring = scoring
        self.min_improvement = min_improvement
        self.shortlist = shortlist

    def fit(self, entries: Sequence[SearchEntry | tuple[str, Any, Any]]) -> MarketSearcher:
        """Index the market: keep semantic specs, stack the statistical specs per feature space."""
        validate_params(self)
        listed = [SearchEntry(*e) for e in entries]
        self.entries_ = [(str(e.learnware_id), e.semantic_spec) for e in listed]
        stats = [(str(e.learnware_id), _pick_stat_spec(e.stat_spec)) for e in listed]
        stats = [(i, s) for i, s in stats if s is not None]
        self.index_ = SpecIndex.build([i for i, _ in stats], [s for _, s in stats])
        logger.info("market searcher fitted on %d learnwares (%d with a statistical spec, %d feature spaces)",
                    len(listed), len(stats), len(self.index_.groups))
        return self

    def _user_spec_from_data(self, user_X: Any) -> RKMETableSpec:
        """Fit the user's RKME on the user side; in market mode fit it in the market's standardised space."""
        from lwlib.rkme.rkme import RKMETableSpec

        X = check_array(user_X, name="user_X")
        group = self.index_.groups.get((RKME_TABLE_TYPE, X.shape[1]))
        if self.kernel != "market" or group is None:
            return RKMETableSpec().fit(X)
        view = group.view("market")
        spec = RKMETableSpec(gamma=view.gamma).fit(view.standardise(X))
        spec.z_ = view.unstandardise(spec.z_)  # back to raw units: the index standardises every query
        return spec

    def search(self, query: Any = None, user_spec: Any = None, user_X: Any = None) -> SearchResult:
        """Find learnwares for a semantic query and/or a user RKME (or raw user data, summarised locally).

        Parameters
        ----------
        query : Requirement, SemanticQuery, reference dict or None
            A :class:`~lwlib.search.requirement.Requirement` carries everything (its labels are ignored here:
            :class:`~lwlib.search.labelled.LabelledSearcher` uses them); the other forms are the legacy call.
        user_spec : fitted RKMETableSpec, optional
        user_X : array-like of shape (n_samples, n_features), optional
            Used only when ``user_spec`` is None: the RKME is generated here, the data go no further.

        Returns
        -------
        SearchResult
            Empty with an explanatory ``message`` when nothing matches.
        """
        check_is_fitted(self, "index_")
        if isinstance(query, Requirement):
            query, user_spec, user_X = query.semantic, query.rkme, query.X
        semantic = self.semantic if self.semantic is not None else SemanticSearcher()
        sem = tuple(semantic.search(query, self.entries_)) if query is not None else ()
        if query is not None and not sem:
            return SearchResult(message="No learnware matches the semantic query; relax the tag filters or the "
                                        "name.")
        if user_spec is None and user_X is not None:
            user_spec = self._user_spec_from_data(user_X)
        if user_spec is None:
            msg = f"{len(sem)} learnwares match semantically; give user data or an RKME for statistical ranking." \
                if sem else "Nothing to search: give a semantic query, a user RKME or user data."
            return SearchResult(semantic=sem, message=msg)
        candidates = [m.learnware_id for m in sem] if query is not None else None
        exact = self.scoring == "reference"
        ranking = score_single(self.index_, user_spec, kernel=self.kernel, candidates=candidates,
                               shortlist=None if exact else self.shortlist)
        if ranking is None or len(ranking.rows) == 0:
            d = int(np.asarray(user_spec.z_).shape[1])
            where = "among the semantic matches" if candidates is not None else "in the market"
            return SearchResult(semantic=sem, message=f"No learnware with a {spec_type_of(user_spec)} of {d} "
                                f"features {where}; only specs of the same type and dimension can be compared.")
        mixture = self._mixture(ranking)
        singles = ranking.matches(self.top_k)
        mixtures: tuple[MixtureMatch, ...] = () if mixture is None else (mixture,)
        if self.scoring == "reference":
            singles, mixtures = self._reference_scoring(ranking, mixtures)
        kernel = {**ranking.view.info(), "spec_type": ranking.group.spec_type,
                  "n_features": ranking.group.n_features, "scoring": self.scoring}
        msg = (f"{len(singles)} single learnware(s) and {len(mixtures)} mixture(s) from {ranking.n_candidates} "
               f"compatible learnware(s).")
        return SearchResult(singles=tuple(singles), mixtures=mixtures, semantic=sem, kernel=kernel, message=msg)

    def _mixture(self, ranking: SingleRanking) -> MixtureMatch | None:
        if self.max_mixture < 2 or len(ranking.rows) < 2 or not ranking.mmd2[0] > 0:
            return None
        if self.mixture == "joint":
            return search_mixture_joint(ranking, max_size=self.max_mixture)
        return search_mixture_greedy(ranking, max_size=self.max_mixture, min_improvement=self.min_improvement)

    def _reference_scoring(self, ranking: SingleRanking, mixtures: tuple[MixtureMatch, ...]
                           ) -> tuple[list[SingleMatch], tuple[MixtureMatch, ...]]:
        """Reference relative scores (§5.2 steps 7–9) over all ranked singles plus the mixture."""
        D = np.concatenate([ranking.mmd2, [m.mmd2 for m in mixtures]])
        s = reference_scores(D)
        s_single, s_mix = s[:len(ranking.rows)], s[len(ranking.rows):]
        if mixtures and int(100 * s_mix[0]) == int(100 * s_single[0]):
            mixtures, s_mix = (), s_mix[:0]
        n_keep = max(1, int((s_single >= REFERENCE_MIN_SCORE).sum()))
        n_keep = min(n_keep, int(self.top_k))
        s_single = s_single[:n_keep].copy()
        if n_keep == 1 and s_single[0] < REFERENCE_MIN_SCORE:
            ratio = REFERENCE_MIN_SCORE / max(float(s_single[0]), 1e-12)
            s_single[0] = REFERENCE_MIN_SCORE
            s_mix = np.minimum(s_mix * ratio, 1.0)
        singles = [replace(m, score=float(s_single[i])) for i, m in enumerate(ranking.matches(n_keep))]
        mixtures = tuple(replace(m, score=float(s_mix[i])) for i, m in enumerate(mixtures))
        return singles, mixtures
