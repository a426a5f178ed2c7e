"""Checks of an untrusted RKME JSON dict: sizes bounded before any allocation, values finite and in range.

An RKME's reduced set (Z, β) comes from a zip or a user. Its sizes are read from the JSON lists' lengths *before*
any array exists, because everything after loading is quadratic in K: the verify step and the search build the
K × K Gram matrix (K = 100 000 asked for 80 GB). Bounds (:mod:`lwlib.constants`): K ≤ ``RKME_MAX_K``, d ≤
``RKME_MAX_DIM``, K·d ≤ ``RKME_MAX_VALUES``, ``|z| ≤ RKME_MAX_ABS_POINT`` (squared distances stay finite),
``|β| ≤ RKME_MAX_ABS_WEIGHT`` and not all zero, γ positive and finite, ``num_points`` in
``[0, RKME_MAX_NUM_POINTS]`` (a BIGINT column). Every refusal is a :class:`~lwlib.errors.SpecFormatError` naming the
field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lwlib._validation import show_value
from lwlib.constants import (RKME_MAX_ABS_POINT, RKME_MAX_ABS_WEIGHT, RKME_MAX_DIM, RKME_MAX_K, RKME_MAX_NUM_POINTS,
                             RKME_MAX_VALUES)
from lwlib.errors import SpecFormatError

__all__ = ["check_reduced_set", "check_gamma", "check_num_points"]


def check_reduced_set(z: Any, beta: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate the points ``z`` (K lists of d numbers) and weights ``beta`` (K numbers); return float64 arrays.

    Raises
    ------
    SpecFormatError
        ``spec_too_large``, ``spec_shape``, ``spec_nonfinite``, ``spec_out_of_range``, ``spec_weights``.
    """
    _check_sizes(z, beta)
    z_arr = _numeric_array(z, "z", ndim=2, max_abs=RKME_MAX_ABS_POINT)
    beta_arr = _numeric_array(beta, "beta", ndim=1, max_abs=RKME_MAX_ABS_WEIGHT)
    if z_arr.shape[0] < 1 or z_arr.shape[1] < 1 or beta_arr.shape[0] != z_arr.shape[0]:
        raise SpecFormatError(f"Spec shapes are inconsistent: z is {z_arr.shape}, beta is {beta_arr.shape}; need z "
                              "of shape (K, d) with K, d ≥ 1 and beta of shape (K,).", code="spec_shape",
                              field="beta")
    if not np.any(beta_arr):
        raise SpecFormatError("Spec field beta is all zeros; the weights of an RKME sum to 1.", code="spec_weights",
                              field="beta")
    return z_arr, beta_arr


def check_gamma(gamma: Any) -> int | float:
    """Return ``gamma`` unchanged (an int stays an int, for byte-identical JSON) if it is positive and finite."""
    if not _positive_finite(gamma):
        raise SpecFormatError(f"Spec field gamma must be a positive finite number, got {show_value(gamma, 60)}.",
                              code="spec_gamma", field="gamma")
    return gamma  # type: ignore[no-any-return]


def check_num_points(num_points: Any) -> int:
    """Return ``num_points`` if it is an integer in ``[0, RKME_MAX_NUM_POINTS]``."""
    if isinstance(num_points, bool) or not isinstance(num_points, (int, np.integer)) or \
            not 0 <= num_points <= RKME_MAX_NUM_POINTS:
        raise SpecFormatError(f"Spec field num_points must be an integer in [0, {RKME_MAX_NUM_POINTS}], got "
                              f"{show_value(num_points, 60)}.", code="spec_num_points", field="num_points")
    return int(num_points)


def _positive_finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return bool(np.isfinite(float(value)) and value > 0)
    except OverflowError:  # an int too large for a float
        return False


def _too_large(message: str, field: str) -> SpecFormatError:
    return SpecFormatError(message + f" The dock accepts K ≤ {RKME_MAX_K} points, d ≤ {RKME_MAX_DIM} features and "
                           f"K·d ≤ {RKME_MAX_VALUES}; refit with a smaller reduced_set_size.",
                           code="spec_too_large", field=field)


def _check_sizes(z: Any, beta: Any) -> None:
    """Bound K, d and K·d from the JSON lists' lengths, before any array (or K×K kernel) is allocated."""
    if isinstance(z, np.ndarray):
        k, dim = (int(z.shape[0]), int(z.shape[1])) if z.ndim == 2 else (0, 0)
        ragged = z.ndim != 2
    elif isinstance(z, list):
        k = len(z)
        first = z[0] if k else None
        dim = len(first) if isinstance(first, (list, np.ndarray)) else 0
        ragged = k == 0 or dim == 0
    else:
        raise SpecFormatError(f"Spec field z must be a list of K points (lists of d numbers); got "
                              f"{type(z).__name__}.", code="spec_shape", field="z")
    if k > RKME_MAX_K:
        raise _too_large(f"Spec field z has {k} points.", "z")
    if dim > RKME_MAX_DIM:
        raise _too_large(f"Spec field z has points of {dim} features.", "z")
    if k * dim > RKME_MAX_VALUES:
        raise _too_large(f"Spec field z has {k} × {dim} = {k * dim} coordinates.", "z")
    if not ragged and isinstance(z, list):
        ragged = any(not isinstance(row, (list, np.ndarray)) or len(row) != dim for row in z)
    if ragged:
        raise SpecFormatError("Spec field z must be a non-empty rectangular list of K points, each a list of d ≥ 1 "
                              "numbers.", code="spec_shape", field="z")
    n_beta = len(beta) if isinstance(beta, (list, np.ndarray)) else -1
    if n_beta != k:
        raise SpecFormatError(f"Spec field beta must be a list of K = {k} weights (one per point); got "
                              f"{n_beta if n_beta >= 0 else type(beta).__name__}.", code="spec_shape", field="beta")


def _numeric_array(value: Any, name: str, *, ndim: int, max_abs: float) -> NDArray[np.float64]:
    """Nested JSON lists → float64 array, refusing ragged, non-numeric, non-finite and out-of-range content."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SpecFormatError(f"Spec field {name} is ragged or not numeric; it must be a rectangular array of "
                              "numbers.", code="spec_shape", field=name) from exc
    if arr.dtype.kind not in "iuf" or arr.ndim != ndim:
        raise SpecFormatError(f"Spec field {name} must be a {ndim}-D array of numbers, got dtype {arr.dtype} with "
                              f"{arr.ndim} dimension(s).", code="spec_shape", field=name)
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise SpecFormatError(f"Spec field {name} contains NaN or infinite values; regenerate the spec.",
                              code="spec_nonfinite", field=name)
    peak = float(np.abs(arr).max()) if arr.size else 0.0
    if peak > max_abs:
        raise SpecFormatError(f"Spec field {name} holds a value of magnitude {peak:.3g}; at most {max_abs:g} is "
                              "allowed (weights sum to 1; points are feature values).",
                              code="spec_weights" if name == "beta" else "spec_out_of_range", field=name)
    return arr
