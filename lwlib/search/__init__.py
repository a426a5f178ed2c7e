"""Market search: semantic filters, batched single-learnware ranking, mixtures, and absolute scores."""

from lwlib.search.index import KernelView, SpecGroup, SpecIndex
from lwlib.search.labelled import LabelledSearcher
from lwlib.search.requirement import Requirement
from lwlib.search.mixture import mixture_weights, search_mixture_greedy, search_mixture_joint
from lwlib.search.result import MixtureMatch, SearchResult, SemanticMatch, SingleMatch
from lwlib.search.scores import absolute_scores, reference_scores
from lwlib.search.searcher import MarketSearcher, SearchEntry
from lwlib.search.semantic import SemanticSearcher
from lwlib.search.single import SingleRanking, rank_single, score_single

__all__ = [
    "KernelView", "SpecGroup", "SpecIndex",
    "LabelledSearcher", "Requirement",
    "mixture_weights", "search_mixture_greedy", "search_mixture_joint",
    "MixtureMatch", "SearchResult", "SemanticMatch", "SingleMatch",
    "absolute_scores", "reference_scores",
    "MarketSearcher", "SearchEntry",
    "SemanticSearcher",
    "SingleRanking", "rank_single", "score_single",
]
