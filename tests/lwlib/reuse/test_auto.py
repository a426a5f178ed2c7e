"""The auto guard: never worse than top-1 where the dock can know (issue 11's 49 % case)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from lwlib.reuse import InProcessLearnware
from lwlib.reuse.auto import REUSER_KINDS, choose_reuser_auto, label_shift_pvalue, make_reuser
from lwlib.rkme.label_aware import make_label_aware_spec
from lwlib.rkme.rkme import RKMETableSpec
from lwlib.search import MarketSearcher
from lwlib.search.result import MixtureMatch, SearchResult, SingleMatch


@pytest.fixture(scope="module")
def digits_case() -> dict:
    """A model of all ten digits and one of digits 0-4; the user holds all ten digits."""
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:1000], idx[1000:]
    low = tr[y[tr] < 5]
    models = {"all": LogisticRegression(max_iter=3000).fit(X[tr], y[tr]),
              "low": LogisticRegression(max_iter=3000).fit(X[low], y[low])}
    specs = {"all": RKMETableSpec().fit(X[tr]), "low": RKMETableSpec().fit(X[low])}
    las = {k: make_label_aware_spec(specs[k], models[k].predict, "classification", n_classes=10) for k in models}
    preds = {k: InProcessLearnware(k, models[k], specs[k]) for k in models}
    result = MarketSearcher().fit([(k, None, specs[k]) for k in models]).search(None, user_X=X[te])
    return {"X": X, "y": y, "te": te, "result": result, "las": las, "preds": preds}


def _accuracy(case: dict, choice) -> float:
    members = [case["preds"][i] for i in choice.learnware_ids]
    reuser = make_reuser(choice.kind, members, choice.weights if choice.kind == "averaging" else None,
                         "classification").fit(case["X"][case["te"]])
    return float((reuser.predict(case["X"][case["te"]]) == case["y"][case["te"]]).mean())


def test_the_49_percent_case_deploys_top1_without_labels(digits_case) -> None:
    res = digits_case["result"]
    assert res.singles[0].learnware_id == "all"
    uniform = make_reuser("averaging", [digits_case["preds"]["all"], digits_case["preds"]["low"]], [0.5, 0.5],
                          "classification").fit(digits_case["X"][digits_case["te"]])
    averaged = float((uniform.predict(digits_case["X"][digits_case["te"]]) == digits_case["y"][digits_case["te"]])
                     .mean())
    choice = choose_reuser_auto(res, task="classification", X=digits_case["X"][digits_case["te"]],
                                label_specs=digits_case["las"])
    assert choice.kind == "top1" and choice.learnware_ids == ("all",) and choice.weights == (1.0,)
    assert _accuracy(digits_case, choice) > averaged + 0.2  # the case the issue measured: ~0.49 vs ~0.96
    assert "rule" in choice.evidence


def test_the_49_percent_case_deploys_top1_with_labels(digits_case) -> None:
    X, y, te = digits_case["X"], digits_case["y"], digits_case["te"]
    lab = np.random.default_rng(3).choice(te, 20, replace=False)
    choice = choose_reuser_auto(digits_case["result"], task="classification", X=X[te], X_labels=X[lab],
                                y_labels=y[lab], predictors=digits_case["preds"], label_specs=digits_case["las"])
    assert choice.learnware_ids == ("all",)
    assert choice.evidence["held_out_loss"]["top1"] <= min(choice.evidence["held_out_loss"].values()) + 0.2


def _result(mix_mmd2: float, weights=(0.5, 0.5)) -> SearchResult:
    singles = (SingleMatch("a", 0.9, 1.0, 0), SingleMatch("b", 0.8, 1.2, 1))
    return SearchResult(singles=singles, mixtures=(MixtureMatch(("a", "b"), tuple(weights), 0.95, mix_mmd2),))


def test_without_label_specs_a_classification_mixture_needs_a_large_gain() -> None:
    assert choose_reuser_auto(_result(0.8), task="classification").kind == "top1"
    big = choose_reuser_auto(_result(0.3, (0.7, 0.3)), task="classification")
    assert big.kind == "averaging" and big.weights == (0.7, 0.3)  # exactly the weights deployed and recorded


def test_diffuse_weights_warn() -> None:
    assert choose_reuser_auto(_result(0.3, (0.5, 0.5)), task="regression").warnings
    assert not choose_reuser_auto(_result(0.3, (0.8, 0.2)), task="regression").warnings


def test_reuser_kinds_literal_lists_auto_and_concrete_kinds() -> None:
    assert REUSER_KINDS[0] == "auto" and {"top1", "ensemble_pruning", "feature_augment"} <= set(REUSER_KINDS)


def test_top1_guard_holds_when_models_could_run(digits_case) -> None:
    choice = choose_reuser_auto(digits_case["result"], task="classification", X=digits_case["X"][digits_case["te"]],
                                label_specs=digits_case["las"], predictors=digits_case["preds"])
    assert choice.kind == "top1" and choice.learnware_ids == ("all",)


def test_job_selector_weights_are_the_ones_its_fit_uses(digits_case) -> None:
    X = digits_case["X"][digits_case["te"]]
    choice = choose_reuser_auto(digits_case["result"], task="classification", X=X, predictors=digits_case["preds"],
                                route_split=1.01)  # route whatever the split, to compare weights
    assert choice.kind == "job_selector"
    fitted = make_reuser("job_selector", [digits_case["preds"][i] for i in choice.learnware_ids], None,
                         "classification").fit(X)
    np.testing.assert_allclose(fitted.mixture_weights_, choice.weights)
    assert fitted.to_solution()["weights"] == pytest.approx(list(choice.weights))


def test_without_label_specs_the_49_percent_case_still_deploys_top1(digits_case) -> None:
    """No label-aware specs: the router sends (almost) every row to one member and the mixture gains little."""
    X = digits_case["X"][digits_case["te"]]
    choice = choose_reuser_auto(digits_case["result"], task="classification", X=X, predictors=digits_case["preds"])
    assert choice.kind == "top1" and choice.learnware_ids == ("all",)
    assert max(choice.evidence["route_share"].values()) >= 0.8
    assert choice.warnings  # 0.53 / 0.47: diffuse, the user is told to give labels


@pytest.fixture(scope="module")
def split_case() -> dict:
    """Two experts on separate input regions with their own classes; the user's rows come from both regions."""
    rng = np.random.default_rng(1)

    def region(centre: float, classes: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(classes, n)
        X = rng.normal(centre, 1.0, (n, 5))
        X[:, 0] += np.where(y == classes[0], -1.5, 1.5)  # the classes differ along the first feature
        return X, y

    (Xa, ya), (Xb, yb) = region(0.0, (0, 1), 400), region(6.0, (2, 3), 400)
    (Xua, yua), (Xub, yub) = region(0.0, (0, 1), 260), region(6.0, (2, 3), 200)
    models = {"a": LogisticRegression().fit(Xa, ya), "b": LogisticRegression().fit(Xb, yb)}
    specs = {"a": RKMETableSpec().fit(Xa), "b": RKMETableSpec().fit(Xb)}
    las = {k: make_label_aware_spec(specs[k], models[k].predict, "classification", n_classes=4) for k in models}
    preds = {k: InProcessLearnware(k, models[k], specs[k]) for k in models}
    Xu, yu = np.vstack([Xua, Xub]), np.concatenate([yua, yub])
    result = MarketSearcher().fit([(k, None, specs[k]) for k in models]).search(None, user_X=Xu)
    return {"X": Xu, "y": yu, "result": result, "las": las, "preds": preds}


def test_a_split_mixture_is_routed_and_beats_top1(split_case) -> None:
    c = split_case
    choice = choose_reuser_auto(c["result"], task="classification", X=c["X"], predictors=c["preds"],
                                label_specs=c["las"])
    assert choice.kind == "job_selector" and set(choice.learnware_ids) == {"a", "b"}
    assert max(choice.evidence["route_share"].values()) < 0.8  # the evidence shown to the user
    deployed = make_reuser("job_selector", [c["preds"][i] for i in choice.learnware_ids], None,
                           "classification").fit(c["X"])
    top = c["result"].singles[0].learnware_id
    top_acc = float((c["preds"][top].predict(c["X"]) == c["y"]).mean())
    assert float((deployed.predict(c["X"]) == c["y"]).mean()) > top_acc + 0.3  # top-1 knows two of four classes


def test_a_concentrated_router_with_a_small_gain_deploys_top1(split_case) -> None:
    """The same mixture, but the router would send ≥ route_split of the rows to one member: top-1, not routing."""
    c = split_case
    choice = choose_reuser_auto(c["result"], task="classification", X=c["X"], predictors=c["preds"],
                                label_specs=c["las"], route_split=0.0, mixture_gain=0.0)
    assert choice.kind == "top1" and choice.learnware_ids == (c["result"].singles[0].learnware_id,)
    assert "top-1 deployed" in choice.evidence["rule"]


def test_label_shift_test_separates_shifted_rows_from_a_sample_of_the_users() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    same = rng.normal(size=(40, 5))
    shifted = rng.normal(loc=1.0, size=(40, 5))
    assert label_shift_pvalue(same, X) > 0.05
    assert label_shift_pvalue(shifted, X) < 0.01


def test_shifted_labels_veto_label_learning_reusers(digits_case) -> None:
    """Labelled rows unlike the user's rows: cross-validation on them cannot vouch for a reuser fitted on them."""
    c = digits_case
    rng = np.random.default_rng(1)
    lab = rng.choice(len(c["X"]), 60, replace=False)
    ones = np.flatnonzero(c["y"] == 1)  # the user's rows: one digit only, unlike the labelled mix of all ten
    choice = choose_reuser_auto(c["result"], task="classification", X=c["X"][ones], X_labels=c["X"][lab],
                                y_labels=c["y"][lab], predictors=c["preds"], label_specs=c["las"])
    assert choice.evidence["label_shift_p"] < 0.05
    assert "ensemble_pruning" not in choice.evidence["held_out_loss"]
    assert "feature_augment" not in choice.evidence["held_out_loss"]
    assert choice.warnings and "do not look like" in choice.warnings[0]
