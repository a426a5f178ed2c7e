"""Label-aware specification: what a learnware *does* at the points that summarise what it was trained on.

Why: an RKME summarises P(X) only, so two models trained on similar inputs with different labelling functions get
the same specification and search cannot tell them apart (issue 11). The dock already runs every submitted model in
its sandbox at the submitting stage, so it records the model's outputs at the model's own RKME reduced-set points
``z_1..z_K``: class probabilities when the model returns a score matrix, one-hot labels when it returns labels, and
the predictions themselves for regression. Together with (Z, β) this is a weighted sample of the *joint*
distribution the model stands for, ``Σ_j β_j δ(z_j, f(z_j))``, from which search derives

* the joint embedding ``Σ_j β_j φ(z_j) ⊗ ψ(f(z_j))`` (joint MMD against a user's labelled rows), and
* the conditional one, ``f̃(x) = Σ_j k(x, z_j) β_j f(z_j) / Σ_j k(x, z_j) β_j`` — a kernel-smoothed picture of the
  model around its own data, which gives a *predicted loss* on a user's labelled rows without running the model.

This is the pseudo-label idea behind labelled RKMEs (DALI, ICML 2025) and the conditional mean embedding view of
RNCME (ICML 2026), made by the dock from the model alone: no training data and no submitter action are needed, so
reference-format zips get it too. The points are not stored again: the spec names the RKME it belongs to by a
digest of (Z, β) and is only used together with it. Cost: one ``predict`` of K rows in the already warm sandbox.

JSON (``type = "LabelAwareRKMESpecification"``)::

    {"type", "version", "task", "output_kind", "n_classes", "num_points", "rkme_digest", "outputs"}
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Callable, ClassVar

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import check_is_fitted, validate_params
from lwlib.errors import SpecFormatError
from lwlib.rkme.base import BaseStatSpec

logger = logging.getLogger(__name__)

__all__ = ["LabelAwareSpec", "LABEL_AWARE_TYPE", "make_label_aware_spec", "rkme_digest", "outputs_to_matrix",
           "MAX_OUTPUT_DIM"]

LABEL_AWARE_TYPE = "LabelAwareRKMESpecification"
LABEL_AWARE_VERSION = 1
MAX_OUTPUT_DIM = 1024  # classes (or regression outputs) a label-aware spec may hold
MAX_POINTS = 100_000
_PROBA_TOL = 1e-3
TASKS = ("classification", "regression")


def rkme_digest(z: Any, beta: Any) -> str:
    """Short sha256 of an RKME's (Z, β) as float64 bytes: ties a label-aware spec to the RKME it was made on."""
    h = hashlib.sha256()
    for a in (z, beta):
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:32]


def outputs_to_matrix(out: Any, n_rows: int, *, task: str,
                      n_classes: int | None = None) -> tuple[NDArray[np.float64], str, int | None]:
    """Normalise a model's raw outputs into the matrix a label-aware spec stores.

    Parameters
    ----------
    out : array-like
        What ``predict`` returned for ``n_rows`` rows.
    n_rows : int
    task : {"classification", "regression"}
    n_classes : int, optional
        Width of the class space (semantic ``Output.Dimension``); inferred from the outputs when omitted.

    Returns
    -------
    matrix : ndarray of shape (n_rows, m)
        Classification: rows on the probability simplex (labels one-hot, scores softmaxed, probabilities kept).
        Regression: the predictions, one column per output.
    output_kind : {"labels", "proba", "values"}
    n_classes : int or None

    Raises
    ------
    SpecFormatError
        ``label_aware_bad_outputs`` when the outputs have the wrong length, are not finite, or are labels outside
        ``[0, n_classes)``.
    """
    a = np.asarray(out)
    if a.ndim == 0 or a.shape[0] != n_rows:
        raise SpecFormatError(f"The model returned outputs of shape {a.shape} for {n_rows} reduced-set points; a "
                              "learnware must return one prediction per row.", code="label_aware_bad_outputs")
    if a.dtype.kind not in "iufb":
        raise SpecFormatError(f"The model returned non-numeric outputs (dtype {a.dtype}); return class indices, "
                              "class scores or numeric predictions.", code="label_aware_bad_outputs")
    a = a.reshape(n_rows, -1).astype(np.float64)
    if not np.isfinite(a).all():
        raise SpecFormatError("The model returned NaN or infinite outputs at its own reduced-set points; fix the "
                              "model so it predicts finite values on its training distribution.",
                              code="label_aware_bad_outputs")
    if a.shape[1] > MAX_OUTPUT_DIM:
        raise SpecFormatError(f"The model returns {a.shape[1]} output columns, above the {MAX_OUTPUT_DIM} a label-"
                              "aware spec holds.", code="label_aware_bad_outputs")
    if task == "regression":
        return a, "values", None
    if a.shape[1] == 1:
        lab = a[:, 0]
        if not np.all(lab == np.round(lab)) or (lab < 0).any():
            raise SpecFormatError("A classifier's 1-column outputs must be class indices 0..C-1; got non-integer or "
                                  "negative values.", code="label_aware_bad_outputs")
        c = int(n_classes) if n_classes else int(lab.max()) + 1
        if lab.max() >= c or c > MAX_OUTPUT_DIM:
            raise SpecFormatError(f"Class index {int(lab.max())} is outside the declared {c} classes.",
                                  code="label_aware_bad_outputs")
        M = np.zeros((n_rows, max(c, 1)))
        M[np.arange(n_rows), lab.astype(np.int64)] = 1.0
        return M, "labels", c
    S = a
    is_proba = (S >= -_PROBA_TOL).all() and np.allclose(S.sum(axis=1), 1.0, atol=_PROBA_TOL)
    if not is_proba:  # logits or decision scores
        S = np.exp(S - S.max(axis=1, keepdims=True))
        S /= S.sum(axis=1, keepdims=True)
    S = np.clip(S, 0.0, None)
    S /= np.maximum(S.sum(axis=1, keepdims=True), 1e-300)
    c = int(n_classes) if n_classes else S.shape[1]
    if c < S.shape[1]:
        raise SpecFormatError(f"The model returns {S.shape[1]} class scores but {c} classes are declared.",
                              code="label_aware_bad_outputs")
    if c > S.shape[1]:
        S = np.pad(S, ((0, 0), (0, c - S.shape[1])))
    return S, "proba", c


