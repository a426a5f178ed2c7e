"""The deploying stage as typed steps: find (semantic + statistical search) → reuse → deploy.

One market snapshot per deployment (:class:`lwlib.market.MarketSnapshot`: the catalog read-only plus the persisted
search index): every step (search, opening runtimes, registering the solution) works from it, reading only the
rows it needs. ``lwdock search``, ``lwdock api`` and the deploying flow share one call, :func:`search_market`.
Learnwares are always called through their isolated runtimes (:class:`RuntimeLearnware`); only the dock's own
fitted parts (a router, a linear head) run in-process.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array
from lwlib.errors import LwdockError, ReuseError
from lwlib.reuse.auto import ReuserKind
from lwlib.search import SearchResult
from lwlib.search.requirement import Requirement
from lwlib.search.searcher import SearchEntry

if TYPE_CHECKING:
    from lwlib.catalog import LearnwareRecord
    from lwlib.dock import Dock
    from lwlib.submission import RegistryRef

__all__ = ["Market", "open_market", "search_market", "semantic_filter", "find", "result_rows", "RuntimeLearnware",
           "ReuseOutcome", "RuntimePool", "choose_reuser", "reuse", "deploy", "infer_task", "COLUMN_MAPS_PART"]

logger = logging.getLogger(__name__)

COLUMN_MAPS_PART = "column_maps"  # solution part: learnware id → ColumnMap (user space → its space)
DEPLOY_SHORTLIST = 30  # learnwares run on the user's labels per evidence source (P(X), specs)


class Market(Protocol):
    """What the deploying stage reads from the market (satisfied by :class:`lwlib.market.MarketSnapshot`)."""

    def search(self, requirement: Any = None, *, top_k: int = 10, max_mixture: int = 5) -> SearchResult: ...

    def entries_for(self, ids: Sequence[str]) -> list[SearchEntry]: ...

    def records_for(self, ids: Sequence[str]) -> dict[str, LearnwareRecord]: ...


def open_market(dock: Dock) -> Market:
    """The deployment's snapshot of the market (read-only, index brought up to date incrementally)."""
    from lwlib.market import MarketSnapshot

    return MarketSnapshot.open(dock.settings)


def search_market(market: Market, requirement: Requirement, *, top_k: int = 10, max_mixture: int = 5,
                  predictors: Any = None) -> SearchResult:
    """The one search of the dock: the CLI, the HTTP API and the deploying flow all call it.

    The semantic filter and the P(X) ranking come from the market snapshot (numpy, persisted index). Labelled rows
    refine the ranking among the same candidates with the label-aware specs and, when ``predictors`` can run the
    shortlisted learnwares (sandboxed runtimes), with their real loss on those rows (:func:`find`). The result says
    which evidence decided.
    """
    base = market.search(requirement, top_k=top_k, max_mixture=max_mixture)
    if requirement.n_labels == 0 or not base.singles:
        return replace(base, evidence={"decided_by": "P(X)", "n_labels": requirement.n_labels, **base.evidence})
    ids = [m.learnware_id for m in base.semantic] if base.semantic else None
    if ids is None:  # the whole compatible market: every learnware in the user's feature space
        ids = _same_space(market, base)
    return find(market.entries_for(ids), requirement, top_k=top_k, max_mixture=max_mixture, predictors=predictors)


def _same_space(market: Market, base: SearchResult) -> list[str]:
    group = getattr(market, "group_for", None)
    kernel = base.kernel or {}
    if callable(group) and "spec_type" in kernel and "n_features" in kernel:
        g = group(kernel["spec_type"], int(kernel["n_features"]))
        if g is not None:
            import numpy as _np

            return [bytes(g.ids[r]).decode() for r in _np.flatnonzero(g.live)]
    return [m.learnware_id for m in base.singles]


def semantic_filter(entries: Sequence[SearchEntry], query: Any) -> tuple[list[SearchEntry], dict[str, float]]:
    """Keep the entries whose semantic spec matches ``query`` (tags, exact/fuzzy name and description)."""
    if query is None:
        return list(entries), {}
    from lwlib.search.semantic import SemanticSearcher

    matches = SemanticSearcher().search(query, [(e.learnware_id, e.semantic_spec) for e in entries])
    scores = {m.learnware_id: m.score for m in matches}
    return [e for e in entries if e.learnware_id in scores], scores


