"""Feature augmentation: learn a small model on the user's features plus the learnwares' predictions.

Why: with a few labels, a linear head on ``[X, f_1(X), …, f_m(X)]`` lets the user's data decide how much to
trust each learnware, and falls back on ``X`` where none helps. Label outputs are one-hot encoded (a class id is
not a number to regress on), non-finite cells are filled with the fit-time column means, features are
standardised, and the regularisation strength is picked by cross-validation: ``RidgeCV`` for regression,
``LogisticRegressionCV`` over C for classification (current scikit-learn keywords only).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from lwlib._validation import check_is_fitted
from lwlib.errors import ReuseError
from lwlib.reuse.base import BaseReuser, ReusableLearnware, _is_learnware_list
from lwlib.reuse.combine import augment_features, collect_outputs

logger = logging.getLogger(__name__)

__all__ = ["FeatureAugmentReuser", "fit_augment_head"]

RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
LOGISTIC_CS = (0.01, 0.1, 1.0, 10.0, 100.0)


def _is_label_output(o: NDArray[Any]) -> bool:
    """One column of whole numbers (or non-numeric values): class ids, not scores."""
    if o.ndim == 2 and o.shape[1] != 1:
        return False
    v = o.reshape(-1)
    if not np.issubdtype(v.dtype, np.number):
        return True
    v = v[np.isfinite(v)]
    return bool(np.all(v == np.round(v)))


def fit_augment_head(X: NDArray[np.float64], outputs: Sequence[NDArray[Any]], y: NDArray[Any], *, task: str,
                     random_state: int = 0) -> tuple[Pipeline, dict[str, Any]]:
    """Fit the head on augmented features; return it with the JSON-able augmentation settings.

    Returns
    -------
    head : sklearn Pipeline (StandardScaler + RidgeCV or LogisticRegression[CV])
    settings : dict with ``fill_values`` (list), ``output_classes`` (list or None) and ``label_outputs``
        (one flag per output: one-hot encoded class ids)
    """
    output_classes = None
    flags = [task == "classification" and _is_label_output(o) for o in outputs]
    if any(flags):
        seen = [np.asarray(y).ravel()] + [o.ravel() for o, f in zip(outputs, flags) if f]
        output_classes = np.unique(np.concatenate(seen)).tolist()
    raw = augment_features(X, outputs, fill_values=None, output_classes=output_classes, label_outputs=flags)
    finite = np.isfinite(raw)
    sums = np.where(finite, raw, 0.0).sum(axis=0)
    n_ok = finite.sum(axis=0)
    fill = np.where(n_ok > 0, sums / np.maximum(n_ok, 1), 0.0)
    A = np.where(finite, raw, fill[None, :])
    if task == "regression":
        head = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
    else:
        _, class_counts = np.unique(y, return_counts=True)
        if class_counts.shape[0] < 2:
            raise ReuseError("FeatureAugmentReuser needs at least two classes in y.", code="invalid_input")
        folds = int(min(5, class_counts.min()))
        if folds >= 2:
            clf: Any = LogisticRegressionCV(Cs=LOGISTIC_CS, cv=folds, l1_ratios=(0.0,), scoring="neg_log_loss",
                                            use_legacy_attributes=False, max_iter=2000, random_state=random_state)
        else:  # a class with one example: no stratified CV possible
            clf = LogisticRegression(C=1.0, max_iter=2000, random_state=random_state)
        head = make_pipeline(StandardScaler(), clf)
    head.fit(A, y)
    return head, {"fill_values": fill.tolist(), "output_classes": output_classes, "label_outputs": flags}


class FeatureAugmentReuser(BaseReuser):
    """A linear head on ``[X, f_1(X), …, f_m(X)]`` fitted on the user's labelled rows.

    Parameters
    ----------
    learnwares : sequence of ReusableLearnware
    task : {"classification", "regression"}
    random_state : int

    Attributes
    ----------
    head_ : sklearn Pipeline
    augment_ : dict
        ``fill_values`` and ``output_classes`` used to build the augmented features.
    """

    kind = "feature_augment"
    _needs_labels = True
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "learnwares": _is_learnware_list, "task": {"classification", "regression"},
        "random_state": (int, np.integer),
    }

    def __init__(self, learnwares: Sequence[ReusableLearnware] | None = None, *, task: str = "classification",
                 random_state: int = 0) -> None:
        self.learnwares = learnwares
        self.task = task
        self.random_state = random_state

    def _fit(self, X: NDArray[np.float64] | None, y: NDArray[Any] | None) -> None:
        X, y = self._labelled(X, y)
        outputs = collect_outputs(list(self.learnwares or []), X)
        self.head_, self.augment_ = fit_augment_head(X, outputs, y, task=self.task, random_state=self.random_state)

    def _augmented(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        outputs = collect_outputs(list(self.learnwares or []), X)
        return augment_features(X, outputs, fill_values=np.asarray(self.augment_["fill_values"]),
                                output_classes=self.augment_["output_classes"],
                                label_outputs=self.augment_["label_outputs"])

    def _predict(self, X: NDArray[np.float64]) -> NDArray[Any]:
        return np.asarray(self.head_.predict(self._augmented(X)))

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Class probabilities of the logistic head (classification only); columns follow ``classes_``."""
        check_is_fitted(self)
        if self.task != "classification":
            raise ReuseError("predict_proba is for classification; this reuser does regression.",
                             code="proba_unavailable")
        return np.asarray(self.head_.predict_proba(self._augmented(self._check_X(X))))

    @property
    def classes_(self) -> NDArray[Any]:
        """Class labels of the head (columns of :meth:`predict_proba`)."""
        check_is_fitted(self)
        return np.asarray(self.head_.classes_)

    def _solution_extra(self) -> dict[str, Any]:
        return dict(self.augment_)

    def parts(self) -> dict[str, Any]:
        """``{"head": fitted Pipeline}``."""
        super().parts()
        return {"head": self.head_}