class LabelAwareSpec(BaseStatSpec):
    """The model's outputs at its RKME reduced-set points (see the module docstring for why).

    Parameters
    ----------
    task : {"classification", "regression"}
    n_classes : int, optional
        Width of the class space for classification (semantic ``Output.Dimension``); inferred when omitted.

    Attributes
    ----------
    outputs_ : ndarray of shape (K, m)
        One row per reduced-set point, in the RKME's order (class distribution, or predictions).
    output_kind_ : {"labels", "proba", "values"}
    n_classes_ : int or None
    num_points_ : int
        K.
    rkme_digest_ : str
        :func:`rkme_digest` of the RKME whose points were used.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[0.0], [1.0], [2.0]]); beta = np.full(3, 1 / 3)
    >>> spec = LabelAwareSpec(task="classification", n_classes=2).fit(Z, beta, np.array([0, 1, 1]))
    >>> spec.outputs_.tolist()
    [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    >>> LabelAwareSpec.from_dict(spec.to_dict()).matches(Z, beta)
    True
    """

    type_name: ClassVar[str] = LABEL_AWARE_TYPE
    accepted_types: ClassVar[tuple[str, ...]] = (LABEL_AWARE_TYPE,)
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "task": set(TASKS),
        "n_classes": lambda v: v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                             and 1 <= v <= MAX_OUTPUT_DIM),
    }

    def __init__(self, task: str = "classification", n_classes: int | None = None) -> None:
        self.task = task
        self.n_classes = n_classes

    def fit(self, Z: Any, beta: Any = None, outputs: Any = None) -> LabelAwareSpec:
        """Record ``outputs`` (the model's predictions at the reduced-set points ``Z`` with weights ``beta``)."""
        validate_params(self)
        Zc = np.asarray(Z, dtype=np.float64)
        if Zc.ndim != 2 or Zc.shape[0] < 1 or Zc.shape[0] > MAX_POINTS:
            raise SpecFormatError(f"Z must be a 2-D array of 1..{MAX_POINTS} reduced-set points, got shape {Zc.shape}.",
                                  code="label_aware_bad_points")
        b = np.full(Zc.shape[0], 1.0 / Zc.shape[0]) if beta is None else np.asarray(beta, dtype=np.float64)
        if b.shape != (Zc.shape[0],):
            raise SpecFormatError(f"beta has shape {b.shape}, expected ({Zc.shape[0]},).", code="label_aware_bad_points")
        if outputs is None:
            raise SpecFormatError("LabelAwareSpec.fit needs the model's outputs at Z; use fit_from_model(rkme, "
                                  "predict) to compute them.", code="label_aware_bad_outputs")
        M, kind, c = outputs_to_matrix(outputs, Zc.shape[0], task=self.task, n_classes=self.n_classes)
        self.outputs_, self.output_kind_, self.n_classes_ = M, kind, c
        self.num_points_ = int(Zc.shape[0])
        self.task_ = str(self.task)
        self.rkme_digest_ = rkme_digest(Zc, b)
        return self

    def fit_from_model(self, rkme: Any, predict: Callable[[NDArray[np.float64]], Any]) -> LabelAwareSpec:
        """Call ``predict`` once on the RKME's reduced set and record the outputs (the dock does this in the sandbox)."""
        check_is_fitted(rkme, "z_")
        Z = np.asarray(rkme.z_, dtype=np.float64)
        return self.fit(Z, rkme.beta_, predict(Z))

    def matches(self, z: Any, beta: Any) -> bool:
        """True when this spec was made on exactly this RKME (same points and weights)."""
        check_is_fitted(self, "outputs_")
        return rkme_digest(z, beta) == self.rkme_digest_

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self, "outputs_")
        return {"type": self.type_name, "version": LABEL_AWARE_VERSION, "task": self.task_,
                "output_kind": self.output_kind_, "n_classes": self.n_classes_, "num_points": self.num_points_,
                "rkme_digest": self.rkme_digest_, "outputs": self.outputs_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelAwareSpec:
        """Validate and load; raises :class:`SpecFormatError` with a stable code on any malformed field."""
        if not isinstance(d, dict):
            raise SpecFormatError(f"{cls.__name__}.from_dict expects a dict, got {type(d).__name__}.",
                                  code="spec_not_object")
        missing = [k for k in ("type", "task", "output_kind", "num_points", "rkme_digest", "outputs") if k not in d]
        if missing:
            raise SpecFormatError(f"{LABEL_AWARE_TYPE} JSON lacks key(s) {missing}.", code="spec_missing_key",
                                  missing=missing)
        if d["type"] != LABEL_AWARE_TYPE:
            raise SpecFormatError(f"Spec type {d['type']!r} is not {LABEL_AWARE_TYPE}.", code="spec_type_mismatch")
        task, kind, c = d["task"], d["output_kind"], d.get("n_classes")
        if task not in TASKS or kind not in ("labels", "proba", "values") or (kind == "values") != (task == "regression"):
            raise SpecFormatError(f"Inconsistent task {task!r} / output_kind {kind!r}.", code="spec_shape")
        k = d["num_points"]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_POINTS:
            raise SpecFormatError(f"num_points must be an integer in 1..{MAX_POINTS}, got {k!r}.", code="spec_shape")
        if not isinstance(d["rkme_digest"], str) or len(d["rkme_digest"]) > 128:
            raise SpecFormatError("rkme_digest must be a short hex string.", code="spec_shape")
        try:
            M = np.asarray(d["outputs"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SpecFormatError(f"outputs is not a rectangular numeric array ({exc}).", code="spec_shape") from exc
        if M.ndim != 2 or M.shape[0] != k or not 1 <= M.shape[1] <= MAX_OUTPUT_DIM or not np.isfinite(M).all():
            raise SpecFormatError(f"outputs must be a finite ({k}, m) array with 1 ≤ m ≤ {MAX_OUTPUT_DIM}, got "
                                  f"{M.shape}.", code="spec_shape")
        if task == "classification":
            if c is None or isinstance(c, bool) or not isinstance(c, int) or c != M.shape[1]:
                raise SpecFormatError(f"n_classes {c!r} must equal the outputs' width {M.shape[1]}.", code="spec_shape")
            if (M < -1e-9).any() or not np.allclose(M.sum(axis=1), 1.0, atol=1e-6):
                raise SpecFormatError("classification outputs must be class distributions (rows ≥ 0 summing to 1).",
                                      code="spec_shape")
        spec = cls(task=task, n_classes=c if task == "classification" else None)
        spec.outputs_, spec.output_kind_, spec.n_classes_ = M, kind, (c if task == "classification" else None)
        spec.num_points_, spec.task_, spec.rkme_digest_ = int(k), task, d["rkme_digest"]
        return spec


def make_label_aware_spec(rkme: Any, predict: Callable[[NDArray[np.float64]], Any], task: str, *,
                          n_classes: int | None = None) -> LabelAwareSpec:
    """What the dock calls at ``specify``: run ``predict`` on the RKME's points and wrap the outputs.

    Parameters
    ----------
    rkme : fitted RKMETableSpec (or any spec with ``z_``/``beta_``)
    predict : callable
        The sandboxed runtime's ``predict`` (rows in, outputs out); called exactly once on K rows.
    task : {"classification", "regression"}
        From the semantic spec's Task (other tasks have no label-aware spec).
    n_classes : int, optional
        Semantic ``Output.Dimension`` for classification.

    Returns
    -------
    LabelAwareSpec
    """
    return LabelAwareSpec(task=task, n_classes=n_classes).fit_from_model(rkme, predict)
