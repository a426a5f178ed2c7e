"""The semantic stage of a search over a snapshot's record columns (numpy + rapidfuzz, no scikit-learn).

Same rules and scores as :class:`lwlib.search.semantic.SemanticSearcher` (tag filters with the reference's
semantics, exact then fuzzy name matching, the query description blended into the score), evaluated on the
catalog's flattened semantic columns instead of one pydantic object per learnware, so filtering 10⁵ learnwares
is a few vectorised passes. ``tests/lwlib/test_market.py`` checks it against ``SemanticSearcher``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from numpy.typing import NDArray

from lwlib.constants import FUZZY_MIN_SCORE
from lwlib.errors import SearchError
from lwlib.market._pure import pure_search_module

__all__ = ["semantic_matches", "as_query"]

CLASS_FIELDS = ("data_type", "task_type", "library_type", "license")
_REFERENCE_CAP = 50_000
_DESCRIPTION_WEIGHT = 0.3


def as_query(query: Any) -> Any:
    """A :class:`~lwlib.semantic.SemanticQuery` from a query object or a reference-format dict."""
    from lwlib.semantic import SemanticQuery

    if query is None:
        return SemanticQuery()
    if isinstance(query, SemanticQuery):
        return query
    if isinstance(query, Mapping):
        return SemanticQuery.from_reference(query)
    raise SearchError(f"A semantic query must be a SemanticQuery or a reference dict, got {type(query).__name__}.",
                      code="invalid_query")


def _text(col: NDArray[Any], has: NDArray[np.bool_]) -> list[str]:
    return ["" if (not h or v is None) else str(v) for v, h in zip(col.tolist(), has.tolist())]


def semantic_matches(query: Any, cols: Mapping[str, NDArray[Any]]) -> list[Any]:
    """The learnwares of ``cols`` matching ``query``, best first, as ``SemanticMatch`` (empty = none).

    Parameters
    ----------
    query : SemanticQuery or reference dict
    cols : mapping of column name → array
        Record columns of a :class:`~lwlib.market.snapshot.MarketSnapshot` (``id``, ``name``, ``description``,
        the class fields, ``scenarios``, ``has_semantic``).
    """
    from rapidfuzz import fuzz, process, utils

    SemanticMatch = pure_search_module("result").SemanticMatch
    q = as_query(query)
    ids = cols["id"]
    n_all = ids.shape[0]
    has = np.asarray(cols["has_semantic"], dtype=bool) if n_all else np.zeros(0, dtype=bool)
    keep = np.ones(n_all, dtype=bool)
    if q.learnware_id:
        low_id = q.learnware_id.lower()
        keep &= np.array([low_id in i.lower() for i in ids.tolist()], dtype=bool)
    active = [f for f in (*CLASS_FIELDS, "scenarios") if getattr(q, f)]
    if active:
        keep &= has
    for f in CLASS_FIELDS:
        allowed = getattr(q, f)
        if allowed:
            keep &= np.isin(np.asarray(cols[f], dtype=object), np.asarray(list(allowed), dtype=object))
    if q.scenarios:
        wanted = set(q.scenarios)
        keep &= np.array([bool(s is not None and wanted.intersection(s)) for s in cols["scenarios"].tolist()],
                         dtype=bool)
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        return []
    names = _text(cols["name"][rows], has[rows])
    descs = _text(cols["description"][rows], has[rows])
    n = rows.size
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
            fz = process.cdist([qname], names + descs, scorer=fuzz.partial_ratio, processor=utils.default_process,
                               workers=1)[0].reshape(2, n)
            best = fz.max(0)
            mask = best >= float(FUZZY_MIN_SCORE)
            score = best / 100.0
            matched = np.where(fz[0] >= fz[1], "fuzzy_name", "fuzzy_description").astype(object)
    qdesc = q.description.strip()
    if qdesc:
        texts = [f"{a} {b}" for a, b in zip(names, descs)]
        ds = process.cdist([qdesc], texts, scorer=fuzz.token_set_ratio, processor=utils.default_process,
                           workers=1)[0] / 100.0
        w = _DESCRIPTION_WEIGHT if qname else 1.0
        score = (1.0 - w) * score + w * ds
    order = [i for i in np.argsort(-score, kind="stable") if mask[i]]
    return [SemanticMatch(learnware_id=str(ids[rows[i]]), score=float(score[i]), matched_on=str(matched[i]))
            for i in order[:_REFERENCE_CAP]]
