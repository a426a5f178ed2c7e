"""One contract for every searcher and spec (issue 14 §6): fit returns self, search(Requirement) -> SearchResult."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from lwlib.base import clone
from lwlib.errors import NotFittedError
from lwlib.rkme.label_aware import LabelAwareSpec, make_label_aware_spec
from lwlib.rkme.rkme import RKMETableSpec
from lwlib.search import LabelledSearcher, MarketSearcher, Requirement, SearchResult, SemanticSearcher
from lwlib.search.hetero import HeteroSearcher
from lwlib.semantic import make_semantic_spec

D = 4


class _Sign:
    def __init__(self, j: int) -> None:
        self.j, self.id = j, f"lw{j}"

    def predict(self, X: Any) -> np.ndarray:
        return (np.asarray(X)[:, self.j % D] > 0).astype(int)


@pytest.fixture(scope="module")
def market() -> dict:
    rng = np.random.default_rng(0)
    entries, preds = [], {}
    for j in range(4):
        X = rng.normal(j, 1.0, (120, D))
        rkme = RKMETableSpec(reduced_set_size=10, n_iter=1).fit(X)
        la = make_label_aware_spec(rkme, _Sign(j).predict, "classification", n_classes=2)
        sem = make_semantic_spec(name=f"model {j}", description="toy", task_type="Classification",
                                 input_dimension=D, output_dimension=2,
                                 input_descriptions={i: f"feature {i}" for i in range(D)})
        entries.append((f"lw{j}", sem, {rkme.type_name: rkme, la.type_name: la}))
        preds[f"lw{j}"] = _Sign(j)
    X = rng.normal(1, 1.0, (80, D))
    req = Requirement(X=X, X_labels=X[:10], y_labels=_Sign(1).predict(X[:10]), descriptions={i: f"feature {i}"
                                                                                              for i in range(D)})
    return {"entries": entries, "req": req, "preds": preds}


SEARCHERS: dict[str, Callable[[], Any]] = {
    "semantic": SemanticSearcher, "market": MarketSearcher, "hetero": HeteroSearcher, "labelled": LabelledSearcher}


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_searcher_contract(name: str, market: dict) -> None:
    searcher = SEARCHERS[name]()
    with pytest.raises(NotFittedError):
        searcher.search(market["req"])
    assert searcher.fit(market["entries"]) is searcher
    res = searcher.search(market["req"])
    assert isinstance(res, SearchResult) and not res.empty
    assert set(res.to_dict()) >= {"singles", "mixtures", "semantic", "kernel", "message", "evidence"}
    twin = clone(searcher)
    assert twin.get_params() == searcher.get_params()
    with pytest.raises(NotFittedError):
        twin.search(market["req"])


def test_labelled_searcher_reports_the_evidence(market: dict) -> None:
    res = LabelledSearcher().fit(market["entries"]).search(market["req"], predictors=market["preds"])
    assert res.evidence["n_labels"] == 10 and res.evidence["decided_by"]
    assert res.singles[0].label_loss is not None


SPECS: dict[str, Callable[[np.ndarray], Any]] = {
    "rkme": lambda X: RKMETableSpec(reduced_set_size=8, n_iter=1).fit(X),
    "label_aware": lambda X: make_label_aware_spec(RKMETableSpec(reduced_set_size=8, n_iter=1).fit(X),
                                                   _Sign(0).predict, "classification", n_classes=2),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_contract(name: str) -> None:
    X = np.random.default_rng(1).normal(size=(60, D))
    spec = SPECS[name](X)
    back = type(spec).from_dict(spec.to_dict())
    assert back.to_dict() == spec.to_dict()
    assert type(spec)().get_params() == clone(type(spec)()).get_params()
    with pytest.raises(NotFittedError):
        type(spec)().to_dict()
    if isinstance(spec, LabelAwareSpec):
        assert spec.fit(np.zeros((3, D)), None, np.array([0, 1, 1])) is spec
