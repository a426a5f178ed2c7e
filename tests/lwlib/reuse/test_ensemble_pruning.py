from __future__ import annotations

import numpy as np
import pytest
from reuse_markets import fn_learnware, loss

from lwlib.errors import ReuseError
from lwlib.reuse import EnsemblePruningReuser
from lwlib.reuse.ensemble_pruning import greedy_selection


@pytest.mark.parametrize("market", ["regression_market", "digits_market"])
def test_small_labelled_set_beats_mean_in_market(market: str, request: pytest.FixtureRequest) -> None:
    m = request.getfixturevalue(market)
    r = EnsemblePruningReuser(m.learnwares, task=m.task).fit(m.X_lab, m.y_lab)
    assert set(r.selected_) <= {0, 1}  # only the learnwares of the user's regions survive
    assert loss(m.task, r.predict(m.X_user), m.y_user) < 0.75 * m.single_losses().mean()
    np.testing.assert_allclose(r.weights_.sum(), 1.0)


def test_greedy_keeps_the_good_learnware_and_drops_noise() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    noisy = [rng.integers(0, 3, 60) for _ in range(3)]
    counts, errors = greedy_selection([noisy[0], y.copy(), noisy[1], noisy[2]], y, task="classification",
                                      max_size=6)
    assert counts[1] >= 1 and counts[[0, 2, 3]].sum() == 0
    assert errors.min() == 0.0


def test_regression_greedy_finds_the_averaging_pair() -> None:
    y = np.linspace(0, 1, 50)
    outs = [y + 1.0, y - 1.0, y + 5.0]  # the mean of the first two is exact
    counts, errors = greedy_selection(outs, y, task="regression", max_size=4)
    assert counts[0] == counts[1] and counts[2] == 0
    assert errors.min() < 1e-12


def test_margin_breaks_error_ties() -> None:
    # two candidates with the same (zero) error after the first pick; the second adds margin, the third not
    y = np.array([0, 0, 1, 1])
    a = np.array([0, 0, 1, 1])
    wrong_half = np.array([0, 1, 1, 0])
    counts, _ = greedy_selection([a, wrong_half, a.copy()], y, task="classification", max_size=1)
    assert counts[1] == 0


def test_max_size_bounds_the_ensemble(regression_market) -> None:
    m = regression_market
    r = EnsemblePruningReuser(m.learnwares, task="regression", max_size=3).fit(m.X_lab, m.y_lab)
    assert len(r.val_errors_) == 3
    assert np.all(np.diff(np.minimum.accumulate(r.val_errors_)) <= 0)


def test_needs_labels() -> None:
    lws = [fn_learnware("a", lambda X: X[:, 0])]
    with pytest.raises(ReuseError) as err:
        EnsemblePruningReuser(lws).fit(np.zeros((3, 2)))
    assert err.value.code == "labels_required"
