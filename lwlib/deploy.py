"""Deploying stage engine: load the market, search it, reuse what fits, describe the solution for the registry.

The flow in ``flows/deploy.py`` wires these functions as tasks (semantic_search → stat_search → reuse → deploy).
Learnwares are always called through their isolated runtimes (:class:`RuntimeLearnware`); only the dock's own
fitted parts (a router, a linear head) run in-process.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array
from lwlib.errors import ReuseError
from lwlib.search import MarketSearcher, SearchResult
from lwlib.search.searcher import SearchEntry
from lwlib.search.hetero import input_descriptions
from lwlib.search.semantic import SemanticSearcher
from lwlib.status import Status

__all__ = ["ReuserKind", "RuntimeLearnware", "ReuseOutcome", "market_entries", "semantic_filter", "stat_search",
           "choose_reuser", "reuse_learnwares", "infer_task"]

logger = logging.getLogger(__name__)

ReuserKind = Literal["auto", "top1", "job_selector", "averaging", "ensemble_pruning", "feature_augment"]
MIN_LABELS_FOR_LEARNING = 10
COLUMN_MAPS_PART = "column_maps"  # solution part: learnware id → ColumnMap (user space → its space)


class RuntimeLearnware:
    """A catalogued learnware reachable through its isolated runtime: what reusers call (``id``, ``predict``, ``spec``)."""

    def __init__(self, id: str, model: Any, spec: Any) -> None:
        self.id, self.model, self.spec = id, model, spec

    def predict(self, X: Any) -> NDArray[Any]:
        return self.model.predict(np.asarray(X, dtype=np.float64))


@dataclass(frozen=True)
class ReuseOutcome:
    """The fitted solution: which reuser, over which learnwares with which weights, and its predictions."""

    kind: str
    learnware_ids: tuple[str, ...]
    weights: tuple[float, ...]
    predictions: NDArray[Any]
    solution: dict[str, Any]
    parts: dict[str, Any] = field(default_factory=dict)
    message: str = ""


def market_entries(dock: Any, *, status: Status = Status.USABLE) -> list[SearchEntry]:
    """Everything search needs, from the catalog in two queries: ids, semantic specs and fitted RKMEs."""
    if not dock.settings.catalog_path.exists():
        return []
    with dock.catalog() as cat:
        records = {r.id: r for r in cat.list(status=status)}
        payloads = cat.load_spec_payloads(ids=list(records)) if records else []
    specs: dict[str, dict[str, Any]] = {}
    for p in payloads:
        specs.setdefault(p.learnware_id, {})[p.spec_type] = p.to_spec()
    return [SearchEntry(i, r.semantic_spec(), specs.get(i)) for i, r in records.items()]


def semantic_filter(entries: Sequence[SearchEntry], query: Any) -> tuple[list[SearchEntry], dict[str, float]]:
    """Keep the entries whose semantic spec matches ``query`` (tags, exact/fuzzy name and description)."""
    if query is None:
        return list(entries), {}
    matches = SemanticSearcher().search(query, [(e.learnware_id, e.semantic_spec) for e in entries])
    scores = {m.learnware_id: m.score for m in matches}
    return [e for e in entries if e.learnware_id in scores], scores


def stat_search(entries: Sequence[SearchEntry], X: Any, *, top_k: int = 10, max_mixture: int = 5,
                query: Any = None) -> SearchResult:
    """Rank single learnwares and find the best mixture for the user's data (summarised locally as an RKME).

    When no learnware shares the user's feature space and the requirement describes its input columns
    (semantic Input descriptions), the search moves across feature spaces: user columns are aligned to each
    space by their descriptions (:class:`~lwlib.search.hetero.HeteroSearcher`) and reuse goes through that map.
    """
    if not entries:
        return SearchResult((), (), (), {}, "no learnware in the market matches the semantic requirement")
    Xc = check_array(X, name="user data")
    result = MarketSearcher(top_k=top_k, max_mixture=max_mixture).fit(list(entries)).search(None, user_X=Xc)
    descriptions = input_descriptions(query)
    if result.singles or not descriptions:
        return result
    from lwlib.search.hetero import HeteroSearcher

    logger.info("no learnware in the user's %d-feature space; aligning columns by their descriptions",
                Xc.shape[1])
    return HeteroSearcher(top_k=top_k, max_mixture=max_mixture).fit(list(entries)).search(Xc, descriptions)


def infer_task(entries: Sequence[SearchEntry], ids: Sequence[str]) -> str:
    """classification or regression, from the chosen learnwares' semantic Task (they must agree)."""
    by_id = {e.learnware_id: e for e in entries}
    tasks = {getattr(by_id[i].semantic_spec, "task_type", None) for i in ids if i in by_id}
    if tasks == {"Regression"}:
        return "regression"
    if tasks <= {"Classification", None}:
        return "classification"
    raise ReuseError(f"the selected learnwares mix tasks {sorted(map(str, tasks))}; restrict the search with a "
                     "semantic Task", code="mixed_tasks")


