"""Shared inputs, different labelling rules: the scenario P(X)-only matching cannot solve (issue 11).

Every learnware is trained on the *same* input distribution (all ten classes of the image pool, sampled alike) but
predicts a different labelling of it: rule ``r`` maps the ten original classes onto 2-5 target labels by a seeded
random grouping (e.g. "tops vs. shoes vs. bags" in Fashion-MNIST terms). Users hold images drawn like the
learnwares' and labels under one of the rules. P(X) is identical everywhere, so an RKME search ranks learnwares by
approximation noise; only a specification that sees what each model outputs (the label-aware spec) or the user's
labels can find the learnware of the user's rule.

Sources: scikit-learn digits (``small``) and Fashion-MNIST when installed, else digits (``full``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

from benchmarks.scenarios.base import LearnwareSource, Scenario, UserTask, fit_quietly, reference_semantic, register
from benchmarks.scenarios.image import FASHION_DIR, load_image_pools

__all__ = ["build_shared_inputs", "labelling_rules"]

logger = logging.getLogger(__name__)

_SIZES = {"small": (12, 10, 300, 300, 100), "full": (20, 30, 2000, 1000, 200)}  # rules, users, per lw, test, label


def labelling_rules(n_rules: int, n_classes: int, seed: int) -> list[np.ndarray]:
    """``n_rules`` distinct groupings of ``n_classes`` classes onto 2-5 labels (each label used at least once)."""
    rng = np.random.default_rng(seed + 7919)
    rules: list[np.ndarray] = []
    seen: set[tuple[int, ...]] = set()
    while len(rules) < n_rules:
        k = int(rng.integers(2, 6))
        g = np.concatenate([np.arange(k), rng.integers(0, k, n_classes - k)])
        g = rng.permutation(g)
        key = tuple(g.tolist())
        if key not in seen:
            seen.add(key)
            rules.append(g.astype(np.int64))
    return rules


def _model(i: int, seed: int) -> Any:
    if i % 2 == 0:
        return make_pipeline(MaxAbsScaler(), LogisticRegression(C=1.0, max_iter=300))
    return HistGradientBoostingClassifier(max_iter=50, learning_rate=0.1, max_features=0.2, max_bins=32,
                                          random_state=seed)


def _build(size: str, seed: int) -> Scenario:
    start = time.perf_counter()
    full_fashion = size == "full" and (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file()
    dataset = "fashion" if full_fashion else "digits"
    pools = load_image_pools(dataset, seed)
    n_rules, n_users, per_lw, n_test, n_label = _SIZES[size]
    if dataset == "digits":
        per_lw, n_test, n_label = min(per_lw, 300), min(n_test, 300), min(n_label, 100)
    rules = labelling_rules(n_rules, 10, seed)
    rng = np.random.default_rng(seed)
    dim = pools.X_train.shape[1]
    learnwares = []
    for i, g in enumerate(rules):
        idx = rng.choice(pools.y_train.size, size=per_lw, replace=False)
        X, y = pools.X_train[idx], g[pools.y_train[idx]]
        model = fit_quietly(_model(i, seed + i), X, y)
        k = int(g.max()) + 1
        groups = {lab: [pools.class_names[c] for c in np.flatnonzero(g == lab)] for lab in range(k)}
        name = f"{dataset}-rule{i:02d}-{k}labels"
        desc = (f"{type(model[-1] if hasattr(model, 'steps') else model).__name__} on {per_lw} {dataset} images, "
                f"grouping the ten classes into {k} labels: " + "; ".join(f"{lab}={'/'.join(v)}"
                                                                          for lab, v in groups.items()))
        semantic = reference_semantic(data="Image", task="Classification", name=name, description=desc,
                                      scenarios=(pools.scenario_tag,), license=pools.license, input_descriptions=[],
                                      output_dimension=k, output_descriptions={lab: "/".join(v)
                                                                               for lab, v in groups.items()})
        semantic["Input"] = {"Dimension": dim, "Description": {}}
        learnwares.append(LearnwareSource(name=name, description=desc, model=model, X_train=X, semantic=semantic,
                                          group=f"rule{i:02d}", feature_space=f"{dataset}/pixels"))
    users = []
    for j in range(n_users):
        r = int(rng.integers(0, n_rules))
        g = rules[r]
        test = rng.choice(pools.y_test.size, size=min(n_test, pools.y_test.size), replace=False)
        lab = rng.choice(pools.y_train.size, size=n_label, replace=False)
        query = reference_semantic(data="Image", task="Classification", library=None, input_descriptions=[])
        query["Input"] = {"Dimension": dim, "Description": {}}
        users.append(UserTask(name=f"user-{j:03d}-rule{r:02d}", X=pools.X_test[test], y=g[pools.y_test[test]],
                              X_label=pools.X_train[lab], y_label=g[pools.y_train[lab]], semantic_query=query,
                              truth_learnwares=(learnwares[r].name,), feature_space=f"{dataset}/pixels"))
    info = {"source": dataset, "seed": seed, "size": size, "rules": [g.tolist() for g in rules],
            "build_seconds": round(time.perf_counter() - start, 3)}
    return Scenario(name="shared_inputs", task="classification", learnwares=tuple(learnwares), users=tuple(users),
                    feature_space=f"{dataset}/pixels, one input distribution, {n_rules} labelling rules",
                    loss_name="error", info=info)


@register("shared_inputs")
def build_shared_inputs(size: str, seed: int) -> Scenario:
    """Learnwares share P(X) and differ in P(y|X) (labelling rules); users hold one rule's labels."""
    return _build(size, seed)
