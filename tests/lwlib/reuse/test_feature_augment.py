from __future__ import annotations

import numpy as np
import pytest
from conftest import fn_learnware, loss
from sklearn.linear_model import LogisticRegressionCV

from lwlib.errors import ReuseError
from lwlib.reuse import FeatureAugmentReuser


def test_beats_same_labels_alone_on_digits(digits_market) -> None:
    m = digits_market
    r = FeatureAugmentReuser(m.learnwares, task="classification").fit(m.X_lab, m.y_lab)
    alone = LogisticRegressionCV(Cs=(0.01, 0.1, 1.0, 10.0, 100.0), cv=5, l1_ratios=(0.0,), scoring="neg_log_loss",
                                 use_legacy_attributes=False, max_iter=2000).fit(m.X_lab, m.y_lab)
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
    assert len(r.augment_["fill_values"]) == 3 + 2 + 2
    assert (r.predict(X) == y).mean() > 0.9


def test_single_class_is_rejected() -> None:
    with pytest.raises(ReuseError, match="two classes"):
        FeatureAugmentReuser([fn_learnware("a", lambda X: X[:, 0])]).fit(np.zeros((5, 2)), np.zeros(5))
