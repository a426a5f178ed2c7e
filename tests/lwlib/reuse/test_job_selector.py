from __future__ import annotations

import numpy as np
import pytest
from reuse_markets import fn_learnware, loss

from lwlib.errors import ReuseError
from lwlib.reuse import InProcessLearnware, JobSelectorReuser
from lwlib.reuse.job_selector import sample_rkme


def test_single_learnware_gets_every_row() -> None:
    lw = fn_learnware("only", lambda X: X.sum(axis=1))
    X = np.arange(12.0).reshape(6, 2)
    r = JobSelectorReuser([lw], task="regression").fit(X)
    assert r.router_ is None and r.parts() == {}
    np.testing.assert_array_equal(r.predict(X), X.sum(axis=1))
    np.testing.assert_array_equal(r.route(X), np.zeros(6))


@pytest.mark.parametrize("market", ["regression_market", "digits_market"])
def test_beats_mean_in_market_and_best_single(market: str, request: pytest.FixtureRequest) -> None:
    m = request.getfixturevalue(market)
    singles = m.single_losses()
    r = JobSelectorReuser(m.learnwares, task=m.task).fit(m.X_user)
    got = loss(m.task, r.predict(m.X_user), m.y_user)
    assert got < 0.5 * singles.mean()
    assert got < 0.5 * singles.min()  # routing by region beats any single expert on a two-region task
    assert r.mixture_weights_[:2].sum() > 0.9


def test_routes_rows_to_their_region(regression_market) -> None:
    m = regression_market
    r = JobSelectorReuser(m.learnwares, task="regression", router="logistic").fit(m.X_user)
    region = np.repeat([0, 1], m.X_user.shape[0] // 2)
    assert (r.route(m.X_user) == region).mean() > 0.95


def test_one_call_per_learnware(regression_market) -> None:
    m = regression_market
    counted = [InProcessLearnware(lw.id, _Counting(lw.model), lw.spec) for lw in m.learnwares]
    r = JobSelectorReuser(counted, task="regression", herding_size=300).fit(m.X_user)
    r.predict(m.X_user)
    calls = [len(lw.model.calls) for lw in counted]
    assert max(calls) <= 1 and sum(lw.model.calls[0] for lw in counted if lw.model.calls) == m.X_user.shape[0]


class _Counting:
    def __init__(self, model: object) -> None:
        self.model, self.calls = model, []

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(X.shape[0])
        return self.model.predict(X)


def test_without_user_data_weights_are_uniform(regression_market) -> None:
    m = regression_market
    r = JobSelectorReuser(m.learnwares, task="regression", herding_size=200).fit()
    np.testing.assert_allclose(r.mixture_weights_, np.full(5, 0.2))
    assert r.predict(m.X_user).shape == (m.X_user.shape[0],)


def test_missing_spec_is_a_clear_error() -> None:
    lws = [fn_learnware("a", lambda X: X[:, 0]), fn_learnware("b", lambda X: X[:, 0])]
    with pytest.raises(ReuseError, match="'a'") as err:
        JobSelectorReuser(lws).fit(np.zeros((3, 2)))
    assert err.value.code == "spec_required"


def test_sampling_noise_follows_feature_units(regression_market) -> None:
    spec = regression_market.learnwares[0].spec
    beta_before = spec.beta_.copy()
    scaled = type("S", (), {"z_": spec.z_ * np.array([1.0, 1000.0, 1.0, 1.0]), "beta_": spec.beta_})()
    a = sample_rkme(spec, 2000, np.random.default_rng(0))
    b = sample_rkme(scaled, 2000, np.random.default_rng(0))
    np.testing.assert_allclose(b[:, 1], a[:, 1] * 1000.0, rtol=1e-9)
    np.testing.assert_allclose(b[:, 0], a[:, 0])
    np.testing.assert_array_equal(spec.beta_, beta_before)  # β is never modified in place
