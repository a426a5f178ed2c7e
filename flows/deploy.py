"""Deploying stage: semantic_search → stat_search → reuse → deploy (ARCHITECTURE.md)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from flows.results import markdown_table
from lwlib.search import SearchResult
from lwlib.userdata import load_table
from tasks._common import get_dock
from tasks.deploy import deploy
from tasks.reuse import reuse
from tasks.search import semantic_search, stat_search

Reuser = Literal["auto", "top1", "job_selector", "averaging", "ensemble_pruning", "feature_augment"]


class DeployResult(BaseModel):
    """What the user gets: matches with scores and weights, the reuser used, the deployed model and predictions."""

    singles: list[dict[str, Any]] = Field(default_factory=list)
    mixtures: list[dict[str, Any]] = Field(default_factory=list)
    reuser: str | None = None
    learnware_ids: list[str] = Field(default_factory=list)
    weights: list[float] = Field(default_factory=list)
    model_uri: str | None = None
    predictions_path: str | None = None
    message: str = ""
    timings: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_search(cls, result: SearchResult) -> "DeployResult":
        """The search part (single and mixture matches, message) before anything is reused."""
        found = result.to_dict()
        return cls(singles=found["singles"], mixtures=found["mixtures"], message=result.message)


@flow(name="find-and-reuse")
def find_and_reuse(user_data: str, requirement: dict[str, Any] | None = None, labelled_data: str | None = None,
                   reuser: Reuser = "auto", top_k: int = 10, max_mixture: int = 5,
                   register_name: str | None = None, out_dir: str | None = None,
                   home: str | None = None) -> DeployResult:
    """Find the best learnware and the best mixture for the user's data, reuse them and deploy the solution."""
    dock, timings, t0 = get_dock(home), {}, time.perf_counter()
    X, _ = load_table(user_data)
    X_label, y_label = load_table(labelled_data, labelled=True) if labelled_data else (None, None)
    entries = semantic_search(dock, requirement)
    timings["semantic_search"] = time.perf_counter() - t0
    result = stat_search(entries, X, top_k, max_mixture, requirement)
    timings["stat_search"] = time.perf_counter() - t0 - sum(timings.values())
    out = DeployResult.from_search(result)
    outcome = reuse(dock, entries, result, X, reuser, X_label, y_label) if result.singles else None
    timings["reuse"] = time.perf_counter() - t0 - sum(timings.values())
    if outcome is not None:
        name = register_name or "solution-" + hashlib.sha256(
            (outcome.kind + ",".join(outcome.learnware_ids)).encode()).hexdigest()[:10]
        ref = deploy(dock, outcome, name, {"top_k": top_k, "max_mixture": max_mixture, "reuser": reuser,
                                           "n_user_rows": int(X.shape[0]), "n_candidates": len(entries)}, timings)
        timings["deploy"] = time.perf_counter() - t0 - sum(timings.values())
        pred_path = Path(out_dir or dock.settings.home / "predictions") / f"{name}.npy"
        pred_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(pred_path, outcome.predictions)
        out = out.model_copy(update={"reuser": outcome.kind, "learnware_ids": list(outcome.learnware_ids),
                                     "weights": list(outcome.weights), "model_uri": ref.uri,
                                     "predictions_path": str(pred_path), "message": outcome.message})
    out = out.model_copy(update={"timings": {k: round(v, 3) for k, v in timings.items()}})
    create_markdown_artifact(key="deploy", description="Search and reuse", markdown=(
        f"## Search and reuse\n\n{out.message}\n\n" + markdown_table(
            ["rank", "learnware", "score", "MMD²"],
            [[m["rank"] + 1, m["learnware_id"][:12], f"{m['score']:.3f}", f"{m['mmd2']:.5f}"] for m in out.singles])
        + "\n" + markdown_table(["mixture", "weights", "score"], [
            [" + ".join(i[:8] for i in m["learnware_ids"]), ", ".join(f"{w:.2f}" for w in m["weights"]),
             f"{m['score']:.3f}"] for m in out.mixtures])
        + f"\n\nDeployed: `{out.model_uri or '-'}` ({out.reuser or 'none'})"))
    return out
