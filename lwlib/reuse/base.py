"""The reuser contract: what a reusable learnware looks like and the base every reuser derives from.

Reusers combine market learnwares into a predictor for a user task. They only ever call a learnware's public
``predict`` and read its statistical specification; they never reach into a learnware's package or model. In the
dock a learnware is a ``RuntimeModel`` (isolated process); in tests and notebooks it can be a trusted in-process
model wrapped by :class:`InProcessLearnware`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal, Protocol, Sequence, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_array, check_is_fitted, validate_params
from lwlib.base import LwEstimator
from lwlib.errors import ReuseError

logger = logging.getLogger(__name__)

__all__ = ["ReusableLearnware", "InProcessLearnware", "BaseReuser", "OutputKind", "TASKS"]

OutputKind = Literal["labels", "proba", "values"]
TASKS = frozenset({"classification", "regression"})


@runtime_checkable
class ReusableLearnware(Protocol):
    """Anything a reuser can call: an id, a ``predict`` and (optionally) a fitted RKME table spec.

    ``output_kind`` ("labels", "proba" or "values") is optional; reusers infer it from the output's shape when
    it is absent (2-D outputs with several columns in a classification task are read as class scores whose
    column ``j`` stands for class label ``j``, the reference package's convention).
    """

    id: str
    spec: Any

    def predict(self, X: NDArray[np.float64]) -> NDArray[Any]:  # pragma: no cover - protocol
        ...


class InProcessLearnware:
    """A learnware made of a trusted, already-loaded model: for tests, notebooks and benchmarks only.

    It runs the model in the calling process, so it must never wrap uploaded (untrusted) code; the dock uses
    isolated ``RuntimeModel`` objects instead.

    Parameters
    ----------
    id : str
        Learnware id (sha256 in the market; any string in tests).
    model : object
        A fitted estimator with ``predict`` (and ``predict_proba`` when ``output_kind="proba"``).
    spec : RKMETableSpec or None
        The learnware's fitted statistical specification.
    output_kind : {"labels", "proba", "values"}, optional
        ``"proba"`` returns ``model.predict_proba``; the others return ``model.predict``.
    n_classes : int, optional
        With ``output_kind="proba"``: width of the global class space. A model trained on a subset of the
        classes has ``predict_proba`` columns for its own ``classes_`` only; they are scattered into columns
        ``classes_`` of an ``(n, n_classes)`` array so every learnware speaks the same label space.
    """

    def __init__(self, id: str, model: Any, spec: Any = None, *, output_kind: OutputKind | None = None,
                 n_classes: int | None = None) -> None:
        self.id = str(id)
        self.model = model
        self.spec = spec
        self.output_kind = output_kind
        self.n_classes = n_classes

    def predict(self, X: Any) -> NDArray[Any]:
        """Predict with the wrapped model (probabilities in the global class space for ``"proba"``)."""
        X = np.asarray(X, dtype=np.float64)
        if self.output_kind != "proba":
            return np.asarray(self.model.predict(X))
        proba = np.asarray(self.model.predict_proba(X), dtype=np.float64)
        if self.n_classes is None:
            return proba
        out = np.zeros((proba.shape[0], int(self.n_classes)))
        out[:, np.asarray(self.model.classes_, dtype=int)] = proba
        return out

    def __repr__(self) -> str:
        return f"InProcessLearnware(id={self.id!r}, model={type(self.model).__name__})"


def _is_learnware_list(value: Any) -> bool:
    """a non-empty sequence of objects with ``id`` and ``predict``"""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(hasattr(lw, "predict") and hasattr(lw, "id") for lw in value))


class BaseReuser(LwEstimator):
    """Base of every reuser: sklearn-style parameters, ``fit(X=None, y=None) -> self`` and ``predict(X)``.

    Subclasses declare their own ``__init__`` (keyword parameters stored as given, so ``get_params`` /
    ``set_params`` / ``clone`` work), implement ``_fit`` and ``_predict``, and describe their fitted state with
    :meth:`to_solution` (JSON-able) and :meth:`parts` (fitted sklearn sub-models) so a solution can be saved
    and recomputed by :func:`lwlib.reuse.combine.predict_solution`.
    """

    kind: str = "base"
    _needs_labels: bool = False
    _parameter_constraints: ClassVar[dict[str, Any]] = {"learnwares": _is_learnware_list, "task": set(TASKS)}

    def __init__(self, learnwares: Sequence[ReusableLearnware] | None = None, *,
                 task: str = "classification") -> None:
        self.learnwares = learnwares
        self.task = task

    # -- public API ---------------------------------------------------------------------------------------
    def fit(self, X: Any = None, y: Any = None) -> BaseReuser:
        """Validate the parameters and learn whatever the reuser needs (weights, router, head)."""
        validate_params(self)
        Xc = None if X is None else check_array(X, name="X")
        yc = None
        if y is not None:
            if Xc is None:
                raise ReuseError(f"{type(self).__name__}.fit got y without X; pass both.", code="invalid_input")
            yc = np.asarray(y)
            if yc.shape[0] != Xc.shape[0]:
                raise ReuseError(f"{type(self).__name__}.fit: X has {Xc.shape[0]} rows but y has {yc.shape[0]}; "
                                 "they must match.", code="invalid_input")
            if yc.ndim == 2 and yc.shape[1] == 1:
                yc = yc.ravel()
        if self._needs_labels:
            self._labelled(Xc, yc)
        self.n_features_in_ = self._infer_n_features(Xc)
        self._fit(Xc, yc)
        return self

    def predict(self, X: Any) -> NDArray[Any]:
        """Predict for user rows ``X`` of shape (n_samples, n_features)."""
        check_is_fitted(self)
        return self._predict(self._check_X(X))

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Class probabilities, for reusers whose combination defines them; others raise :class:`ReuseError`."""
        check_is_fitted(self)
        raise ReuseError(f"{type(self).__name__} does not define class probabilities; use predict().",
                         code="proba_unavailable")

    def to_solution(self) -> dict[str, Any]:
        """A JSON-able description of the fitted reuser (kind, learnware ids, weights, ...)."""
        check_is_fitted(self)
        return {"kind": self.kind, "task": self.task, "learnware_ids": [lw.id for lw in self._members()],
                **self._solution_extra()}

    def parts(self) -> dict[str, Any]:
        """The reuser's own fitted sklearn sub-models (router, head), keyed by name; empty if none."""
        check_is_fitted(self)
        return {}

    # -- hooks --------------------------------------------------------------------------------------------
    def _fit(self, X: NDArray[np.float64] | None, y: NDArray[Any] | None) -> None:
        raise NotImplementedError

    def _predict(self, X: NDArray[np.float64]) -> NDArray[Any]:
        raise NotImplementedError

    def _labelled(self, X: NDArray[np.float64] | None,
                  y: NDArray[Any] | None) -> tuple[NDArray[np.float64], NDArray[Any]]:
        """``(X, y)`` for a reuser that learns from labelled rows, or a clear error when either is missing."""
        if X is None or y is None:
            raise ReuseError(f"{type(self).__name__} learns from labelled data: call fit(X, y).",
                             code="labels_required")
        return X, y

    def _members(self) -> list[ReusableLearnware]:
        """The learnwares a solution needs at predict time (all of them unless the reuser prunes)."""
        return list(self.learnwares or [])

    def _solution_extra(self) -> dict[str, Any]:
        return {}

    # -- helpers ------------------------------------------------------------------------------------------
    def _infer_n_features(self, X: NDArray[np.float64] | None) -> int | None:
        """User feature count: from X when given, else from the learnwares' specs when they agree."""
        if X is not None:
            return int(X.shape[1])
        dims = {int(np.asarray(lw.spec.z_).shape[1]) for lw in (self.learnwares or [])
                if getattr(lw, "spec", None) is not None and hasattr(lw.spec, "z_")}
        return dims.pop() if len(dims) == 1 else None

    def _check_X(self, X: Any) -> NDArray[np.float64]:
        Xc = check_array(X, name="X")
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and Xc.shape[1] != expected:
            raise ReuseError(f"{type(self).__name__}.predict got X with {Xc.shape[1]} features, but it was fitted "
                             f"for {expected}; pass rows in the same feature space as at fit time.",
                             code="n_features_mismatch", expected=expected, got=Xc.shape[1])
        return Xc

    def _require_specs(self) -> list[Any]:
        """The learnwares' fitted RKME specs, or a clear error naming the learnware without one."""
        specs = []
        for lw in self.learnwares or []:
            spec = getattr(lw, "spec", None)
            if spec is None or not hasattr(spec, "z_"):
                raise ReuseError(f"{type(self).__name__} needs a fitted RKME table spec on every learnware; "
                                 f"learnware {lw.id!r} has none. Attach its spec or use another reuser.",
                                 code="spec_required", learnware_id=lw.id)
            specs.append(spec)
        return specs
