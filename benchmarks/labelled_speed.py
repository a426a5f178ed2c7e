"""Issue 11 target: a search with 20 labels over 1,000 learnwares answers in ≤ 3 s in the engine.

Synthetic market: N learnwares with K = 100 reduced points in d = 20 dimensions (Gaussian clusters), each with a
linear 10-class model and its label-aware spec (outputs at its reduced points). The user brings 1,000 unlabelled
rows and 20 labelled rows. Timed: :meth:`LabelledSearcher.search` end to end — user RKME, P(X) ranking, spec-
predicted losses over all N, shortlist, one batched ``predict`` per shortlisted learnware (in-process predictors:
the engine's share; a warm sandboxed runtime adds its per-call overhead, see performance_*.json ``runtime``), and
the evidence combination. Reported: min / median / max over repeats, and the time with the user's RKME given.

Usage: ``python -m benchmarks.labelled_speed [--n 1000] [--repeats 5]`` (writes results/labelled_speed.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.report import machine_stamp
from lwlib.rkme.label_aware import LabelAwareSpec, make_label_aware_spec
from lwlib.rkme.rkme import RKMETableSpec
from lwlib.search.labelled import LabelledSearcher
from lwlib.search.requirement import Requirement

RESULTS = Path(__file__).resolve().parent / "results"


class _Linear:
    """A trusted in-process 10-class linear model (the benchmark's stand-in for a warm runtime)."""

    def __init__(self, W: np.ndarray, id: str) -> None:
        self.W, self.id, self.spec = W, id, None

    def predict(self, X: Any) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) @ self.W.T).argmax(1)


def synthetic_market(n: int, *, d: int = 20, k: int = 100, seed: int = 0) -> tuple[list[Any], dict[str, Any], Any]:
    """N fitted specs (RKME from reduced points drawn directly) with label-aware specs and linear predictors."""
    rng = np.random.default_rng(seed)
    entries, predictors = [], {}
    centres = rng.normal(0.0, 3.0, (n, d))
    for i in range(n):
        spec = RKMETableSpec(reduced_set_size=k)
        spec.z_ = centres[i] + rng.normal(0.0, 1.0, (k, d))
        spec.beta_ = np.full(k, 1.0 / k)
        spec.num_points_, spec.gamma_ = 1000, 0.1
        W = rng.normal(size=(10, d))
        model = _Linear(W, f"lw{i:05d}")
        la = make_label_aware_spec(spec, model.predict, "classification", n_classes=10)
        entries.append((model.id, None, {spec.type_name: spec, LabelAwareSpec.type_name: la}))
        predictors[model.id] = model
    target = 7
    return entries, predictors, (centres[target], predictors[f"lw{target:05d}"])


def measure(n: int = 1000, repeats: int = 5, n_labels: int = 20, seed: int = 0) -> dict[str, Any]:
    entries, predictors, (centre, truth) = synthetic_market(n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    t0 = time.perf_counter()
    searcher = LabelledSearcher().fit(entries)
    fit_s = time.perf_counter() - t0
    X = centre + rng.normal(0.0, 1.0, (1000, centre.shape[0]))
    Xl = centre + rng.normal(0.0, 1.0, (n_labels, centre.shape[0]))
    yl = truth.predict(Xl)
    full, given, hits, shortlists = [], [], [], []
    with threadpool_limits(1):
        user_rkme = searcher.market_._user_spec_from_data(X)
        for _ in range(repeats):
            t = time.perf_counter()
            res = searcher.search(Requirement(X=X, X_labels=Xl, y_labels=yl, task="classification"),
                                  predictors=predictors)
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            res2 = searcher.search(Requirement(X=X, rkme=user_rkme, X_labels=Xl, y_labels=yl, task="classification"),
                                   predictors=predictors)
            given.append(time.perf_counter() - t)
            hits.append(res.singles[0].learnware_id == truth.id and res2.singles[0].learnware_id == truth.id)
            shortlists.append(res.evidence.get("shortlist"))

    def stats(v: list[float]) -> dict[str, float]:
        return {"min": float(np.min(v)), "median": float(np.median(v)), "max": float(np.max(v))}

    return {"n_learnwares": n, "n_labels": n_labels, "d": 20, "K": 100, "fit_s": fit_s,
            "search_s": stats(full), "search_with_user_rkme_s": stats(given), "shortlist": shortlists[0],
            "top1_correct": bool(all(hits)), "target_s": 3.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=RESULTS / "labelled_speed.json")
    a = p.parse_args(argv)
    res = measure(a.n, a.repeats)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"machine": machine_stamp(), **res}, indent=2))
    sys.stdout.write(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
