"""Part A of BENCHMARKS.md: identification and reuse quality on the offline scenarios (engine in-process).

Search runs exactly as in the deploying flow (``MarketSearcher`` over RKMEs generated like the packager does);
reusers run over the scenario's own trusted models in-process, so a full-size scenario takes minutes, not hours.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from benchmarks.evaluate import UserSearch, score_user, summarise
from benchmarks.labelled_eval import evaluate_labelled, fit_label_aware
from benchmarks.metrics import loss
from benchmarks.scenarios import build
from benchmarks.scenarios.base import Scenario, UserTask
from lwlib.reuse import EnsemblePruningReuser, FeatureAugmentReuser, InProcessLearnware
from lwlib.search import MarketSearcher
from lwlib.semantic import SemanticSpec
from lwlib.rkme.rkme import RKMETableSpec

__all__ = ["LABEL_SIZES", "fit_specs", "search_users", "label_curves", "evaluate_scenario", "reference_summary"]

logger = logging.getLogger(__name__)

LABEL_SIZES = (10, 50, 100, 500, 1000)
CURVE_POOL = 5
CURVE_USERS = 20  # labelled-data curves on the first users only: 5 sizes x 3 methods per user add up


def fit_specs(scenario: Scenario) -> dict[str, RKMETableSpec]:
    """Each learnware's RKME, generated from its training data exactly as the packager does."""
    return {lw.name: RKMETableSpec(random_state=0).fit(lw.X_train) for lw in scenario.learnwares}


def search_users(scenario: Scenario, specs: dict[str, RKMETableSpec]) -> dict[str, UserSearch]:
    """Run the market searcher for every user (user RKME generated on the user's side from X)."""
    entries = [(lw.name, SemanticSpec.from_reference(lw.semantic), {RKMETableSpec.type_name: specs[lw.name]})
               for lw in scenario.learnwares]
    searcher = MarketSearcher(top_k=10, max_mixture=5).fit(entries)
    out = {}
    for user in scenario.users:
        t0 = time.perf_counter()
        res = searcher.search(None, user_X=user.X)
        mix = res.mixtures[0] if res.mixtures else None
        out[user.name] = UserSearch(tuple(m.learnware_id for m in res.singles),
                                    tuple(mix.learnware_ids) if mix else (), tuple(mix.weights) if mix else (),
                                    search_seconds=time.perf_counter() - t0)
    return out


def _self_model(task: str, n: int) -> Any:
    """The user's own model on n labels: linear below 100 labels, gradient boosting above (as a user would)."""
    if task == "classification":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)) if n < 100 else \
            HistGradientBoostingClassifier(random_state=0)
    return make_pipeline(StandardScaler(), RidgeCV(alphas=(0.01, 0.1, 1, 10, 100))) if n < 100 else \
        HistGradientBoostingRegressor(random_state=0)


def label_curves(scenario: Scenario, user: UserTask, found: UserSearch, specs: dict[str, Any],
                 sizes: Sequence[int] = LABEL_SIZES) -> dict[str, dict[int, float]]:
    """Loss vs number of labels for ensemble pruning, feature augment and a self-trained model."""
    names = list(found.singles[:CURVE_POOL])
    members = [InProcessLearnware(n, scenario.learnware(n).model, specs.get(n)) for n in names]
    curves: dict[str, dict[int, float]] = {"ensemble_pruning": {}, "feature_augment": {}, "self_trained": {}}
    methods: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
        "ensemble_pruning": lambda X, y: EnsemblePruningReuser(members, task=scenario.task).fit(X, y),
        "feature_augment": lambda X, y: FeatureAugmentReuser(members, task=scenario.task).fit(X, y),
        "self_trained": lambda X, y: _self_model(scenario.task, len(y)).fit(X, y),
    }
    order = np.random.default_rng(0).permutation(len(user.y_label))  # pools may be sorted by class
    for n in sizes:
        if n > len(user.y_label) or not members:
            continue
        X, y = user.X_label[order[:n]], user.y_label[order[:n]]
        if scenario.task == "classification" and len(np.unique(y)) < 2:
            continue
        for name, make in methods.items():
            try:
                with threadpool_limits(1):
                    curves[name][n] = loss(scenario.task, user.y, make(X, y).predict(user.X))
            except Exception as exc:  # noqa: BLE001 - a failing point is reported, not fatal
                logger.warning("%s at n=%d failed for %s: %s", name, n, user.name, exc)
    return curves


