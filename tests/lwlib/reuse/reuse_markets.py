"""Controlled reuse tasks and tiny helpers shared by the reuser tests (fixtures live in conftest.py)."""


from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, Ridge

from lwlib.reuse import InProcessLearnware
from lwlib.rkme.rkme import RKMETableSpec


@dataclass
class Market:
    learnwares: list[InProcessLearnware]
    X_user: np.ndarray  # the user's task (mix of two learnwares' regions)
    y_user: np.ndarray
    X_lab: np.ndarray  # a few labelled user rows
    y_lab: np.ndarray
    task: str

    def single_losses(self) -> np.ndarray:
        """Loss of every single learnware on the user task (its mean = the mean-in-market baseline)."""
        return np.array([loss(self.task, lw.predict(self.X_user), self.y_user) for lw in self.learnwares])


def loss(task: str, pred: Any, y: np.ndarray) -> float:
    pred = np.asarray(pred)
    if task == "regression":
        return float(np.mean((pred.reshape(y.shape) - y) ** 2))
    if pred.ndim == 2 and pred.shape[1] > 1:
        pred = pred.argmax(axis=1)
    return float(np.mean(pred != y))


def _spec(X: np.ndarray) -> RKMETableSpec:
    return RKMETableSpec(reduced_set_size=30, n_iter=3, random_state=0).fit(X)


def build_regression_market() -> Market:
    """Five regions in R^4, each with its own linear target; the user mixes regions 0 and 1."""
    rng = np.random.default_rng(0)
    d, n_per = 4, 300
    centres = rng.normal(scale=6.0, size=(5, d))
    coefs = rng.normal(scale=3.0, size=(5, d))
    offsets = rng.normal(scale=10.0, size=5)
    lws, Xs, ys = [], [], []
    for r in range(5):
        X = centres[r] + rng.normal(size=(n_per, d))
        y = X @ coefs[r] + offsets[r] + 0.1 * rng.normal(size=n_per)
        Xs.append(X)
        ys.append(y)
        lws.append(InProcessLearnware(f"reg-{r}", Ridge(alpha=1e-3).fit(X[:200], y[:200]), _spec(X[:200])))
    X_user = np.vstack([Xs[0][200:], Xs[1][200:]])
    y_user = np.concatenate([ys[0][200:], ys[1][200:]])
    lab = rng.choice(X_user.shape[0], 30, replace=False)
    return Market(lws, X_user, y_user, X_user[lab], y_user[lab], "regression")


def build_digits_market() -> Market:
    """Five learnwares, each a logistic regression on two digit classes; the user holds digits 0-3."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    perm = rng.permutation(X.shape[0])
    X, y = X[perm], y[perm]
    train, user = np.arange(X.shape[0]) < 1200, np.arange(X.shape[0]) >= 1200
    lws = []
    for r in range(5):
        rows = train & np.isin(y, (2 * r, 2 * r + 1))
        model = LogisticRegression(max_iter=500).fit(X[rows], y[rows])
        lws.append(InProcessLearnware(f"dig-{r}", model, _spec(X[rows]), output_kind="proba", n_classes=10))
    umask = user & (y < 4)
    X_user, y_user = X[umask], y[umask]
    lab = np.concatenate([rng.choice(np.flatnonzero(y_user == c), 5, replace=False) for c in range(4)])
    return Market(lws, X_user, y_user, X_user[lab], y_user[lab], "classification")


class FnModel:
    """A 'model' computing a fixed function of X, for exact combination checks."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.calls: list[int] = []

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(X.shape[0])
        return self.fn(X)


def fn_learnware(id: str, fn: Any, spec: Any = None) -> InProcessLearnware:
    return InProcessLearnware(id, FnModel(fn), spec)
