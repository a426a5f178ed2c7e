"""Issue 11 rows: label-aware specs, labelled search ("Top-1 (k labels)") and the ``auto`` choice ("auto (k labels)").

For each user and each label budget k, k rows are drawn (seeded) from the user's labelled pool; the dock's
:class:`~lwlib.search.labelled.LabelledSearcher` ranks the market with them (specs + real loss of a shortlist,
called through the same ``predict`` interface the sandboxed runtimes expose), and
:func:`~lwlib.reuse.auto.choose_reuser_auto` picks the reuser that is deployed. Losses are measured on the user's
test rows, never on the labelled ones. ``auto`` is scored on the first ``AUTO_USERS`` users (its cross-validation
fits several reusers per user); the shares and ratios of each row are computed on the users that row covers.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.metrics import best_in_market, loss, market_losses
from benchmarks.scenarios.base import Scenario
from lwlib.reuse import EnsemblePruningReuser, InProcessLearnware
from lwlib.reuse.auto import choose_reuser_auto, make_reuser
from lwlib.rkme.label_aware import LabelAwareSpec, make_label_aware_spec
from lwlib.search.labelled import LabelledSearcher
from lwlib.search.requirement import Requirement
from lwlib.semantic import SemanticSpec

__all__ = ["LABEL_BUDGETS", "AUTO_USERS", "fit_label_aware", "evaluate_labelled", "deploy_choice"]

logger = logging.getLogger(__name__)

LABEL_BUDGETS = (5, 20, 100)
AUTO_USERS = int(os.environ.get("LWDOCK_BENCH_AUTO_USERS", "30"))  # auto fits several reusers per user


def _n_classes(semantic: dict[str, Any]) -> int | None:
    dim = (semantic.get("Output") or {}).get("Dimension")
    return int(dim) if isinstance(dim, int) and dim > 1 else None


def fit_label_aware(scenario: Scenario, specs: dict[str, Any]) -> tuple[dict[str, LabelAwareSpec], float]:
    """Each learnware's label-aware spec, made as the dock makes it (one predict on its RKME points); seconds."""
    t0 = time.perf_counter()
    out = {}
    with threadpool_limits(1):
        for lw in scenario.learnwares:
            out[lw.name] = make_label_aware_spec(specs[lw.name], lw.model.predict, scenario.task,
                                                 n_classes=_n_classes(lw.semantic))
    return out, time.perf_counter() - t0


def deploy_choice(scenario: Scenario, choice: Any, predictors: dict[str, Any], X: np.ndarray,
                  X_l: np.ndarray | None = None, y_l: np.ndarray | None = None) -> np.ndarray:
    """Fit what ``auto`` chose (label-learning reusers on the labelled rows) and predict the user's rows."""
    members = [predictors[i] for i in choice.learnware_ids]
    weights = choice.weights if choice.kind == "averaging" else None
    reuser = make_reuser(choice.kind, members, weights, scenario.task)
    if choice.kind in ("ensemble_pruning", "feature_augment"):
        reuser.fit(X_l, y_l)
    else:
        reuser.fit(X)
    return np.asarray(reuser.predict(X))


def _user_rng(seed: int, j: int) -> np.random.Generator:
    return np.random.default_rng([seed, j, 11])


