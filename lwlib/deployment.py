"""The deploying stage as typed steps: find (semantic + statistical search) → reuse → deploy.

One :class:`Market` per deployment: the catalog is read once, read-only, and every later step (search, opening
runtimes, registering the solution) works from that snapshot, with no per-learnware catalog re-read. The CLI's
``lwdock search`` and the flow's search steps share :func:`find`. Learnwares are always called through their
isolated runtimes (:class:`RuntimeLearnware`); only the dock's own fitted parts (a router, a linear head) run
in-process.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array
from lwlib.errors import ReuseError
from lwlib.search import MarketSearcher, SearchResult
from lwlib.search.requirement import Requirement
from lwlib.search.searcher import SearchEntry
from lwlib.status import Status

if TYPE_CHECKING:
    from lwlib.catalog import LearnwareRecord
    from lwlib.dock import Dock
    from lwlib.submission import RegistryRef

__all__ = ["Market", "CatalogMarket", "load_market", "semantic_filter", "find", "result_rows", "RuntimeLearnware",
           "ReuseOutcome", "choose_reuser", "reuse", "deploy", "infer_task", "COLUMN_MAPS_PART"]

logger = logging.getLogger(__name__)

MIN_LABELS_FOR_LEARNING = 10
COLUMN_MAPS_PART = "column_maps"  # solution part: learnware id → ColumnMap (user space → its space)


class Market(Protocol):
    """What the deploying stage reads from the market: search entries and the catalog rows behind them."""

    @property
    def entries(self) -> Sequence[SearchEntry]: ...

    @property
    def records(self) -> Mapping[str, LearnwareRecord]: ...


@dataclass(frozen=True)
class CatalogMarket:
    """A read-only snapshot of the USABLE market, read from the catalog in one read-only open."""

    entries: tuple[SearchEntry, ...] = ()
    records: Mapping[str, LearnwareRecord] = field(default_factory=dict)


def load_market(dock: Dock, *, status: Status = Status.USABLE) -> CatalogMarket:
    """Everything search and reuse need, from the catalog in two queries: rows, semantic specs and fitted RKMEs."""
    if not dock.settings.catalog_path.exists():
        return CatalogMarket()
    with dock.catalog(read_only=True) as cat:
        records = {r.id: r for r in cat.list(status=status)}
        payloads = cat.load_spec_payloads(ids=list(records)) if records else []
    specs: dict[str, dict[str, Any]] = {}
    for p in payloads:
        specs.setdefault(p.learnware_id, {})[p.spec_type] = p.to_spec()
    entries = tuple(SearchEntry(i, r.semantic_spec(), specs.get(i)) for i, r in records.items())
    return CatalogMarket(entries, records)


def semantic_filter(entries: Sequence[SearchEntry], query: Any) -> tuple[list[SearchEntry], dict[str, float]]:
    """Keep the entries whose semantic spec matches ``query`` (tags, exact/fuzzy name and description)."""
    if query is None:
        return list(entries), {}
    from lwlib.search.semantic import SemanticSearcher

    matches = SemanticSearcher().search(query, [(e.learnware_id, e.semantic_spec) for e in entries])
    scores = {m.learnware_id: m.score for m in matches}
    return [e for e in entries if e.learnware_id in scores], scores


def find(entries: Sequence[SearchEntry], requirement: Requirement, *, top_k: int = 10,
         max_mixture: int = 5) -> SearchResult:
    """Rank single learnwares and find the best mixture for the user's data (summarised locally as an RKME).

    ``entries`` are the semantic survivors. When no learnware shares the user's feature space and the
    requirement describes its input columns (semantic Input descriptions), the search moves across feature
    spaces: user columns are aligned to each space by their descriptions and reuse goes through that map.
    """
    if not entries:
        return SearchResult(message="no learnware in the market matches the semantic requirement")
    if requirement.X is None:
        return SearchResult(message="give your data (or an RKME) to rank the learnwares statistically")
    result = MarketSearcher(top_k=top_k, max_mixture=max_mixture).fit(list(entries)).search(
        Requirement(X=requirement.X, rkme=requirement.rkme))
    from lwlib.search.hetero import input_descriptions

    descriptions = requirement.descriptions or input_descriptions(requirement.semantic)
    if result.singles or not descriptions:
        return result
    from lwlib.search.hetero import HeteroSearcher

    logger.info("no learnware in the user's %d-feature space; aligning columns by their descriptions",
                requirement.X.shape[1])
    return HeteroSearcher(top_k=top_k, max_mixture=max_mixture).fit(list(entries)).search(requirement.X,
                                                                                         descriptions)


def result_rows(result: SearchResult, records: Mapping[str, LearnwareRecord]) -> list[dict[str, Any]]:
    """The one rendering of a search result as rows (names first, ids beside): CLI, artifacts and MLflow use it."""
    def name(lid: str) -> str:
        rec = records.get(lid)
        return rec.name if rec is not None else lid[:12]

    rows: list[dict[str, Any]] = [
        {"rank": m.rank + 1, "name": name(m.learnware_id), "id": m.learnware_id[:12], "score": round(m.score, 4),
         "mmd2": round(m.mmd2, 6), "weights": ""} for m in result.singles]
    rows += [{"rank": "mixture", "name": " + ".join(name(i) for i in m.learnware_ids),
              "id": " + ".join(i[:8] for i in m.learnware_ids), "score": round(m.score, 4),
              "mmd2": round(m.mmd2, 6), "weights": ", ".join(f"{w:.2f}" for w in m.weights)} for m in result.mixtures]
    return rows


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


class RuntimeLearnware:
    """A catalogued learnware reachable through its isolated runtime: what reusers call (``id``, ``predict``, ``spec``)."""

    def __init__(self, id: str, model: Any, spec: Any) -> None:
        self.id, self.model, self.spec = id, model, spec

    def predict(self, X: Any) -> NDArray[Any]:
        return np.asarray(self.model.predict(np.asarray(X, dtype=np.float64)))


@dataclass(frozen=True)
class ReuseOutcome:
    """The fitted solution: which reuser, over which learnwares with which weights, and its predictions.

    ``weights`` are the numbers the solution applies (the CLI shows and MLflow records exactly these).
    """

    kind: str
    learnware_ids: tuple[str, ...]
    weights: tuple[float, ...]
    predictions: NDArray[Any]
    solution: dict[str, Any]
    parts: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def choose_reuser(kind: str, result: SearchResult, *, n_labels: int = 0) -> tuple[str, list[str], list[float]]:
    """Pick the reuser and its learnwares (``auto``: see :mod:`lwlib.reuse`)."""
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


def _make_reuser(kind: str, members: list[Any], weights: list[float], task: str) -> Any:
    from lwlib.reuse import AveragingReuser, EnsemblePruningReuser, FeatureAugmentReuser, JobSelectorReuser

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


def reuse(dock: Dock, market: Market, result: SearchResult, requirement: Requirement, *,
          kind: str = "auto") -> ReuseOutcome | None:
    """Fit the chosen reuser over the learnwares' isolated runtimes and predict the user's rows.

    Returns None (with nothing started) when the search found nothing to reuse.
    """
    if not result.singles or requirement.X is None:
        return None
    kind_, ids, weights = choose_reuser(kind, result, n_labels=requirement.n_labels)
    if kind_ in ("ensemble_pruning", "feature_augment") and requirement.n_labels == 0:
        raise ReuseError(f"the {kind_} reuser learns from labelled data; pass --labels (X_label, y_label) or "
                         "choose top1 / job_selector / averaging", code="labels_required")
    task = infer_task(market.entries, ids)
    specs = {e.learnware_id: _table_spec(e.stat_spec) for e in market.entries}
    X = requirement.X
    with ExitStack() as stack:
        members: list[Any] = []
        maps = getattr(result, "matches", {})  # cross-feature-space search: reuse through each column map
        for lid in ids:
            model = stack.enter_context(dock.open_model(dock.open_learnware(market.records[lid])))
            member: Any = RuntimeLearnware(lid, model, specs.get(lid))
            if lid in maps:
                from lwlib.reuse.hetero import HeteroLearnware

                member = HeteroLearnware(member, maps[lid].column_map, user_X=X)
            members.append(member)
        reuser = _make_reuser(kind_, members, weights, task)
        if kind_ in ("ensemble_pruning", "feature_augment"):
            reuser.fit(check_array(requirement.X_labels, name="labelled data"), np.asarray(requirement.y_labels))
        else:
            reuser.fit(X)
        predictions = reuser.predict(X)
        solution, parts = reuser.to_solution(), reuser.parts()
        if maps:  # a deployed solution must map user rows the same way: our own fitted maps travel as parts
            parts[COLUMN_MAPS_PART] = {lid: maps[lid].column_map for lid in ids if lid in maps}
    applied = tuple(float(w) for w in solution.get("weights", weights))
    logger.info("reused %d learnwares with %s (%s)", len(ids), kind_, task)
    return ReuseOutcome(kind_, tuple(ids), applied, np.asarray(predictions), solution, parts,
                        f"{kind_} over {len(ids)} learnware(s)")


def _table_spec(stat: Any) -> Any:
    """The table/text RKME of a learnware's specs (not its label-aware part)."""
    if not stat:
        return None
    from lwlib.constants import RKME_TABLE_TYPE, RKME_TEXT_TYPE

    for key in (RKME_TABLE_TYPE, RKME_TEXT_TYPE):
        if key in stat:
            return stat[key]
    return next(iter(stat.values()), None)


def deploy(dock: Dock, market: Market, outcome: ReuseOutcome, name: str, search_log: Mapping[str, Any]
           ) -> RegistryRef:
    """Register the solution (its learnwares' zips, recipe and our fitted parts) in one MLflow run that also
    records the search: params (query, top-k, chosen learnwares, weights), timings and the result table."""
    zips = {lid: market.records[lid].zip_path for lid in outcome.learnware_ids}
    return dock.registry.register_solution_run(name, zips, outcome, search_log)
