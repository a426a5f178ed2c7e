from __future__ import annotations

import numpy as np
import pytest
from reuse_markets import fn_learnware, loss

from lwlib.errors import ReuseError
from lwlib.reuse import FeatureAugmentReuser
from lwlib.reuse.feature_augment import fit_augment_head


def test_beats_same_labels_alone_on_digits(digits_market) -> None:
    """Same head, same few labels (3 per class), with vs without the learnwares' outputs, on 3 label draws."""
    m = digits_market
    for seed in range(3):
        rng = np.random.default_rng(seed)
        lab = np.concatenate([rng.choice(np.flatnonzero(m.y_user == k), 3, replace=False) for k in range(4)])
        r = FeatureAugmentReuser(m.learnwares, task="classification").fit(m.X_user[lab], m.y_user[lab])
        alone, _ = fit_augment_head(m.X_user[lab], [], m.y_user[lab], task="classification")
        got = loss("classification", r.predict(m.X_user), m.y_user)
        assert got < loss("classification", alone.predict(m.X_user), m.y_user)
        assert got < 0.5 * m.single_losses().mean()
    proba = r.predict_proba(m.X_user)
    assert proba.shape == (m.X_user.shape[0], 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(r.classes_, [0, 1, 2, 3])


def test_regression_with_an_informative_learnware() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(300, 2))
    y = np.sin(3 * X[:, 0]) + 0.05 * rng.normal(size=300)
    lw = fn_learnware("sine", lambda X: np.sin(3 * X[:, 0]))
    r = FeatureAugmentReuser([lw], task="regression").fit(X[:20], y[:20])
    alone = FeatureAugmentReuser([fn_learnware("zero", lambda X: np.zeros(len(X)))], task="regression")
    alone.fit(X[:20], y[:20])
    assert loss("regression", r.predict(X[20:]), y[20:]) < 0.2 * loss("regression", alone.predict(X[20:]), y[20:])


def test_label_outputs_are_one_hot_and_nonfinite_cells_filled() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)

    def flaky(X: np.ndarray) -> np.ndarray:
        out = X[:, :2].copy()
        out[::3, 1] = np.nan
        return out

    lws = [fn_learnware("labels", lambda X: (X[:, 0] > 0).astype(int)), fn_learnware("flaky", flaky)]
    r = FeatureAugmentReuser(lws).fit(X, y)
    assert r.augment_["output_classes"] == [0, 1]
    assert r.augment_["label_outputs"] == [True, False]
    assert len(r.augment_["fill_values"]) == 3 + 2 + 2
    assert (r.predict(X) == y).mean() > 0.9


def test_single_class_is_rejected() -> None:
    with pytest.raises(ReuseError, match="two classes"):
        FeatureAugmentReuser([fn_learnware("a", lambda X: X[:, 0])]).fit(np.zeros((5, 2)), np.zeros(5))
