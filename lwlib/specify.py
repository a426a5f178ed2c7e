"""Verify a learnware's statistical specification, or generate one from data the submitter supplied.

The reference only checks that ``dist(self, self)`` is finite. We also check the spec kind matches the semantic Data
type, its dimension matches Input.Dimension, weights and points are finite, and the reduced set is well formed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lwlib.constants import RKME_TABLE_TYPE, RKME_TEXT_TYPE
from lwlib.errors import SpecFormatError

__all__ = ["SpecReport", "verify_specs", "generate_table_spec", "anchor_spec", "make_label_spec"]

logger = logging.getLogger(__name__)

_EXPECTED_FOR_DATA = {"Table": {RKME_TABLE_TYPE}, "Text": {RKME_TEXT_TYPE}, "Image": {RKME_TABLE_TYPE, "RKMEImageSpecification"}}


@dataclass(frozen=True)
class SpecReport:
    """Facts about the verified spec, recorded in the catalog and in MLflow."""

    spec_type: str
    n_features: int
    reduced_set_size: int
    num_points: int
    gamma: float
    self_mmd2: float
    generated: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def generate_table_spec(X: Any, *, random_state: int = 0) -> Any:
    """Fit a default table RKME on submitter-supplied data (used when the package ships no spec)."""
    from lwlib.rkme.rkme import RKMETableSpec

    return RKMETableSpec(random_state=random_state).fit(X)


def verify_specs(learnware: Any) -> SpecReport:
    """Check the learnware's primary statistical spec; raise :class:`SpecFormatError` with the fix when it is wrong."""
    specs = getattr(learnware, "stat_specs", {}) or {}
    if not specs:
        raise SpecFormatError(
            "the learnware has no statistical specification; add an RKME JSON listed under stat_specifications in "
            "learnware.yaml (lwlib.learnware.packager builds one), or submit training data to generate it",
            code="spec_missing")
    type_name, spec = next(iter(specs.items()))
    sem = getattr(learnware, "semantic_spec", None)
    notes: list[str] = []
    if sem is not None and sem.data_type in _EXPECTED_FOR_DATA and type_name not in _EXPECTED_FOR_DATA[sem.data_type]:
        raise SpecFormatError(
            f"semantic Data is {sem.data_type} but the statistical spec is {type_name}; expected one of "
            f"{sorted(_EXPECTED_FOR_DATA[sem.data_type])}", code="spec_type_mismatch")
    z, beta = np.asarray(spec.z_, dtype=np.float64), np.asarray(spec.beta_, dtype=np.float64)
    if z.ndim != 2 or beta.shape != (z.shape[0],):
        raise SpecFormatError(f"RKME points of shape {z.shape} and weights of shape {beta.shape} do not agree",
                              code="spec_shape")
    if not (np.isfinite(z).all() and np.isfinite(beta).all()):
        raise SpecFormatError("RKME points or weights contain NaN/inf; regenerate the spec from clean data",
                              code="spec_nonfinite")
    if sem is not None and sem.data_type == "Table" and sem.input is not None and z.shape[1] != sem.input.dimension:
        raise SpecFormatError(
            f"RKME has {z.shape[1]} features but the semantic Input.Dimension is {sem.input.dimension}",
            code="spec_dimension_mismatch")
    if abs(beta.sum() - 1.0) > 1e-3:
        notes.append(f"weights sum to {beta.sum():.4f}, not 1 (reference nonnegative_beta=False specs do this)")
    self_mmd2 = float(spec.inner_product(spec))
    if not np.isfinite(self_mmd2) or self_mmd2 < -1e-9:
        raise SpecFormatError(f"the spec's self inner product is {self_mmd2}; the kernel embedding is degenerate",
                              code="spec_degenerate")
    return SpecReport(type_name, int(z.shape[1]), int(z.shape[0]), int(getattr(spec, "num_points_", 0) or 0),
                      float(getattr(spec, "gamma_", getattr(spec, "gamma", 0.1))), self_mmd2, False, tuple(notes))


def anchor_spec(learnware: Any) -> Any | None:
    """The table RKME whose reduced-set points anchor the label-aware spec (None for other spec kinds)."""
    specs = getattr(learnware, "stat_specs", {}) or {}
    return next((s for s in specs.values() if getattr(s, "z_", None) is not None), None)


def make_label_spec(learnware: Any, outputs: Any) -> Any | None:
    """The label-aware part of the statistical spec: the model's own outputs at its RKME reduced-set points.

    ``outputs`` were produced by the sandboxed runtime (the model never runs in the dock's process). Returns None
    when the learnware has no table RKME to anchor them on.
    """
    from lwlib.rkme.label_aware import make_label_aware_spec

    rkme = anchor_spec(learnware)
    if rkme is None:
        return None
    sem = getattr(learnware, "semantic_spec", None)
    task = "regression" if sem is not None and sem.task_type == "Regression" else "classification"
    n_classes = sem.output.dimension if task == "classification" and sem is not None and sem.output else None
    Z = np.asarray(rkme.z_)

    def recorded(X: Any) -> Any:
        if np.shape(X) != Z.shape or not np.array_equal(X, Z):
            raise ValueError("the label-aware spec asks for outputs at the RKME points only")
        return outputs

    return make_label_aware_spec(rkme, recorded, task, n_classes=n_classes)
