"""Labelled search: the labels find the learnware P(X) cannot tell apart, and the result says what decided."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from lwlib.errors import SearchError
from lwlib.reuse import InProcessLearnware
from lwlib.rkme.label_aware import make_label_aware_spec
from lwlib.rkme.rkme import RKMETableSpec
from lwlib.search.evidence import combine_evidence
from lwlib.search.labelled import LabelledSearcher
from lwlib.search.requirement import Requirement

RULES = 4


@pytest.fixture(scope="module")
def market() -> dict:
    """Four learnwares on the same inputs (digits), each with its own labelling rule y -> (y + r) % 10."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, te = idx[:900], idx[900:]
    entries, predictors = [], {}
    for r in range(RULES):
        model = LogisticRegression(max_iter=2000).fit(X[tr], (y[tr] + r) % 10)
        rkme = RKMETableSpec(reduced_set_size=40, n_iter=2, random_state=r).fit(X[tr])
        la = make_label_aware_spec(rkme, model.predict, "classification", n_classes=10)
        entries.append((f"rule{r}", None, {rkme.type_name: rkme, la.type_name: la}))
        predictors[f"rule{r}"] = InProcessLearnware(f"rule{r}", model, rkme)
    return {"X": X, "y": y, "te": te, "entries": entries, "predictors": predictors,
            "searcher": LabelledSearcher(top_k=4).fit(entries)}


@pytest.mark.parametrize("rule", range(RULES))
def test_labels_find_the_rule_p_of_x_cannot_see(market, rule: int) -> None:
    X, y, te = market["X"], market["y"], market["te"]
    lab = np.random.default_rng(rule).choice(te, 20, replace=False)
    req = Requirement(X=X[te], X_labels=X[lab], y_labels=(y[lab] + rule) % 10)
    with_models = market["searcher"].search(req, predictors=market["predictors"])
    assert with_models.singles[0].learnware_id == f"rule{rule}"
    assert with_models.singles[0].label_loss is not None and with_models.singles[0].label_loss < 0.3
    assert with_models.evidence["decided_by"] in {"labels", "agreement", "combination", "specifications"}
    assert with_models.evidence["n_labels"] == 20 and 0.0 <= with_models.evidence["label_weight"] <= 1.0
    specs_only = market["searcher"].search(req)  # no model runs: the label-aware specs alone
    assert specs_only.singles[0].learnware_id == f"rule{rule}"
    assert specs_only.evidence["decided_by"] == "specifications"


def test_without_labels_it_is_the_p_of_x_search(market) -> None:
    X, te = market["X"], market["te"]
    res = market["searcher"].search(Requirement(X=X[te]))
    plain = market["searcher"].market_.search(None, user_X=X[te])
    assert [m.learnware_id for m in res.singles] == [m.learnware_id for m in plain.singles]
    assert res.evidence == {"decided_by": "P(X)", "n_labels": 0}


def test_predictors_can_be_opened_lazily_for_the_shortlist_only(market) -> None:
    X, y, te = market["X"], market["y"], market["te"]
    asked: list[str] = []

    def open_models(ids):
        asked.extend(ids)
        return {i: market["predictors"][i] for i in ids}

    lab = te[:15]
    market["searcher"].set_params(shortlist=1, evaluate_all=0)
    try:
        res = market["searcher"].search(Requirement(X=X[te], X_labels=X[lab], y_labels=(y[lab] + 2) % 10),
                                        predictors=open_models)
    finally:
        market["searcher"].set_params(shortlist=15, evaluate_all=200)
    assert 1 <= len(set(asked)) <= 2 and res.evidence["shortlist"] == len(set(asked))
    assert res.singles[0].learnware_id == "rule2"


def test_a_small_market_is_evaluated_whole(market) -> None:
    X, y, te = market["X"], market["y"], market["te"]
    asked: list[str] = []

    def open_models(ids):
        asked.extend(ids)
        return {i: market["predictors"][i] for i in ids}

    lab = te[:15]
    market["searcher"].set_params(shortlist=1)  # the shortlist would be 1-2 learnwares; the market has 4
    try:
        res = market["searcher"].search(Requirement(X=X[te], X_labels=X[lab], y_labels=(y[lab] + 3) % 10),
                                        predictors=open_models)
    finally:
        market["searcher"].set_params(shortlist=15)
    assert sorted(set(asked)) == [f"rule{r}" for r in range(RULES)] and res.evidence["shortlist"] == RULES
    assert res.singles[0].learnware_id == "rule3"


def test_pooled_noise_keeps_the_observed_order_when_the_specs_say_nothing() -> None:
    """With a flat prior, a learnware whose few rows happen to agree (small own variance) gets no extra weight:
    the combined order is the observed order (the winner's curse of per-learnware variances is avoided)."""
    rng = np.random.default_rng(3)
    per_row = rng.gamma(shape=rng.uniform(0.3, 3.0, size=(40, 1)), scale=1.0, size=(40, 20))
    flat = np.zeros((40, 1))
    pooled = combine_evidence(per_row, flat, task="regression")
    assert np.array_equal(np.argsort(pooled.posterior), np.argsort(pooled.empirical))
    assert np.allclose(pooled.label_weight, pooled.label_weight[0])
    with pytest.raises(ValueError, match="variance"):
        combine_evidence(per_row, flat, task="regression", variance="median")


def test_requirement_rejects_mismatched_labels() -> None:
    with pytest.raises(SearchError, match="one label per row"):
        Requirement(X_labels=np.zeros((3, 2)), y_labels=np.zeros(2))
    with pytest.raises(SearchError, match="both"):
        Requirement(X_labels=np.zeros((3, 2)))


def test_combination_trusts_labels_more_as_n_grows() -> None:
    rng = np.random.default_rng(1)
    truth = np.array([0.1, 0.3, 0.3, 0.4, 0.5, 0.6])
    prior_feature = np.array([0.6, 0.1, 0.2, 0.3, 0.4, 0.5])  # says learnware 1 is best; the truth is learnware 0
    weights = []
    for n in (5, 50, 500):
        per_row = (rng.random((6, n)) < truth[:, None]).astype(float)
        c = combine_evidence(per_row, prior_feature[:, None], task="classification")
        weights.append(float(c.label_weight.mean()))
    assert weights[0] < weights[1] < weights[2]
    assert int(np.argmin(c.posterior)) == 0
