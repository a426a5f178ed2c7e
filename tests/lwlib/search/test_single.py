"""Batched single ranking and the spec index (kernel views, sketch shortlist)."""

from __future__ import annotations

import numpy as np
import pytest

from lwlib.errors import SearchError
from lwlib.search.index import SpecIndex
from lwlib.search.single import rank_single, score_single
from lwlib.rkme.kernels import mmd2_batch
from lwlib.rkme.rkme import RKMETableSpec

D, N = 8, 24


def _fit(X: np.ndarray, k: int = 15) -> RKMETableSpec:
    return RKMETableSpec(reduced_set_size=k, n_iter=1).fit(X)


@pytest.fixture(scope="module")
def market() -> dict:
    rng = np.random.default_rng(1)
    means = rng.normal(0.0, 2.5, (N, D))
    scales = rng.uniform(0.5, 1.5, N)
    specs = [_fit(rng.normal(m, s, (200, D))) for m, s in zip(means, scales)]
    ids = [f"lw{i:02d}" for i in range(N)]
    return {"rng": rng, "means": means, "scales": scales, "specs": specs, "ids": ids,
            "index": SpecIndex.build(ids, specs)}


@pytest.mark.parametrize("kernel", ["market", "reference"])
def test_own_distribution_is_top1(market, kernel) -> None:
    rng = np.random.default_rng(7)
    for j in (0, 5, 17):
        user = _fit(rng.normal(market["means"][j], market["scales"][j], (300, D)))
        top = rank_single(market["index"], user, top_k=3, kernel=kernel)
        assert top[0].learnware_id == market["ids"][j]
        assert [m.rank for m in top] == [0, 1, 2]
        assert top[0].mmd2 <= top[1].mmd2 <= top[2].mmd2
        assert top[0].score > top[1].score


def test_batched_equals_per_pair_reference_kernel(market) -> None:
    user = _fit(np.random.default_rng(3).normal(0.0, 2.0, (300, D)))
    ranking = score_single(market["index"], user, kernel="reference", shortlist=None)
    assert ranking.view.gamma == user.gamma_
    pair = {i: user.mmd2(s) for i, s in zip(market["ids"], market["specs"])}
    got = dict(zip(ranking.ids, ranking.mmd2))
    assert set(got) == set(pair)
    for i in pair:
        assert got[i] == pytest.approx(pair[i], rel=1e-9, abs=1e-12)


def test_batched_equals_per_pair_market_kernel(market) -> None:
    user = _fit(np.random.default_rng(4).normal(1.0, 1.0, (300, D)))
    ranking = score_single(market["index"], user, kernel="market", shortlist=None)
    view = ranking.view
    assert view.shift is not None and view.gamma > 0

    def std_copy(s: RKMETableSpec) -> RKMETableSpec:
        c = RKMETableSpec()
        c.z_, c.beta_, c.gamma_ = (s.z_ - view.shift) / view.scale, s.beta_, view.gamma
        return c

    q = std_copy(user)
    for i, lid in enumerate(ranking.ids):
        s = market["specs"][market["ids"].index(lid)]
        assert ranking.mmd2[i] == pytest.approx(q.mmd2(std_copy(s)), rel=1e-9, abs=1e-12)
    # and against the spec package's own batched routine
    other = mmd2_batch(q.z_, q.beta_, view.Zs.numpy(), view.betas.numpy(), view.gamma)
    order = [market["index"].positions[i][1] for i in ranking.ids]
    np.testing.assert_allclose(ranking.mmd2, other[order], rtol=1e-9, atol=1e-12)


def test_sketch_shortlist_keeps_the_exact_top(market) -> None:
    rng = np.random.default_rng(11)
    for j in (2, 9):
        user = _fit(rng.normal(market["means"][j], market["scales"][j], (300, D)))
        exact = [m.learnware_id for m in rank_single(market["index"], user, top_k=3, shortlist=None)]
        short = [m.learnware_id for m in rank_single(market["index"], user, top_k=3, shortlist=8)]
        assert short[0] == exact[0]
        assert len(set(short) & set(exact)) >= 2


def test_candidates_restrict_and_incompatible_dims(market) -> None:
    rng = np.random.default_rng(5)
    user = _fit(rng.normal(market["means"][3], market["scales"][3], (200, D)))
    allowed = market["ids"][10:14]
    got = rank_single(market["index"], user, top_k=None, candidates=allowed)
    assert sorted(m.learnware_id for m in got) == sorted(allowed)
    assert rank_single(market["index"], user, candidates=["nope"]) == []
    other_dim = _fit(rng.normal(0, 1, (100, D + 1)))
    assert rank_single(market["index"], other_dim) == []


def test_index_groups_by_dimension_and_validates() -> None:
    rng = np.random.default_rng(0)
    specs = [_fit(rng.normal(0, 1, (60, d)), k=5) for d in (3, 3, 4)]
    idx = SpecIndex.build(["a", "b", "c"], specs)
    assert sorted(idx.groups) == [("RKMETableSpecification", 3), ("RKMETableSpecification", 4)]
    assert len(idx) == 3
    with pytest.raises(SearchError):
        SpecIndex.build(["a", "a"], specs[:2])
    with pytest.raises(SearchError):
        SpecIndex.build(["a"], [RKMETableSpec()])
    with pytest.raises(SearchError):
        score_single(idx, RKMETableSpec())


def test_market_bandwidth_rules(market) -> None:
    local = market["index"].groups[("RKMETableSpecification", D)].view("market")
    glob = SpecIndex.build(market["ids"], market["specs"], bandwidth="global")
    g = glob.groups[("RKMETableSpecification", D)].view("market")
    assert g.gamma < local.gamma  # the pooled market is wider than any single learnware
    np.testing.assert_allclose(g.shift, local.shift)
    with pytest.raises(SearchError):
        SpecIndex.build(market["ids"], market["specs"], bandwidth="wide")