def choose_reuser(kind: ReuserKind, result: SearchResult, *, n_labels: int = 0) -> tuple[str, list[str], list[float]]:
    """Pick the reuser and its learnwares.

    ``auto`` with ≥10 labels: ensemble pruning over the top singles (feature augment when fewer than 3 candidates).
    ``auto`` without labels: a uniform average over the best mixture's learnwares when search found one, else the
    top-1 learnware. On the full benchmark (benchmarks/results/quality_full.md) the mixture average beat top-1 in
    3 of 4 scenarios (tabular 2.34 vs 2.61 MSE, Fashion-MNIST 0.367 vs 0.421 error, hetero 1.90 vs 2.25; text
    0.425 vs 0.412 was the exception) and the job selector beat neither, so it is only used when asked for.
    An explicit ``averaging`` uses the mixture weights."""
    singles = [m.learnware_id for m in result.singles]
    mixture = result.mixtures[0] if result.mixtures else None
    if kind == "auto":
        if n_labels >= MIN_LABELS_FOR_LEARNING:
            kind = "ensemble_pruning" if len(singles) >= 3 else "feature_augment"
        elif mixture is not None and len(mixture.learnware_ids) > 1:
            ids = list(mixture.learnware_ids)
            return "averaging", ids, [1.0 / len(ids)] * len(ids)
        else:
            kind = "top1"
    if kind == "top1":
        return kind, singles[:1], [1.0]
    if kind in ("job_selector", "averaging") and mixture is not None:
        return kind, list(mixture.learnware_ids), [float(w) for w in mixture.weights]
    ids = singles[:5]
    return kind, ids, [1.0 / max(len(ids), 1)] * len(ids)


def _make_reuser(kind: str, members: list[RuntimeLearnware], weights: list[float], task: str) -> Any:
    from lwlib.reuse import (AveragingReuser, EnsemblePruningReuser, FeatureAugmentReuser, JobSelectorReuser)

    if kind in ("top1", "averaging"):
        return AveragingReuser(members, task=task, weights=weights if kind == "averaging" else None)
    if kind == "job_selector":
        return JobSelectorReuser(members, task=task)
    if kind == "ensemble_pruning":
        return EnsemblePruningReuser(members, task=task)
    if kind == "feature_augment":
        return FeatureAugmentReuser(members, task=task)
    raise ReuseError(f"unknown reuser '{kind}'; choose one of auto, top1, job_selector, averaging, "
                     "ensemble_pruning, feature_augment", code="unknown_reuser")


def reuse_learnwares(dock: Any, entries: Sequence[SearchEntry], result: SearchResult, X: Any, *,
                     kind: ReuserKind = "auto", X_label: Any = None, y_label: Any = None) -> ReuseOutcome | None:
    """Fit the chosen reuser over the learnwares' isolated runtimes and predict the user's rows.

    Returns None (with nothing started) when the search found nothing to reuse.
    """
    n_labels = 0 if y_label is None else int(np.asarray(y_label).shape[0])
    if not result.singles:
        return None
    kind_, ids, weights = choose_reuser(kind, result, n_labels=n_labels)
    if kind_ in ("ensemble_pruning", "feature_augment") and n_labels == 0:
        raise ReuseError(f"the {kind_} reuser learns from labelled data; pass --labels (X_label, y_label) or "
                         "choose top1 / job_selector / averaging", code="labels_required")
    task = infer_task(entries, ids)
    specs = {e.learnware_id: next(iter(e.stat_spec.values()), None) if e.stat_spec else None for e in entries}
    Xc = check_array(X, name="user data")
    with ExitStack() as stack:
        members: list[Any] = []
        maps = getattr(result, "matches", {})  # cross-feature-space search: reuse through each column map
        for lid in ids:
            model = stack.enter_context(dock.open_model(dock.load(lid)))
            member: Any = RuntimeLearnware(lid, model, specs.get(lid))
            if lid in maps:
                from lwlib.reuse.hetero import HeteroLearnware

                member = HeteroLearnware(member, maps[lid].column_map, user_X=Xc)
            members.append(member)
        reuser = _make_reuser(kind_, members, weights, task)
        if kind_ in ("ensemble_pruning", "feature_augment"):
            reuser.fit(check_array(X_label, name="labelled data"), np.asarray(y_label))
        else:
            reuser.fit(Xc)
        predictions = reuser.predict(Xc)
        solution, parts = reuser.to_solution(), reuser.parts()
        if maps:  # a deployed solution must map user rows the same way: our own fitted maps travel as parts
            parts[COLUMN_MAPS_PART] = {lid: maps[lid].column_map for lid in ids if lid in maps}
    logger.info("reused %d learnwares with %s (%s)", len(ids), kind_, task)
    return ReuseOutcome(kind_, tuple(ids), tuple(weights), np.asarray(predictions), solution, parts,
                        f"{kind_} over {len(ids)} learnware(s)")
