"""MarketSearcher end to end: semantic filter → single + mixture, digits-scale data, empty results."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lwlib.base import clone
from lwlib.errors import LwdockError, NotFittedError
from lwlib.search.searcher import MarketSearcher, SearchEntry
from lwlib.semantic import SemanticQuery, make_semantic_spec
from lwlib.rkme.rkme import RKMETableSpec

D, N = 12, 20


def _fit(X: np.ndarray, k: int = 20) -> RKMETableSpec:
    return RKMETableSpec(reduced_set_size=k, n_iter=1).fit(X)


@pytest.fixture(scope="module")
def market() -> dict:
    rng = np.random.default_rng(5)
    means = rng.normal(0.0, 2.0, (N, D))
    entries = []
    for i, m in enumerate(means):
        sem = make_semantic_spec(name=f"cluster model {i}", description=f"gaussian blob number {i}",
                                 task_type="Regression" if i % 2 else "Classification",
                                 scenarios=["Nature"] if i < 10 else ["Business"], input_dimension=D,
                                 output_dimension=1 if i % 2 else 3)
        entries.append(SearchEntry(f"id{i:02d}", sem, {"RKMETableSpecification": _fit(rng.normal(m, 1.0, (250, D)))}))
    return {"means": means, "entries": entries, "searcher": MarketSearcher().fit(entries)}


def test_user_data_finds_its_learnware(market) -> None:
    rng = np.random.default_rng(8)
    res = market["searcher"].search(user_X=rng.normal(market["means"][6], 1.0, (300, D)))
    assert res.singles[0].learnware_id == "id06"
    assert res.singles[0].score > 0.8
    assert len(res.singles) == 10
    assert res.kernel["mode"] == "market" and res.kernel["n_features"] == D and res.kernel["gamma"] > 0
    assert not res.empty and "single" in res.message


def test_semantic_filter_restricts_statistical_search(market) -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(market["means"][6], 1.0, (300, D))
    res = market["searcher"].search(SemanticQuery(scenarios=["Business"]), user_X=X)
    assert res.singles and all(int(s.learnware_id[2:]) >= 10 for s in res.singles)
    assert {m.learnware_id for m in res.semantic} == {f"id{i}" for i in range(10, 20)}
    res = market["searcher"].search(SemanticQuery(name="clustr model 6"), user_X=X)
    assert res.singles[0].learnware_id == "id06"


def test_mixture_from_user_data(market) -> None:
    rng = np.random.default_rng(10)
    X = np.vstack([rng.normal(market["means"][2], 1.0, (700, D)), rng.normal(market["means"][15], 1.0, (300, D))])
    for mode in ("greedy", "joint"):
        res = MarketSearcher(mixture=mode).fit(market["entries"]).search(user_X=X)
        assert len(res.mixtures) == 1
        w = dict(zip(res.mixtures[0].learnware_ids, res.mixtures[0].weights))
        assert w["id02"] == pytest.approx(0.7, abs=0.15) and w["id15"] == pytest.approx(0.3, abs=0.15)


def test_empty_results_carry_a_message(market) -> None:
    s = market["searcher"]
    res = s.search(SemanticQuery(name="nothing like this at all xyz"), user_X=np.zeros((5, D)))
    assert res.empty and "semantic" in res.message
    res = s.search(user_spec=_fit(np.random.default_rng(0).normal(0, 1, (50, D + 3)), k=5))
    assert res.empty and str(D + 3) in res.message
    res = s.search()
    assert res.empty and res.message
    res = s.search(SemanticQuery(task_type=["Regression"]))
    assert len(res.semantic) == 10 and not res.singles and "statistical" in res.message
    md = res.to_markdown()
    assert "`id01`" in md and "`id00`" not in md  # the semantic table lists only regression learnwares


def test_reference_style_scoring(market) -> None:
    rng = np.random.default_rng(12)
    X = rng.normal(market["means"][4], 1.0, (300, D))
    res = MarketSearcher(kernel="reference", scoring="reference").fit(market["entries"]).search(user_X=X)
    assert res.singles[0].learnware_id == "id04"
    assert all(s.score >= 0.6 for s in res.singles)
    assert res.kernel["mode"] == "reference" and res.kernel["gamma"] == pytest.approx(0.1)


def test_estimator_contract(market) -> None:
    with pytest.raises(NotFittedError):
        MarketSearcher().search(user_X=np.zeros((3, D)))
    s = clone(MarketSearcher(top_k=3, mixture="joint"))
    assert s.get_params()["top_k"] == 3
    assert s.fit(market["entries"]) is s
    with pytest.raises(LwdockError):
        MarketSearcher(mixture="magic").fit(market["entries"])
    d = s.search(user_X=np.random.default_rng(1).normal(market["means"][0], 1.0, (200, D))).to_dict()
    assert len(d["singles"]) == 3 and isinstance(d["kernel"], dict)


def test_digits_market_kernel_fixes_collapsed_reference_kernel() -> None:
    X, y = load_digits(return_X_y=True)  # pixel values 0..16: γ=0.1 on raw features collapses
    rng = np.random.default_rng(0)
    entries, users = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        half = len(idx) // 2
        entries.append((f"digit{c}", None, _fit(X[idx[:half]])))
        users.append(X[idx[half:]])
    specs = [_fit(u) for u in users]
    hits = {}
    for kernel in ("market", "reference"):
        s = MarketSearcher(kernel=kernel, max_mixture=0).fit(entries)
        hits[kernel] = [s.search(user_spec=q).singles[0].learnware_id for q in specs]
    assert hits["market"] == [f"digit{c}" for c in range(10)]
    assert sum(h == f"digit{c}" for c, h in enumerate(hits["reference"])) <= 3
    assert len(set(hits["reference"])) <= 2  # the collapse: (almost) everyone gets the same learnware