def evaluate_scenario(name: str, size: str, *, seed: int = 0, curves: bool = True,
                      labelled: bool = True) -> dict[str, Any]:
    """All part-A rows for one scenario: search quality, no-label reuse rows, labelled-data curves."""
    t0 = time.perf_counter()
    scenario = build(name, size=size, seed=seed)
    t_build = time.perf_counter() - t0
    specs = fit_specs(scenario)
    t_specs = time.perf_counter() - t0 - t_build
    found = search_users(scenario, specs)
    rows = [score_user(scenario, u, found[u.name], specs) for u in scenario.users]
    summary = summarise(scenario, rows)
    if labelled:
        la_specs, t_la = fit_label_aware(scenario, specs)
        lab = evaluate_labelled(scenario, specs, la_specs)
        summary["labelled"] = lab["summary"]
        summary["labelled_users"] = lab["users"]
        summary["label_aware_cost"] = {"label_aware_s": t_la, "rkme_s": t_specs,
                                       "ratio": t_la / t_specs if t_specs > 0 else None}
        nl = lab["summary"].get("auto_nolabel")
        if nl:
            summary["rows"]["deployed_auto"] = nl["loss"]
    if curves:
        per_user = [label_curves(scenario, u, found[u.name], specs) for u in scenario.users[:CURVE_USERS]]
        summary["curves"] = {m: {n: float(np.mean([c[m][n] for c in per_user if n in c[m]]))
                                 for n in sorted({n for c in per_user for n in c[m]})}
                             for m in ("ensemble_pruning", "feature_augment", "self_trained")}
    summary["timing"] = {"build_s": t_build, "specs_s": t_specs, "total_s": time.perf_counter() - t0}
    summary["scenario_obj"] = scenario
    summary["specs_obj"] = specs
    return summary


def reference_summary(scenario: Scenario, ref: dict[str, Any]) -> dict[str, Any]:
    """Turn the reference runner's JSON into rows on the same users (empty cells where a component failed)."""
    from benchmarks.metrics import best_in_market, market_losses

    rows: dict[str, list[float]] = {"top1": [], "job_selector": [], "average_ensemble": []}
    top1_best, beats, errors = [], [], {}
    for user in scenario.users:
        res = ref.get("users", {}).get(user.name, {})
        reuse = res.get("reuse", {}) if isinstance(res, dict) else {}
        for ours, theirs in (("top1", "top1"), ("job_selector", "job_selector"), ("average_ensemble", "averaging")):
            cell = reuse.get(theirs, {}) if isinstance(reuse, dict) else {}
            if "pred" in cell:
                rows[ours].append(loss(scenario.task, user.y, np.asarray(cell["pred"])))
            else:
                errors[ours] = str(cell.get("error", res.get("error", "missing")))[:200]
        singles = (res.get("search") or {}).get("single") or []
        if singles:
            table = market_losses(scenario, user)
            top1_best.append(singles[0]["id"] == best_in_market(scenario, user, table)[1])
            beats.append(table.get(singles[0]["id"], np.inf) < float(np.mean(list(table.values()))))
    return {"rows": {k: float(np.mean(v)) for k, v in rows.items() if len(v) == len(scenario.users)},
            "top1_is_best_share": float(np.mean(top1_best)) if top1_best else None, "errors": errors,
            "top1_beats_mean_share": float(np.mean(beats)) if beats else None,
            "search_seconds_median": float(np.median([u.get("search", {}).get("seconds", np.nan)
                                                      for u in ref.get("users", {}).values()
                                                      if isinstance(u, dict) and isinstance(u.get("search"), dict)]
                                                     or [np.nan]))}