def evaluate_labelled(scenario: Scenario, specs: dict[str, Any], la_specs: dict[str, LabelAwareSpec], *,
                      budgets: Sequence[int] = LABEL_BUDGETS, auto_users: int = AUTO_USERS,
                      seed: int = 0) -> dict[str, Any]:
    """Per-user labelled-search and auto rows, plus their aggregates per budget."""
    entries = [(lw.name, SemanticSpec.from_reference(lw.semantic),
                {specs[lw.name].type_name: specs[lw.name], LabelAwareSpec.type_name: la_specs[lw.name]})
               for lw in scenario.learnwares]
    searcher = LabelledSearcher(top_k=10, max_mixture=5).fit(entries)
    predictors = {lw.name: InProcessLearnware(lw.name, lw.model, specs[lw.name]) for lw in scenario.learnwares}
    users: list[dict[str, Any]] = []
    for j, user in enumerate(scenario.users):
        table = market_losses(scenario, user)
        best, best_name = best_in_market(scenario, user, table)
        row: dict[str, Any] = {"user": user.name, "best": best, "best_name": best_name, "k": {}}
        with threadpool_limits(1):
            user_rkme = searcher.market_._user_spec_from_data(user.X)  # the user's side, once per user
            base = searcher.search(Requirement(X=user.X, rkme=user_rkme, task=scenario.task))
            cons = searcher.search(Requirement(X=user.X, rkme=user_rkme, task=scenario.task), predictors=predictors)
            row["top1_consensus"] = table[cons.singles[0].learnware_id]
            row["top1_consensus_is_best"] = bool(np.isclose(row["top1_consensus"], best))
            choice = choose_reuser_auto(base, task=scenario.task, X=user.X, label_specs=la_specs,
                                        predictors=predictors)
            row["top1_nolabel"] = table[base.singles[0].learnware_id]
            row["auto_nolabel"] = {"kind": choice.kind, "warnings": list(choice.warnings),
                                   "loss": loss(scenario.task, user.y, deploy_choice(scenario, choice, predictors,
                                                                                     user.X))}
            order = _user_rng(seed, j).permutation(len(user.y_label))
            for k in budgets:
                if k > len(user.y_label):
                    continue
                Xl, yl = user.X_label[order[:k]], user.y_label[order[:k]]
                t0 = time.perf_counter()
                res = searcher.search(Requirement(X=user.X, rkme=user_rkme, X_labels=Xl, y_labels=yl,
                                                  task=scenario.task),
                                      predictors=predictors)
                dt = time.perf_counter() - t0
                top = res.singles[0].learnware_id
                cell: dict[str, Any] = {"top1": top, "top1_loss": table[top], "seconds": dt,
                                        "top1_is_best": bool(top == best_name or np.isclose(table[top], best)),
                                        "decided_by": res.evidence.get("decided_by"),
                                        "label_weight": res.evidence.get("label_weight")}
                for ev in ("empirical_top1", "spec_top1"):  # what each kind of evidence alone would have picked
                    if ev in res.evidence:
                        cell[ev + "_loss"] = table[res.evidence[ev]]
                if j < auto_users:
                    choice = choose_reuser_auto(res, task=scenario.task, X=user.X, X_labels=Xl, y_labels=yl,
                                                predictors=predictors, label_specs=la_specs)
                    pred = deploy_choice(scenario, choice, predictors, user.X, Xl, yl)
                    cell["auto"] = {"kind": choice.kind, "loss": loss(scenario.task, user.y, pred)}
                    if k == max(budgets) and (scenario.task == "regression" or len(np.unique(yl)) > 1):
                        pool = [predictors[m.learnware_id] for m in res.singles[:5]]
                        ep = EnsemblePruningReuser(pool, task=scenario.task).fit(Xl, yl)
                        cell["ensemble_pruning"] = loss(scenario.task, user.y, ep.predict(user.X))
                row["k"][k] = cell
        users.append(row)
    return {"users": users, "summary": _aggregate(users, budgets)}


