"""Deploying stage: semantic_search → stat_search → reuse → deploy (ARCHITECTURE.md)."""

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from flows.results import markdown_table
from lwlib import deployment
from lwlib.reuse.auto import ReuserKind
from lwlib.search import SearchResult
from lwlib.search.requirement import Requirement
from lwlib.userdata import load_table
from tasks._common import get_dock
from tasks.deploy import deploy
from tasks.reuse import reuse
from tasks.search import semantic_search, stat_search



class DeployResult(BaseModel):
    """What the user gets: matches with names, scores and weights, the reuser used, the deployed model."""

    singles: list[dict[str, Any]] = Field(default_factory=list)
    mixtures: list[dict[str, Any]] = Field(default_factory=list)
    rows: list[dict[str, Any]] = Field(default_factory=list)
    reuser: str | None = None
    learnware_ids: list[str] = Field(default_factory=list)
    weights: list[float] = Field(default_factory=list)
    model_uri: str | None = None
    model_name: str | None = None
    predictions_path: str | None = None
    message: str = ""
    warnings: list[str] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_search(cls, result: SearchResult, records: Any) -> "DeployResult":
        """The search part (single and mixture matches, message) before anything is reused."""
        found = result.to_dict()
        return cls(singles=found["singles"], mixtures=found["mixtures"], message=result.message,
                   rows=deployment.result_rows(result, records), evidence=dict(result.evidence))


def _requirement(user_data: str, requirement: dict[str, Any] | None, labelled_data: str | None) -> Requirement:
    X, _ = load_table(user_data)
    X_l, y_l = load_table(labelled_data, labelled=True) if labelled_data else (None, None)
    return Requirement(semantic=requirement, X=X, X_labels=X_l, y_labels=y_l)


@flow(name="find-and-reuse")
def find_and_reuse(user_data: str, requirement: dict[str, Any] | None = None, labelled_data: str | None = None,
                   reuser: ReuserKind = "auto", top_k: int = 10, max_mixture: int = 5,
                   register_name: str | None = None, out_dir: str | None = None) -> DeployResult:
    """Find the best learnware and the best mixture for the user's data, reuse them and deploy the solution."""
    dock, timings, t0 = get_dock(), {}, time.perf_counter()
    req = _requirement(user_data, requirement, labelled_data)
    market = deployment.open_market(dock)  # one read-only snapshot for the whole deployment
    with deployment.RuntimePool(dock, market) as pool:  # each learnware's sandbox starts once per deployment
        candidates = semantic_search(market, req)
        timings["semantic_search"] = time.perf_counter() - t0
        result = stat_search(market, req, top_k, max_mixture, pool)
        timings["stat_search"] = time.perf_counter() - t0 - sum(timings.values())
        ids = [m.learnware_id for m in result.singles] + [i for m in result.mixtures for i in m.learnware_ids]
        out = DeployResult.from_search(result, market.records_for(list(dict.fromkeys(ids))))
        outcome = reuse(dock, market, result, req, reuser, pool)
        timings["reuse"] = time.perf_counter() - t0 - sum(timings.values())
    if outcome is not None:
        name = register_name or "solution-" + hashlib.sha256(
            (outcome.kind + ",".join(outcome.learnware_ids)).encode()).hexdigest()[:10]
        log = {"params": {"top_k": top_k, "max_mixture": max_mixture, "reuser_asked": reuser,
                          "n_user_rows": int(req.X.shape[0]) if req.X is not None else 0,
                          "n_features": int(req.X.shape[1]) if req.X is not None else 0,
                          "n_labels": req.n_labels, "n_candidates": len(candidates) or "all",
                          "query": requirement or {}},
               "timings": timings, "table": out.rows}
        ref = deploy(dock, market, outcome, name, log)
        timings["deploy"] = time.perf_counter() - t0 - sum(timings.values())
        pred_path = Path(out_dir or dock.settings.home / "predictions") / f"{name}.npy"
        pred_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(pred_path, outcome.predictions)
        out = out.model_copy(update={"reuser": outcome.kind, "learnware_ids": list(outcome.learnware_ids),
                                     "weights": list(outcome.weights), "model_uri": ref.uri, "model_name": ref.name,
                                     "predictions_path": str(pred_path), "message": outcome.message,
                                     "warnings": list(outcome.warnings),
                                     "evidence": {**out.evidence, "reuse": dict(outcome.evidence)}})
    out = out.model_copy(update={"timings": {k: round(v, 3) for k, v in timings.items()}})
    create_markdown_artifact(key="deploy", description="Search and reuse", markdown=(
        f"## Search and reuse\n\n{out.message}\n\n" + markdown_table(
            ["rank", "learnware", "id", "score", "MMD²", "weights"],
            [[r["rank"], r["name"], r["id"], f"{r['score']:.3f}", f"{r['mmd2']:.5f}", r["weights"]] for r in out.rows])
        + f"\n\nDeployed: `{out.model_uri or '-'}` ({out.reuser or 'none'}; weights "
        + ", ".join(f"{w:.2f}" for w in out.weights) + ")"))
    return out