def find(entries: Sequence[SearchEntry], requirement: Requirement, *, top_k: int = 10, max_mixture: int = 5,
         predictors: Any = None) -> SearchResult:
    """Rank single learnwares and find the best mixture for the user's requirement.

    ``entries`` are the semantic survivors. The user's data are summarised locally as an RKME (P(X) evidence);
    labelled rows refine that ranking with the label-aware specs and, when ``predictors`` can run the
    shortlisted learnwares (sandboxed runtimes), with their real loss on those rows. The result says which
    evidence decided. When no learnware shares the user's feature space and the requirement describes its input
    columns (semantic Input descriptions), the search moves across feature spaces through column maps.
    """
    from lwlib.search.labelled import LabelledSearcher, rerank_by_labels

    if not entries:
        return SearchResult(message="no learnware in the market matches the semantic requirement")
    if requirement.X is None and requirement.rkme is None:
        return SearchResult(message="give your data (or an RKME) to rank the learnwares statistically")
    plain = replace(requirement, semantic=None)  # the semantic stage already ran: rank the survivors
    # Each learnware run on the labels is one sandboxed worker kept for the deployment: 30 + 30 candidates (all of
    # them in markets of ≤ 30) identify as well as the whole market on the tabular study (37 % / 40 % top-1 = best
    # with 20 / 100 labels, benchmarks/results/label_study.md) at a bounded number of live workers.
    result = LabelledSearcher(top_k=top_k, max_mixture=max_mixture, shortlist=DEPLOY_SHORTLIST,
                              evaluate_all=DEPLOY_SHORTLIST).fit(list(entries)).search(plain, predictors=predictors)
    from lwlib.search.hetero import input_descriptions

    descriptions = requirement.descriptions or input_descriptions(requirement.semantic)
    if result.singles or not descriptions or requirement.X is None:
        return result
    from lwlib.search.hetero import HeteroSearcher

    logger.info("no learnware in the user's %d-feature space; aligning columns by their descriptions",
                requirement.X.shape[1])
    result = HeteroSearcher(top_k=top_k, max_mixture=max_mixture).fit(list(entries)).search(requirement.X,
                                                                                           descriptions)
    if requirement.n_labels and predictors is not None and result.singles:
        task = infer_task(entries, [m.learnware_id for m in result.singles[:1]])
        mapped = _mapped_predictors(predictors, result, requirement.X)
        result = rerank_by_labels(result, requirement.X_labels, requirement.y_labels, mapped, task=task)
    return result


def _mapped_predictors(predictors: Any, result: SearchResult, X: Any) -> Any:
    """Predictors that map user rows through each learnware's column map (cross-feature-space results)."""
    from lwlib.reuse.hetero import HeteroLearnware

    maps = getattr(result, "matches", {})

    def opened(ids: Sequence[str]) -> dict[str, Any]:
        raw = predictors(ids) if callable(predictors) else {i: predictors[i] for i in ids if i in predictors}
        return {i: HeteroLearnware(m, maps[i].column_map, user_X=X) if i in maps else m for i, m in raw.items()}

    return opened


class RuntimePool:
    """Sandboxed runtimes of market learnwares, opened on first use and kept for the whole deployment.

    Labelled re-ranking, the ``auto`` choice and the final reuser all call the same learnwares: each worker starts
    once. Use as a context manager (or call :meth:`close`); also usable as ``predictors`` (ids → predictors).
    """

    def __init__(self, dock: Dock, market: Market) -> None:
        self.dock, self.market = dock, market
        self._stack = ExitStack()
        self._open: dict[str, RuntimeLearnware] = {}

    def get(self, learnware_id: str) -> RuntimeLearnware:
        if learnware_id not in self._open:
            rec = self.market.records_for([learnware_id])[learnware_id]
            model = self._stack.enter_context(self.dock.open_model(self.dock.open_learnware(rec)))
            entry = self.market.entries_for([learnware_id])
            spec = _table_spec(entry[0].stat_spec) if entry else None
            self._open[learnware_id] = RuntimeLearnware(learnware_id, model, spec)
        return self._open[learnware_id]

    def __call__(self, ids: Sequence[str]) -> dict[str, RuntimeLearnware]:
        out = {}
        for i in ids:
            try:
                out[i] = self.get(i)
            except (LwdockError, KeyError) as exc:  # a learnware that is gone or no longer starts is left out
                logger.warning("learnware %s could not be started: %s", i[:12], getattr(exc, "message", exc))
        return out

    def close(self) -> None:
        self._stack.close()
        self._open.clear()

    def __enter__(self) -> RuntimePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    """The learnwares and weights of an explicitly asked reuser (``auto`` goes through
    :func:`lwlib.reuse.auto.choose_reuser_auto`)."""
    singles = [m.learnware_id for m in result.singles]
    mixture = result.mixtures[0] if result.mixtures else None
    if kind == "top1":
        return kind, singles[:1], [1.0]
    if kind in ("job_selector", "averaging") and mixture is not None:
        return kind, list(mixture.learnware_ids), [float(w) for w in mixture.weights]
    ids = singles[:5]
    return kind, ids, [1.0 / max(len(ids), 1)] * len(ids)