def _aggregate(users: list[dict[str, Any]], budgets: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    nl = [u for u in users if "auto_nolabel" in u]
    if nl:
        out["auto_nolabel"] = {"loss": float(np.mean([u["auto_nolabel"]["loss"] for u in nl])),
                               "ratio": float(np.mean([u["auto_nolabel"]["loss"] for u in nl])
                                              / np.mean([u["best"] for u in nl])),
                               "kinds": _counts([u["auto_nolabel"]["kind"] for u in nl]), "n_users": len(nl),
                               "top1_loss": float(np.mean([u["top1_nolabel"] for u in nl])),
                               "consensus_top1_loss": float(np.mean([u["top1_consensus"] for u in nl])),
                               "consensus_top1_is_best_share": float(np.mean([u["top1_consensus_is_best"]
                                                                              for u in nl]))}
    for k in budgets:
        cells = [(u, u["k"][k]) for u in users if k in u["k"]]
        if not cells:
            continue
        best = np.array([u["best"] for u, _ in cells])
        top = np.array([c["top1_loss"] for _, c in cells])
        agg: dict[str, Any] = {
            "n_users": len(cells), "top1_loss": float(top.mean()), "best_loss": float(best.mean()),
            "top1_ratio": float(top.mean() / best.mean()) if best.mean() > 0 else float("nan"),
            "top1_is_best_share": float(np.mean([c["top1_is_best"] for _, c in cells])),
            "decided_by": _counts([c["decided_by"] for _, c in cells]),
            "search_seconds_median": float(np.median([c["seconds"] for _, c in cells]))}
        for ev in ("empirical_top1", "spec_top1"):
            sel = [(u, c) for u, c in cells if ev + "_loss" in c]
            if sel:
                agg[ev + "_ratio"] = float(np.mean([c[ev + "_loss"] for _, c in sel]) / np.mean([u["best"] for u, _ in sel]))
                agg[ev + "_is_best_share"] = float(np.mean([np.isclose(c[ev + "_loss"], u["best"]) for u, c in sel]))
        au = [(u, c) for u, c in cells if "auto" in c]
        if au:
            al = np.array([c["auto"]["loss"] for _, c in au])
            ab = np.array([u["best"] for u, _ in au])
            agg.update(auto_loss=float(al.mean()), auto_best_loss=float(ab.mean()),
                       auto_ratio=float(al.mean() / ab.mean()) if ab.mean() > 0 else float("nan"),
                       auto_kinds=_counts([c["auto"]["kind"] for _, c in au]), auto_users=len(au))
        ep = [(u, c) for u, c in cells if "ensemble_pruning" in c]
        if ep:
            agg.update(ensemble_pruning_loss=float(np.mean([c["ensemble_pruning"] for _, c in ep])),
                       ensemble_pruning_best_loss=float(np.mean([u["best"] for u, _ in ep])))
        out[str(k)] = agg
    return out


def _counts(values: Sequence[Any]) -> dict[str, int]:
    keys, counts = np.unique(np.asarray([str(v) for v in values]), return_counts=True)
    return {str(k): int(c) for k, c in zip(keys, counts)}


def evaluate_hetero_labelled(scenario: Scenario, searcher: Any, specs: dict[str, Any], *,
                             budgets: Sequence[int] = LABEL_BUDGETS, auto_users: int = AUTO_USERS,
                             seed: int = 0) -> dict[str, Any]:
    """Labelled rows for cross-feature-space users: re-rank the hetero search's singles by real loss through their
    column maps (:func:`~lwlib.search.labelled.rerank_by_labels`), then the ``auto`` choice over the same maps."""
    from lwlib.reuse.hetero import HeteroLearnware
    from lwlib.search.hetero import input_descriptions
    from lwlib.search.labelled import rerank_by_labels

    users: list[dict[str, Any]] = []
    for j, user in enumerate(scenario.users):
        table = market_losses(scenario, user)
        best, best_name = best_in_market(scenario, user, table)
        row: dict[str, Any] = {"user": user.name, "best": best, "best_name": best_name, "k": {}}
        res = searcher.search(user.X, input_descriptions(user.semantic_query))
        if not res.singles:
            continue
        preds = {n: HeteroLearnware(InProcessLearnware(n, scenario.learnware(n).model, specs[n]),
                                    res.matches[n].column_map, user_X=user.X) for n in res.matches}
        order = _user_rng(seed, j).permutation(len(user.y_label))
        with threadpool_limits(1):
            for k in budgets:
                if k > len(user.y_label):
                    continue
                Xl, yl = user.X_label[order[:k]], user.y_label[order[:k]]
                t0 = time.perf_counter()
                rk = rerank_by_labels(res, Xl, yl, preds, task=scenario.task)
                dt = time.perf_counter() - t0
                top = rk.singles[0].learnware_id
                cell: dict[str, Any] = {"top1": top, "top1_loss": table[top], "seconds": dt,
                                        "top1_is_best": bool(top == best_name or np.isclose(table[top], best)),
                                        "decided_by": rk.evidence.get("decided_by")}
                if j < auto_users:
                    choice = choose_reuser_auto(rk, task=scenario.task, X=user.X, X_labels=Xl, y_labels=yl,
                                                predictors=preds)
                    pred = deploy_choice(scenario, choice, preds, user.X, Xl, yl)
                    cell["auto"] = {"kind": choice.kind, "loss": loss(scenario.task, user.y, pred)}
                    if k == max(budgets):
                        ep = EnsemblePruningReuser([preds[m.learnware_id] for m in rk.singles[:5]],
                                                   task=scenario.task).fit(Xl, yl)
                        cell["ensemble_pruning"] = loss(scenario.task, user.y, ep.predict(user.X))
                row["k"][k] = cell
        users.append(row)
    return {"users": users, "summary": _aggregate(users, budgets)}
