from __future__ import annotations

import numpy as np
import pytest
from reuse_markets import fn_learnware, loss

from lwlib.errors import LwdockError, ReuseError
from lwlib.reuse import AveragingReuser, JobSelectorReuser

X = np.zeros((4, 2))


def test_mean_is_per_output_column() -> None:
    a = fn_learnware("a", lambda X: np.tile([1.0, 10.0], (len(X), 1)))
    b = fn_learnware("b", lambda X: np.tile([3.0, 30.0], (len(X), 1)))
    pred = AveragingReuser([a, b], task="regression").fit().predict(X)
    np.testing.assert_allclose(pred, np.tile([2.0, 20.0], (4, 1)))
    w = AveragingReuser([a, b], task="regression", weights=[3, 1]).fit().predict(X)
    np.testing.assert_allclose(w, np.tile([1.5, 15.0], (4, 1)))


def test_probabilities_are_averaged_without_softmax() -> None:
    a = fn_learnware("a", lambda X: np.tile([0.9, 0.1], (len(X), 1)))
    b = fn_learnware("b", lambda X: np.tile([0.4, 0.6], (len(X), 1)))
    r = AveragingReuser([a, b], mode="vote_by_prob").fit()
    np.testing.assert_allclose(r.predict_proba(X), np.tile([0.65, 0.35], (4, 1)))
    np.testing.assert_array_equal(r.predict(X), np.zeros(4))


def test_logits_are_softmaxed() -> None:
    a = fn_learnware("a", lambda X: np.tile([2.0, -1.0], (len(X), 1)))
    proba = AveragingReuser([a]).fit().predict_proba(X)
    np.testing.assert_allclose(proba[0], np.exp([2.0, -1.0]) / np.exp([2.0, -1.0]).sum())


def test_weighted_label_vote() -> None:
    lws = [fn_learnware(str(i), lambda X, v=v: np.full(len(X), v)) for i, v in enumerate((5, 7, 7))]
    assert set(AveragingReuser(lws, mode="vote_by_label").fit().predict(X)) == {7}
    assert set(AveragingReuser(lws, mode="vote_by_label", weights=[0.6, 0.2, 0.2]).fit().predict(X)) == {5}


def test_zero_weight_learnwares_are_not_called() -> None:
    def boom(X: np.ndarray) -> np.ndarray:
        raise RuntimeError("must not be called")

    r = AveragingReuser([fn_learnware("a", lambda X: X[:, 0]), fn_learnware("b", boom)], task="regression",
                        weights=[1.0, 0.0]).fit()
    np.testing.assert_array_equal(r.predict(X), X[:, 0])
    assert r.to_solution()["learnware_ids"] == ["a"]


def test_bad_weights_and_modes_raise() -> None:
    lws = [fn_learnware("a", lambda X: X[:, 0]), fn_learnware("b", lambda X: X[:, 0])]
    with pytest.raises(ReuseError, match="2 learnwares"):
        AveragingReuser(lws, weights=[1.0]).fit()
    with pytest.raises(LwdockError, match="weights"):
        AveragingReuser(lws, weights=[-1.0, 2.0]).fit()
    with pytest.raises(ReuseError, match="regression"):
        AveragingReuser(lws, task="regression", mode="vote_by_label").fit()
    with pytest.raises(ReuseError, match="fit\\(X\\)"):
        AveragingReuser(lws, weights="mixture").fit()


@pytest.mark.parametrize("market", ["regression_market", "digits_market"])
def test_mixture_weights_beat_mean_in_market(market: str, request: pytest.FixtureRequest) -> None:
    m = request.getfixturevalue(market)
    baseline = m.single_losses().mean()
    r = AveragingReuser(m.learnwares, task=m.task, weights="mixture").fit(m.X_user)
    assert r.weights_[:2].sum() > 0.9  # the two regions the user mixes carry the weight
    got = loss(m.task, r.predict(m.X_user), m.y_user)
    assert got < 0.5 * baseline
    # weights handed over from elsewhere (e.g. a search's mixture) give the same reuser
    same = AveragingReuser(m.learnwares, task=m.task, weights=r.weights_).fit()
    np.testing.assert_array_equal(same.predict(m.X_user), r.predict(m.X_user))
    # and uniform weights over the whole market are worse
    uniform = AveragingReuser(m.learnwares, task=m.task).fit()
    assert got < loss(m.task, uniform.predict(m.X_user), m.y_user)


def test_mixture_weights_match_job_selector_weights(regression_market) -> None:
    m = regression_market
    a = AveragingReuser(m.learnwares, task="regression", weights="mixture").fit(m.X_user)
    j = JobSelectorReuser(m.learnwares, task="regression", herding_size=200).fit(m.X_user)
    np.testing.assert_allclose(a.weights_, j.mixture_weights_)
