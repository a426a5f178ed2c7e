"""Semantic search: tag filters with the reference's semantics, then exact or fuzzy text matching with a score.

Filters (LEARNWARE_FORMAT.md §2.2): for every non-empty query field, a Class field (data, task, library, license)
passes when the learnware's value is one of the query's allowed values, the Tag field (scenarios) when the two
lists intersect; a learnware with an empty value for a filtered field fails. ``learnware_id`` is a substring filter.

Text: when the query has a name, learnwares whose name or description contains it (case-insensitive) are the
exact hits; if there are none, ``partial_ratio`` against every name and description is computed in one vectorised
``rapidfuzz.process.cdist`` call and learnwares scoring ≥ ``min_fuzzy_score`` are kept (the reference's rule).
Unlike the reference, the query description is used too: its ``token_set_ratio`` against each learnware's name +
description is blended into the score (it ranks, it does not filter), and every hit gets a score in [0, 1].
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence, overload

import numpy as np
from rapidfuzz import fuzz, process, utils

from lwlib._validation import check_is_fitted
from lwlib.base import LwEstimator
from lwlib.constants import FUZZY_MIN_SCORE
from lwlib.errors import SearchError
from lwlib.search.result import SearchResult, SemanticMatch
from lwlib.semantic import SemanticQuery, SemanticSpec

logger = logging.getLogger(__name__)

__all__ = ["SemanticSearcher", "CLASS_FIELDS", "TAG_FIELDS"]

CLASS_FIELDS = ("data_type", "task_type", "library_type", "license")
TAG_FIELDS = ("scenarios",)
_REFERENCE_CAP = 50_000  # the reference's cap on fuzzy hits


def _as_query(query: Any) -> SemanticQuery:
    if query is None:
        return SemanticQuery()
    if isinstance(query, SemanticQuery):
        return query
    if isinstance(query, Mapping):
        return SemanticQuery.from_reference(query)
    raise SearchError(f"A semantic query must be a SemanticQuery or a reference dict, got {type(query).__name__}.",
                      code="invalid_query")


def _as_spec(spec: Any) -> SemanticSpec | None:
    if spec is None or isinstance(spec, SemanticSpec):
        return spec
    if isinstance(spec, Mapping):
        return SemanticSpec.from_reference(spec)
    raise SearchError(f"A semantic specification must be a SemanticSpec or a reference dict, got "
                      f"{type(spec).__name__}.", code="invalid_input")


def _passes_filters(q: SemanticQuery, spec: SemanticSpec | None) -> bool:
    active = [f for f in CLASS_FIELDS + TAG_FIELDS if getattr(q, f)]
    if not active:
        return True
    if spec is None:
        return False
    for f in CLASS_FIELDS:
        allowed = getattr(q, f)
        if allowed and (not getattr(spec, f) or getattr(spec, f) not in allowed):
            return False
    for f in TAG_FIELDS:
        allowed = getattr(q, f)
        if allowed and not set(allowed) & set(getattr(spec, f) or ()):
            return False
    return True


class SemanticSearcher(LwEstimator):
    """Filter and score learnwares by their semantic specifications.

    Parameters
    ----------
    min_fuzzy_score : float, default 75.0
        Minimum ``partial_ratio`` (0–100) for a fuzzy name hit, the reference's threshold.
    top_k : int or None, default None
        Cap on returned hits (None = the reference's 50 000).
    description_weight : float, default 0.3
        Share of the score taken from the query description's token-set ratio when both name and description
        are given.

    Examples
    --------
    >>> from lwlib.semantic import make_semantic_spec
    >>> s = make_semantic_spec(name="Iris flowers", description="Classifies iris species", input_dimension=4,
    ...                        output_dimension=3)
    >>> [m.learnware_id for m in SemanticSearcher().search(SemanticQuery(name="iris flwer"), [("a", s)])]
    ['a']
    """

    def __init__(self, min_fuzzy_score: float = FUZZY_MIN_SCORE, top_k: int | None = None,
                 description_weight: float = 0.3) -> None:
        self.min_fuzzy_score = min_fuzzy_score
        self.top_k = top_k
        self.description_weight = description_weight

    def fit(self, entries: Sequence[Any]) -> SemanticSearcher:
        """Keep the market's (learnware_id, semantic spec) pairs (the searcher contract: ``fit(entries) -> self``).

        Entries may be :class:`~lwlib.search.searcher.SearchEntry` values or plain tuples whose first two items
        are the id and the semantic spec.
        """
        self.entries_ = [(str(e[0]), _as_spec(e[1])) for e in entries]
        return self

    @overload
    def search(self, query: Any = None, entries: None = None) -> SearchResult: ...

    @overload
    def search(self, query: Any, entries: Sequence[tuple[str, SemanticSpec | Mapping[str, Any] | None]]
               ) -> list[SemanticMatch]: ...

    def search(self, query: Any = None,
               entries: Sequence[tuple[str, SemanticSpec | Mapping[str, Any] | None]] | None = None
               ) -> SearchResult | list[SemanticMatch]:
        """Return the learnwares matching ``query``, best first, with scores in [0, 1].

        Parameters
        ----------
        query : Requirement, SemanticQuery, reference dict or None (None = match everything)
        entries : sequence of (learnware_id, SemanticSpec or reference dict or None), optional
            Legacy call: search these entries and return a plain list. Without it the fitted entries are
            searched and a :class:`~lwlib.search.result.SearchResult` is returned (the searcher contract).

        Returns
        -------
        list of SemanticMatch (legacy call) or SearchResult
            Empty when nothing matches (never raises for "no match").
        """
        from lwlib.search.requirement import Requirement

        if isinstance(query, Requirement):
            query = query.semantic
        if entries is None:
            check_is_fitted(self, "entries_")
            hits = tuple(self._match(query, self.entries_))
            return SearchResult(semantic=hits, message=f"{len(hits)} learnware(s) match semantically." if hits else
                                "No learnware matches the semantic query; relax the tag filters or the name.")
        return self._match(query, entries)

    def _match(self, query: Any, entries: Sequence[tuple[str, Any]]) -> list[SemanticMatch]:
        q = _as_query(query)
        ids = [str(e[0]) for e in entries]
        specs = [_as_spec(e[1]) for e in entries]
        keep = [i for i in range(len(ids)) if (not q.learnware_id or q.learnware_id.lower() in ids[i].lower())
                and _passes_filters(q, specs[i])]
        if not keep:
            return []
        kept = [specs[i] for i in keep]
        names = [s.name if s is not None else "" for s in kept]
        descs = [s.description if s is not None else "" for s in kept]
        n = len(keep)
        score = np.ones(n)
        matched = np.array(["id" if q.learnware_id else "filter"] * n, dtype=object)
        mask = np.ones(n, dtype=bool)
        qname = q.name.strip()
        if qname:
            low = qname.lower()
            in_name = np.array([low in s.lower() for s in names])
            in_desc = np.array([low in s.lower() for s in descs])
            if (in_name | in_desc).any():
                mask = in_name | in_desc
                matched = np.where(in_name, "name", "description").astype(object)
            else:
                fz = process.cdist([qname], names + descs, scorer=fuzz.partial_ratio,
                                   processor=utils.default_process, workers=1)[0].reshape(2, n)
                best = fz.max(0)
                mask = best >= float(self.min_fuzzy_score)
                score = best / 100.0
                matched = np.where(fz[0] >= fz[1], "fuzzy_name", "fuzzy_description").astype(object)
        qdesc = q.description.strip()
        if qdesc:
            texts = [f"{a} {b}" for a, b in zip(names, descs)]
            ds = process.cdist([qdesc], texts, scorer=fuzz.token_set_ratio, processor=utils.default_process,
                               workers=1)[0] / 100.0
            w = float(self.description_weight) if qname else 1.0
            score = (1.0 - w) * score + w * ds
        order = [i for i in np.argsort(-score, kind="stable") if mask[i]]
        cap = _REFERENCE_CAP if self.top_k is None else int(self.top_k)
        out = [SemanticMatch(learnware_id=ids[keep[i]], score=float(score[i]), matched_on=str(matched[i]))
               for i in order[:cap]]
        logger.debug("semantic search: %d of %d learnwares match", len(out), len(entries))
        return out