def reuse(dock: Dock, market: Market, result: SearchResult, requirement: Requirement, *,
          kind: ReuserKind = "auto", pool: RuntimePool | None = None) -> ReuseOutcome | None:
    """Fit the chosen reuser over the learnwares' isolated runtimes and predict the user's rows.

    ``auto`` is never worse than top-1 where the dock can know: with labels it picks by held-out loss on them
    and deploys top-1 unless something beats it; without labels it averages a mixture only when the evidence
    says so, and warns when the weights are diffuse. Returns None (with nothing started) when the search found
    nothing to reuse.
    """
    from lwlib.reuse.auto import POOL_SIZE, choose_reuser_auto, make_reuser
    from lwlib.search.labelled import label_aware_of

    if not result.singles or requirement.X is None:
        return None
    own_pool = pool is None
    pool = pool or RuntimePool(dock, market)
    candidates = [m.learnware_id for m in result.singles] + [i for m in result.mixtures for i in m.learnware_ids]
    entries = market.entries_for(list(dict.fromkeys(candidates)))
    try:
        task = infer_task(entries, [result.singles[0].learnware_id])
        X = requirement.X
        maps = getattr(result, "matches", {})  # cross-feature-space search: reuse through each column map
        predictors = _mapped_predictors(pool, result, X) if maps else pool
        evidence: dict[str, Any] = {}
        warnings: tuple[str, ...] = ()
        if kind == "auto":
            wanted = [m.learnware_id for m in result.singles[:POOL_SIZE]]
            wanted += [i for m in result.mixtures[:1] for i in m.learnware_ids if i not in wanted]
            label_specs = {e.learnware_id: la for e in entries if (la := label_aware_of(e.stat_spec))}
            choice = choose_reuser_auto(result, task=task, X=X, X_labels=requirement.X_labels,
                                        y_labels=requirement.y_labels, predictors=predictors(wanted),
                                        label_specs=label_specs)
            kind_, ids, weights = choice.kind, list(choice.learnware_ids), list(choice.weights)
            evidence, warnings = dict(choice.evidence), tuple(choice.warnings)
        else:
            kind_, ids, weights = choose_reuser(kind, result, n_labels=requirement.n_labels)
        if kind_ in ("ensemble_pruning", "feature_augment") and requirement.n_labels == 0:
            raise ReuseError(f"the {kind_} reuser learns from labelled data; pass --labels (X_label, y_label) or "
                             "choose top1 / job_selector / averaging", code="labels_required")
        task = infer_task(entries, ids)
        opened = predictors(ids)
        members = [opened[i] for i in ids]
        reuser = make_reuser(kind_, members, weights or None, task)
        if kind_ in ("ensemble_pruning", "feature_augment"):
            reuser.fit(check_array(requirement.X_labels, name="labelled data"), np.asarray(requirement.y_labels))
        else:
            reuser.fit(X)
        predictions = reuser.predict(X)
        solution, parts = reuser.to_solution(), reuser.parts()
        if maps:  # a deployed solution must map user rows the same way: our own fitted maps travel as parts
            parts[COLUMN_MAPS_PART] = {lid: maps[lid].column_map for lid in ids if lid in maps}
    finally:
        if own_pool:
            pool.close()
    applied = tuple(float(w) for w in solution.get("weights") or weights or [1.0 / len(ids)] * len(ids))
    logger.info("reused %d learnwares with %s (%s)", len(ids), kind_, task)
    return ReuseOutcome(kind_, tuple(ids), applied, np.asarray(predictions), solution, parts,
                        f"{kind_} over {len(ids)} learnware(s)", evidence, warnings)


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
    records = market.records_for(list(outcome.learnware_ids))
    zips = {lid: records[lid].zip_path for lid in outcome.learnware_ids}
    return dock.registry.register_solution_run(name, zips, outcome, search_log)
