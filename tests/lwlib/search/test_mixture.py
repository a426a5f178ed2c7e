"""Mixture weights (simplex QP) and the greedy / joint mixture searches."""

from __future__ import annotations

import numpy as np
import pytest

from lwlib.search.index import SpecIndex
from lwlib.search.mixture import mixture_weights, search_mixture_greedy, search_mixture_joint, simplex_qp_batch
from lwlib.search.single import score_single
from lwlib.rkme.rkme import RKMETableSpec

D, N = 6, 20


def _fit(X: np.ndarray) -> RKMETableSpec:
    return RKMETableSpec(reduced_set_size=20, n_iter=1).fit(X)


@pytest.fixture(scope="module")
def market() -> dict:
    rng = np.random.default_rng(2)
    means = rng.normal(0.0, 3.0, (N, D))
    specs = [_fit(rng.normal(m, 1.0, (300, D))) for m in means]
    ids = [f"m{i:02d}" for i in range(N)]
    return {"means": means, "specs": specs, "ids": ids, "index": SpecIndex.build(ids, specs)}


def _objective(K: np.ndarray, c: np.ndarray, w: np.ndarray) -> float:
    return 0.5 * w @ K @ w - c @ w


def test_mixture_weights_on_simplex_and_optimal() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    K, c = A @ A.T / 6, rng.normal(size=6)
    w = mixture_weights(K, c)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    for _ in range(200):  # no random simplex point does better
        v = rng.dirichlet(np.ones(6))
        assert _objective(K, c, w) <= _objective(K, c, v) + 1e-9


def test_batched_enumeration_matches_clarabel() -> None:
    rng = np.random.default_rng(1)
    Ks, cs = [], []
    for _ in range(12):
        A = rng.normal(size=(4, 4))
        Ks.append(A @ A.T / 4 + 0.01 * np.eye(4))
        cs.append(rng.normal(size=4))
    W, obj = simplex_qp_batch(np.stack(Ks), np.stack(cs))
    for b in range(12):
        w_ref = mixture_weights(Ks[b], cs[b])
        assert obj[b] == pytest.approx(_objective(Ks[b], cs[b], w_ref), abs=1e-7)
        assert W[b].sum() == pytest.approx(1.0) and W[b].min() >= 0


@pytest.mark.parametrize("search", [search_mixture_greedy, search_mixture_joint])
@pytest.mark.parametrize("kernel", ["market", "reference"])
def test_mixture_recovers_two_components(market, search, kernel) -> None:
    rng = np.random.default_rng(3)
    a, b = 4, 11
    X = np.vstack([rng.normal(market["means"][a], 1.0, (700, D)), rng.normal(market["means"][b], 1.0, (300, D))])
    ranking = score_single(market["index"], _fit(X), kernel=kernel)
    mix = search(ranking, max_size=4)
    assert mix is not None
    weights = dict(zip(mix.learnware_ids, mix.weights))
    assert {market["ids"][a], market["ids"][b]} <= set(weights)
    assert weights[market["ids"][a]] == pytest.approx(0.7, abs=0.15)
    assert weights[market["ids"][b]] == pytest.approx(0.3, abs=0.15)
    assert sum(mix.weights) == pytest.approx(1.0)
    assert mix.mmd2 < ranking.mmd2[0]
    assert mix.score > ranking.scores()[0]


def test_single_distribution_gives_no_mixture(market) -> None:
    rng = np.random.default_rng(4)
    ranking = score_single(market["index"], _fit(rng.normal(market["means"][7], 1.0, (800, D))))
    assert ranking.ids[0] == market["ids"][7]
    # nothing else halves the distance of the right learnware
    assert search_mixture_greedy(ranking, max_size=3, min_improvement=0.5) is None
    assert search_mixture_greedy(ranking, max_size=1) is None
